"""Tell datasets the name of their catalog entry.

Kedro does not pass the entry name to a dataset's constructor. Datasets that default a name
from it (a model's ``name``, a metric's ``key``) learn it from :func:`name_datasets`, which
the plugin's hooks call in ``before_pipeline_run`` for every dataset of the pipeline. The name
is stored on the dataset instance, so it travels with it to ParallelRunner workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kedro.framework.hooks import hook_impl

from ..compat.kedro_datasets import wrapped_dataset
from ..core.catalog import catalog_datasets

__all__ = ["DatasetNamingHooks", "NamedDataset", "check_output_runs", "name_datasets", "validate_datasets"]


class NamedDataset:
    """Mixin of datasets that can default a name from their catalog entry."""

    _catalog_name: str | None = None
    _kedro_run_id: str | None = None  # the Kedro run whose catalog holds this dataset

    def _bind_catalog_name(self, name: str) -> None:
        """Record the catalog entry this dataset is registered under (first name wins)."""
        if self._catalog_name is None:
            self._catalog_name = name


def name_datasets(catalog: Any, names: Iterable[str], kedro_run_id: str | None = None) -> None:
    """Bind each of ``names`` to its dataset in ``catalog`` when the dataset is one of ours.

    With ``kedro_run_id``, the datasets also learn which Kedro run they belong to, so that they
    pick that run's MLflow run even when several sessions run at once in one process.
    Only datasets already known to the catalog (or matched by a dataset factory) are looked
    up; the lookup is the one Kedro's runner makes anyway.
    """
    for name, dataset in catalog_datasets(catalog, names):
        for target in (dataset, wrapped_dataset(dataset)):  # an artifact wrapper's inner one too
            if isinstance(target, NamedDataset):
                target._bind_catalog_name(name)
                if kedro_run_id is not None:
                    target._kedro_run_id = kedro_run_id


def validate_datasets(catalog: Any, names: Iterable[str]) -> None:
    """Run the full checks of this plugin's datasets among ``names`` (flavor functions, workflow).

    Called when a tracked run starts, so a bad flavor fails the run before any node; it imports
    the flavors, which a run with tracking disabled never does (it only checks they exist).
    """
    for _, dataset in catalog_datasets(catalog, names):
        for target in (dataset, wrapped_dataset(dataset)):
            validate = getattr(target, "validate", None)
            if isinstance(target, ValidatedDataset) and callable(validate):
                validate()


def check_output_runs(catalog: Any, outputs: Iterable[str], active_run_id: str) -> None:
    """Fail before any node when a plugin dataset the pipeline writes names another run.

    Raises:
        RunConflictError: naming the dataset, its ``run_id`` and the active run; nothing was written.
    """
    from ..errors import RunConflictError

    for name, dataset in catalog_datasets(catalog, sorted(outputs)):
        run_id = getattr(dataset, "_run_id", None) if isinstance(dataset, NamedDataset) else None
        if run_id and run_id != active_run_id:
            label = dataset._label() if hasattr(dataset, "_label") else type(dataset).__name__
            if f"'{name}'" not in label:
                label = f"{label} (catalog entry '{name}')"
            raise RunConflictError(
                f"{label} is written by this pipeline, but its run_id "
                f"'{run_id}' differs from the active MLflow run '{active_run_id}'. No node ran and nothing "
                f"was written. Remove run_id from the catalog entry to save into the active run, or run "
                f"with tracking.run.id: {run_id} to write into run '{run_id}'. (Loading from another run "
                f"is allowed: only outputs are checked.)",
                run_id=run_id,
                dataset=label,
            )


class ValidatedDataset:
    """Mixin of datasets whose full checks import a flavor: ``validate()`` runs them."""

    def validate(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class DatasetNamingHooks:
    """Kedro hooks binding catalog names to this package's datasets before each pipeline run."""

    @hook_impl
    def before_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        name_datasets(catalog, sorted(pipeline.datasets()))

