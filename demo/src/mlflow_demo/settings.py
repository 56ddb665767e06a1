"""Demo settings: nothing to register, kedro-mlflow-runs hooks come from its entry point."""
