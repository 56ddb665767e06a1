"""The run of one Kedro run: its state machine (RunContext), the registry of every run of the process
and the one road to the end, what runs change in the process, and what is published to workers."""
