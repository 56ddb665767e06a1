"""The errors kedro-mlflow-runs raises.

Every error says what happened, to which run, dataset or config key, and what to do; the same
facts are attributes (``run_id``, ``dataset``, ``key``; None when they do not apply). Each is also a
``click.ClickException``: when one ends a command line (``kedro run``, ``kedro mlflow ...``) it is
printed as one message, ``Error: <class>: <message>``, not as a traceback (with the
``kedro_mlflow_runs`` logger at DEBUG the traceback is printed too)::

    KedroMlflowRunsError
    ├── ConfigError            mlflow.yml is invalid (unknown key, wrong type, bad value)
    ├── RunStateError          a RunContext transition that its state does not allow
    ├── RunNotFoundError       a run id to attach to does not exist in the tracking store
    ├── TrackingUnavailableError  the tracking server or store cannot be reached
    ├── ParameterError         a parameter cannot be logged (too long, conflicting value)
    ├── TrackingError          an MLflow call failed while logging into a run
    ├── RunInterruptedError    recorded on a run ended KILLED (signal, or an exception no hook sees)
    ├── PipelineModelError     a pipeline_ml_factory pipeline or its model cannot be built, logged or run
    ├── MissingDependencyError an enabled feature needs an optional package that is not installed
    └── MlflowDatasetError     a dataset cannot be used as configured (also a Kedro DatasetError)
        ├── NoActiveRunError   a dataset needs a run, none is active and it has no run_id
        ├── RunConflictError   a dataset's run_id differs from the active run on save
        └── DatasetRunNotFoundError  a dataset's run_id does not exist (also a RunNotFoundError)
"""

from __future__ import annotations

import logging
import sys
import traceback
from typing import IO

import click
from kedro.io.core import DatasetError

__all__ = [
    "ConfigError",
    "DatasetRunNotFoundError",
    "KedroMlflowRunsError",
    "MissingDependencyError",
    "MlflowDatasetError",
    "NoActiveRunError",
    "ParameterError",
    "PipelineModelError",
    "RunConflictError",
    "RunInterruptedError",
    "RunNotFoundError",
    "RunStateError",
    "TrackingError",
    "TrackingUnavailableError",
]


class KedroMlflowRunsError(click.ClickException):
    """Base class of every error raised by kedro-mlflow-runs.

    Attributes:
        run_id: the MLflow run the error is about, if any.
        dataset: the dataset (class and catalog entry) the error is about, if any.
        key: the mlflow.yml key or parameter name the error is about, if any.
    """

    def __init__(
        self, message: str = "", *, run_id: str | None = None, dataset: str | None = None, key: str | None = None
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.dataset = dataset
        self.key = key

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def format_message(self) -> str:
        """What a command line prints after ``Error:`` (the class, then the message)."""
        return f"{type(self).__name__}: {self}"

    def show(self, file: IO[str] | None = None) -> None:
        """Print the error as a command line shows it; its traceback too when our logger is at DEBUG."""
        if logging.getLogger("kedro_mlflow_runs").isEnabledFor(logging.DEBUG):
            click.echo("".join(traceback.format_exception(self)), file=file or sys.stderr, nl=False)
        super().show(file)


class ConfigError(KedroMlflowRunsError, ValueError):
    """The mlflow.yml configuration is invalid."""


class RunStateError(KedroMlflowRunsError, RuntimeError):
    """A RunContext transition was requested that its current state does not allow."""


class RunNotFoundError(KedroMlflowRunsError, LookupError):
    """A run id given to attach to does not exist in the tracking store."""


class TrackingUnavailableError(KedroMlflowRunsError, ConnectionError):
    """The MLflow tracking store or server cannot be reached."""


class ParameterError(KedroMlflowRunsError, ValueError):
    """A Kedro parameter cannot be logged as an MLflow parameter."""


class TrackingError(KedroMlflowRunsError, RuntimeError):
    """An MLflow call failed while logging into a run."""


class RunInterruptedError(KedroMlflowRunsError):
    """The Kedro run was interrupted: a signal, or an exception Kedro's error hooks never see."""


class PipelineModelError(KedroMlflowRunsError, ValueError):
    """A ``pipeline_ml_factory`` pipeline, or the model made of its inference part, cannot work as configured."""


class MissingDependencyError(KedroMlflowRunsError, ImportError):
    """An enabled feature needs an optional package (an extra of kedro-mlflow-runs) that is not installed."""


class MlflowDatasetError(KedroMlflowRunsError, DatasetError):
    """A kedro-mlflow-runs dataset cannot be used as configured."""


class NoActiveRunError(MlflowDatasetError):
    """A dataset needs an MLflow run, but none is active and it has no ``run_id``."""


class RunConflictError(MlflowDatasetError):
    """A dataset's ``run_id`` differs from the active run it would save into."""


class DatasetRunNotFoundError(RunNotFoundError, MlflowDatasetError):
    """A dataset's ``run_id`` does not exist (or is deleted) in the tracking store."""
