"""End the run when a ``SystemExit`` or ``KeyboardInterrupt`` raised by node code escapes the runner.

Kedro calls no hook for these (they are not ``Exception``\\ s), so without a guard an in-process
session (a notebook, a worker that runs sessions) would leave the run RUNNING until the next
session in the thread or the end of the process. Nothing is patched at import: when a tracked
run starts, ``before_pipeline_run`` wraps the ``run`` method of *the runner instance* that this
``KedroSession.run`` call is about to use, and the wrapper removes itself when the runner returns.

Finding that runner reads one local variable (``runner``) of the calling ``KedroSession.run``
frame: a Kedro detail, in ``compat/kedro.py``. When it is not found the run is still ended KILLED,
later: by the next Kedro run in the thread, or at interpreter exit.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..compat import kedro as compat_kedro

__all__ = ["guard_runner", "session_runner", "shutdown_manager"]


def session_runner() -> Any | None:
    """The runner the ``KedroSession.run`` call on this thread's stack is about to use, if any."""
    return compat_kedro.session_runner(sys._getframe(1))


def guard_runner(runner: Any, on_escape: Callable[[BaseException], None]) -> Callable[[], None] | None:
    """Wrap ``runner.run`` for the calling thread's next call: ``on_escape(exc)`` for a
    non-``Exception`` escaping it, then re-raise. The wrapper removes itself when that call returns;
    the returned function removes it too (if the call never happens). Calls from other threads (a
    runner instance shared by sessions in several threads) pass straight through.

    Returns None (nothing changed) when the runner cannot carry an instance attribute.
    """
    original = runner.run
    owner = threading.get_ident()

    @functools.wraps(original)
    def run(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner:
            return original(*args, **kwargs)
        try:
            return original(*args, **kwargs)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                on_escape(exc)
            raise
        finally:
            remove()

    def remove() -> None:
        if vars(runner).get("run") is run:
            del runner.run

    try:
        runner.run = run
    except (AttributeError, TypeError):
        return None
    return remove


def shutdown_manager(runner: Any) -> None:
    """Ask the multiprocessing manager of Kedro's ParallelRunner to shut down: the manager process then
    exits on its own terms and removes its ``pymp-*`` temporary folder, which terminating it would
    leave behind."""
    manager = compat_kedro.runner_manager(runner)
    if manager is not None:
        manager.shutdown()
