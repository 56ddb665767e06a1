"""The Kedro adapters: hooks, the start of a pipeline run, the runner and signal guards, autologging,
header providers, notebooks and system metrics; every Kedro private detail is in ``kedro_compat``."""
