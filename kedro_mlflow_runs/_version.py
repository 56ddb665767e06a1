"""The version of kedro-mlflow-runs (a leaf: importing it imports nothing else)."""

__version__ = "0.1.0"
