"""The loads and saves in progress in a process, so that a failed run can name its dataset and node.

A load or save that raises never finishes: Kedro's node error hook does not see it (it runs outside
the node's function), so the run's error tags take the dataset and the node from what is still
pending here when the run ends.

A load that read its data from somewhere else than its own location (an artifact dataset whose
local file was missing downloads it from the run) leaves a note here: the dataset hook that follows
the load takes it (:meth:`PendingIO.take_source`) and hands it to the lineage.
"""

from __future__ import annotations

__all__ = ["PendingIO"]


class PendingIO:
    """``(catalog entry, node)`` pairs whose load or save has started and not finished."""

    __slots__ = ("_pending", "_sources")

    def __init__(self) -> None:
        self._pending: set[tuple[str, str | None]] = set()
        self._sources: dict[str, str] = {}  # catalog entry -> URI its last load downloaded the data from

    def loaded_from(self, dataset_name: str, uri: str) -> None:
        """The load of ``dataset_name`` in progress read its data from ``uri`` (``runs:/<run id>/<path>``)."""
        self._sources[dataset_name] = uri

    def take_source(self, dataset_name: str) -> str | None:
        """The URI the last load of ``dataset_name`` read from (once), None when it read its own location."""
        return self._sources.pop(dataset_name, None)

    def started(self, dataset_name: str, node_name: str | None) -> None:
        self._pending.add((dataset_name, node_name))

    def done(self, dataset_name: str, node_name: str | None) -> None:
        self._pending.discard((dataset_name, node_name))

    def failed(self, error: BaseException) -> tuple[str | None, str | None]:
        """``(catalog entry, node)`` of the load or save that raised ``error``, or ``(None, None)``."""
        pending = sorted(self._pending.copy(), key=lambda item: (item[0], item[1] or ""))  # copy: one atomic step
        if not pending:
            return None, None
        texts: list[str] = []
        seen: BaseException | None = error
        while seen is not None and len(texts) < 20:
            texts.append(str(seen))
            seen = seen.__cause__ or seen.__context__
        for name, node in pending:  # Kedro's catalog prefixes a dataset's error with "<name>: "
            if any(text.startswith(f"{name}: ") or f"catalog entry '{name}'" in text for text in texts):
                return name, node
        return pending[0] if len(pending) == 1 else (None, None)
