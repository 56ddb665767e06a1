"""Every private name of Kedro and MLflow the plugin uses, one module per library (Kedro's dataset
internals, kedro-datasets' included, in ``kedro_datasets.py``), each with a ``verify()`` that a test
runs against the installed version. Nothing else in the package may name a private attribute of either."""
