"""What a run records about itself: the node timeline, the data lineage, and the parts that steps
attached to one run write and merge."""
