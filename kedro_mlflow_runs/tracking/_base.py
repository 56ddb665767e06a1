"""What every tracking call shares: the store, its client, and the error translation around the call."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, TypeVar

from .._redact import safe_cause
from ..errors import ParameterError, RunNotFoundError, TrackingError, TrackingUnavailableError
from ._errors import quiet_store_errors, storage_failure, translate
from ._store import CLIENTS

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

__all__ = ["MAX_DATASETS_PER_BATCH", "MAX_METRICS_PER_BATCH", "MAX_PARAMS_TAGS_PER_BATCH"]

logger = logging.getLogger(__name__)

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_DATASETS_PER_BATCH = 1000

T = TypeVar("T")


class _Calls:
    """The store a tracker calls, its client, and the one way every call is made (see :class:`Tracker`)."""

    __slots__ = ("registry_uri", "scope", "tracking_uri")

    def __init__(self, tracking_uri: str, registry_uri: str | None = None, *,
                 scope: Callable[[], AbstractContextManager[object]] | None = None):
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        #: entered around each call: the credentials a call outside a run needs (see ``ProcessState``)
        self.scope = scope

    @property
    def client(self) -> MlflowClient:
        return CLIENTS.get(self.tracking_uri, self.registry_uri)

    # -- the one error translation -----------------------------------------------------------

    def _call(self, what: str, call: Callable[[], T], *, run_id: str | None = None) -> T:
        """Run ``call``; turn any failure into our error saying ``what`` failed."""
        try:
            with quiet_store_errors(self.tracking_uri), (self.scope() if self.scope else contextlib.nullcontext()):
                return call()
        except (TrackingError, RunNotFoundError, ParameterError, TrackingUnavailableError):
            raise
        except Exception as exc:
            logger.debug("Could not %s", what, exc_info=True)
            error = translate(self.tracking_uri, what, exc, run_id=run_id)
            if storage_failure(exc, self.tracking_uri) is not None:  # our message says it all: no chained
                raise error from None  # traceback through MLflow's and SQLAlchemy's frames (DEBUG has it)
            raise error from safe_cause(exc)

    def translate(self, what: str, exc: BaseException, *, run_id: str | None = None) -> Exception:
        """Our error for ``exc``, raised while trying to ``what``."""
        return translate(self.tracking_uri, what, exc, run_id=run_id)
