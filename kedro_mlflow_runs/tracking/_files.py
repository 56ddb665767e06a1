"""Tracking calls about artifacts and LoggedModels."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from ._base import _Calls
from .progress import describe_size, transfer_status

__all__ = ["FileCalls"]


class FileCalls(_Calls):
    """Artifacts, LoggedModels, model versions."""

    __slots__ = ()

    def log_artifact(self, run_id: str, local: str, artifact_path: str | None, *, status: bool = True) -> None:
        """Log a file, or every file of a folder, under ``artifact_path``; ``status``: show a status line on
        a terminal while it lasts (off when the caller shows one for many calls)."""
        if os.path.isdir(local):
            call: Callable[[], None] = lambda: self.client.log_artifacts(run_id, local, artifact_path)  # noqa: E731
        else:
            call = lambda: self.client.log_artifact(run_id, local, artifact_path)  # noqa: E731
        shown = (transfer_status(lambda: f"Logging '{local}'{describe_size(local)} to MLflow run {run_id[:8]}")
                 if status else contextlib.nullcontext())
        with shown:
            self._call(f"log '{local}' as an artifact of MLflow run '{run_id}'", call, run_id=run_id)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log ``text`` as the artifact ``artifact_file`` of run ``run_id`` (replacing one of that name)."""
        self._call(f"log '{artifact_file}' into MLflow run '{run_id}'",
                   lambda: self.client.log_text(run_id, text, artifact_file), run_id=run_id)

    def read_text(self, run_id: str, artifact_file: str) -> str:
        """The text of the artifact ``artifact_file`` of run ``run_id``."""
        import tempfile
        from pathlib import Path

        def read() -> str:
            with tempfile.TemporaryDirectory(prefix="kedro-mlflow-runs-") as tmp:
                return Path(self.client.download_artifacts(run_id, artifact_file, tmp)).read_text(encoding="utf-8")

        return self._call(f"read '{artifact_file}' of MLflow run '{run_id}'", read, run_id=run_id)

    def pending_models(self, run_id: str, experiment_id: str) -> list[Any]:
        """The LoggedModels of run ``run_id`` still PENDING (a ``log_model`` that never finished).

        MLflow's ``status`` filter does not work in 3.17 (PostgreSQL refuses it, sqlite ignores it):
        the run's models are listed and filtered here."""
        def search() -> list[Any]:
            found = self.client.search_logged_models(experiment_ids=[experiment_id],
                                                     filter_string=f"source_run_id = '{run_id}'")
            return [m for m in found if str(m.status).rpartition(".")[2] == "PENDING"]

        return self._call(f"search the pending models of MLflow run '{run_id}'", search, run_id=run_id)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[str]:
        """The artifact paths directly under ``path`` of run ``run_id``."""
        return self._call(
            f"list the artifacts of MLflow run '{run_id}'",
            lambda: [item.path for item in self.client.list_artifacts(run_id, path)],
            run_id=run_id,
        )

    def download_artifact(self, run_id: str, name: str, destination: str) -> str:
        with transfer_status(f"Downloading artifact '{name}' of MLflow run {run_id[:8]}"):
            return self._call(
                f"download artifact '{name}' of MLflow run '{run_id}'",
                lambda: self.client.download_artifacts(run_id, name, destination),
                run_id=run_id,
            )

    def write_trace(self, run_id: str, experiment_id: str, spans: list[dict[str, Any]], *, ok: bool,
                    tags: Mapping[str, str]) -> str:
        """Write ``spans`` (the root first) as one finished trace linked to run ``run_id``; its id."""
        from ..compat.mlflow import write_trace

        return self._call(f"write the node timeline of MLflow run '{run_id}' as a trace",
                          lambda: write_trace(self.tracking_uri, experiment_id, run_id, spans, ok=ok, tags=dict(tags)),
                          run_id=run_id)

    # -- LoggedModels ------------------------------------------------------------------------

    def create_logged_model(
        self,
        run_id: str,
        name: str,
        *,
        experiment_id: str | None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        model_type: str | None = None,
    ) -> str:
        """Create a LoggedModel linked to run ``run_id`` (its params included); return its id."""

        def create() -> str:
            run = self.client.get_run(run_id)
            model = self.client.create_logged_model(
                experiment_id=experiment_id or str(run.info.experiment_id),
                name=name,
                source_run_id=run_id,
                params={**{k: str(v) for k, v in (params or {}).items()}, **run.data.params},
                tags={str(k): str(v) for k, v in tags.items()} if tags else None,
                model_type=model_type,
            )
            return str(model.model_id)

        return self._call(f"create model '{name}' in MLflow run '{run_id}'", create, run_id=run_id)

    def fail_logged_model(self, model_id: str) -> None:
        """Mark a LoggedModel FAILED unless it already reached a final status (best effort)."""
        try:
            model = self.client.get_logged_model(model_id)
            if str(model.status).rpartition(".")[2] not in ("READY", "FAILED"):
                self.client.finalize_logged_model(model_id, "FAILED")
        except Exception:  # the save already failed; this only tidies up
            return

    def label_model_version(self, name: str, version: str, alias: str | None, tags: Mapping[str, Any]) -> None:
        """Set an alias and tags on version ``version`` of registered model ``name``."""

        def label() -> None:
            if alias:
                self.client.set_registered_model_alias(name, alias, version)
            for key, value in tags.items():
                self.client.set_model_version_tag(name, version, str(key), str(value))

        self._call(f"label version {version} of registered model '{name}'", label)

    def has_logged_model(self, run_id: str, experiment_id: str | None, name: str) -> bool:
        found = self._call(
            f"search models of MLflow run '{run_id}'",
            lambda: self.client.search_logged_models(
                experiment_ids=[experiment_id] if experiment_id else None,  # type: ignore[arg-type]
                filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
                max_results=1,
            ),
            run_id=run_id,
        )
        return len(found) > 0
