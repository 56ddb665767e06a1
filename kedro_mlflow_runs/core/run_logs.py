"""What a RunContext logs into its run: parameters (flattened, checked for conflicts), tags, metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import TrackingError
from ..params import check_param_conflicts, split_long_values, to_mlflow_params
from .tags import clip_tags

if TYPE_CHECKING:  # pragma: no cover
    from ..config import MlflowConfig
    from ..handle import RunHandle
    from ..tracking import Tracker

__all__ = ["RunLogs"]


class RunLogs:
    """The logging calls of :class:`~.context.RunContext` (a mixin: the context supplies the run)."""

    config: MlflowConfig
    _lock: threading.RLock
    _logged_params: dict[str, str]

    @property
    def tracker(self) -> Tracker:  # pragma: no cover - the context defines it
        raise NotImplementedError

    def _require_active(self, what: str) -> RunHandle:  # pragma: no cover - the context defines it
        raise NotImplementedError

    def log_params(self, kedro_params: Mapping[str, Any]) -> dict[str, str]:
        """Log Kedro parameter inputs (``{"params:x": value, "parameters": {...}}``) in batches.

        Dicts are flattened as configured; a value logged before with the same value is skipped,
        a different value is a :class:`ParameterError` naming the key. Returns what was sent.
        """
        handle = self._require_active("log parameters")
        settings = self.config.tracking.params
        flat = to_mlflow_params(kedro_params, flatten_dicts=settings.flatten, recursive=settings.recursive,
                                sep=settings.sep)
        params, as_tags = split_long_values(flat, settings.long_params_strategy)
        with self._lock:
            params = check_param_conflicts(handle.run_id, params, self._logged_params)
            if params or as_tags:
                try:
                    self.tracker.log_batch(handle.run_id, params=params, tags=as_tags, what="log parameters to")
                except TrackingError as exc:
                    params = self._after_a_race(handle.run_id, params, as_tags, exc)
                self._logged_params.update(params)
        return params

    def _after_a_race(self, run_id: str, params: dict[str, str], as_tags: Mapping[str, str],
                      refused: TrackingError) -> dict[str, str]:
        """A refused batch of parameters: another process attached to the run (a step of the same
        pipeline on another machine) may have logged some of them at the same moment, which the store
        refuses as a duplicate even for the same value. Read what the run holds now: a different value
        is a :class:`ParameterError`; the same value is fine; what is still missing is sent once more.
        Any other cause: the original error, ``refused``."""
        try:
            existing = dict(self.tracker.get_run(run_id).data.params)
        except Exception:
            raise refused from None
        if not any(key in existing for key in params):
            raise refused
        missing = check_param_conflicts(run_id, params, existing)
        self._logged_params.update({key: value for key, value in params.items() if key in existing})
        if missing or as_tags:
            self.tracker.log_batch(run_id, params=missing, tags=as_tags, what="log parameters to")
        return missing

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        handle = self._require_active("set tags")
        self.tracker.log_batch(handle.run_id, tags=clip_tags(tags), what="set tags on")

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log ``{key: value}`` metrics at ``step`` in batches."""
        handle = self._require_active("log metrics")
        now = int(time.time() * 1000)
        self.tracker.log_batch(handle.run_id, metrics=[(k, v, now, step) for k, v in metrics.items()],
                               what="log metrics to")
