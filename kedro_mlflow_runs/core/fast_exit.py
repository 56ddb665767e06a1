"""The fast exit: after a tracked run, skip Python's final walk over the objects MLflow loaded, unless
that could lose what the process wrote.

A process that imported MLflow spends 1.2 to 1.4 s of its shutdown walking and freeing the objects
of some 1,500 modules. ``gc.freeze()`` at exit moves every object alive into a generation that the
final collections skip: those objects are never freed, which is the speed-up. It is only safe when
freeing them would change nothing outside the process, and one thing does: an open file's buffered
writes reach the disk when the file object is freed (a node that leaves ``open(path, "w")`` in a
module variable, or in a reference cycle, relies on that without knowing). So at exit:

* every open, writable stream the garbage collector tracks is found (one pass over its objects);
* the standard streams and the streams of logging handlers are left out: Python flushes the former
  itself, and ``logging.shutdown`` (an atexit handler that runs after this one) closes the latter;
* in-memory streams and unbuffered file descriptors are left out: freeing them writes nothing;
* plain buffered files (what ``open()`` returns, in text or binary mode, over a file descriptor)
  are flushed: that is all their finalisation does that the OS does not (it closes descriptors);
* if any other writable stream is open (a ``gzip.GzipFile``, which writes its trailer on close, a
  stream over a socket, a class of the user's), or a flush fails, nothing is frozen and Python's
  ordinary shutdown finalises everything, exactly as it would without the plugin.

Python does not promise to run ``__del__`` of objects still alive at exit; with the fast exit it is
not run for those that are not streams. ``KEDRO_MLFLOW_RUNS_FAST_EXIT=0`` turns the fast exit off.
"""

from __future__ import annotations

import gc
import io
import logging
import os
import sys
from _io import _IOBase as _IOBASE  # the base of every stream class, C or Python (io.IOBase's too)
from collections.abc import Iterable
from typing import Any

__all__ = ["FAST_EXIT_ENV_VAR", "fast_exit"]

logger = logging.getLogger(__name__)

#: ``0`` turns the fast exit off.
FAST_EXIT_ENV_VAR = "KEDRO_MLFLOW_RUNS_FAST_EXIT"

#: Streams whose buffered data a flush fully saves, when their innermost raw stream is a FileIO.
_PLAIN_BUFFERED = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom)
#: Streams whose finalisation writes nothing anywhere.
_HARMLESS = (io.FileIO, io.BytesIO, io.StringIO)


def fast_exit() -> str:
    """Freeze the objects alive now, unless that could lose data (see the module docstring).

    Returns:
        What was done, for the debug log: ``"frozen"``, ``"off"`` or why nothing was frozen.
    """
    if os.environ.get(FAST_EXIT_ENV_VAR, "1") == "0":
        return "off"
    objects = gc.get_objects()
    try:
        at_risk = _open_writable_streams(objects)
    finally:
        del objects  # the list holds every object: let it go before freezing
    for stream in at_risk:
        if type(stream) not in _PLAIN_BUFFERED or not _over_a_file(stream):
            return f"kept: a {type(stream).__module__}.{type(stream).__qualname__} is open for writing"
    for stream in at_risk:
        try:
            stream.flush()
        except Exception as exc:  # Python's own shutdown tries again, and says so as it would anyway
            return f"kept: flushing {getattr(stream, 'name', stream)!r} failed ({type(exc).__name__})"
    gc.freeze()
    return "frozen"


def _open_writable_streams(objects: list[Any]) -> list[Any]:
    """The open, writable streams among ``objects`` that are neither standard streams, nor logging
    handlers' streams, nor harmless (in memory, unbuffered)."""
    types = set(map(type, objects))  # isinstance against io.IOBase (an ABC) on each object is far slower
    stream_types = {t for t in types if _IOBASE in t.__mro__ and t not in _HARMLESS}
    handler_types = {t for t in types if logging.Handler in t.__mro__}
    wanted = stream_types | handler_types
    found = [obj for obj in objects if type(obj) in wanted]  # the one pass over every object
    kept_elsewhere = _stream_family(
        [sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__]
        + [getattr(obj, "stream", None) for obj in found if type(obj) in handler_types]
    )
    return [obj for obj in found
            if type(obj) in stream_types and id(obj) not in kept_elsewhere and _writable(obj)]


def _stream_family(streams: Iterable[Any]) -> set[int]:
    """The ids of ``streams`` and of the buffers and raw streams beneath them."""
    ids: set[int] = set()
    for stream in streams:
        while stream is not None and id(stream) not in ids:
            ids.add(id(stream))
            stream = getattr(stream, "buffer", None) or getattr(stream, "raw", None)
    return ids


def _writable(stream: Any) -> bool:
    try:
        return not stream.closed and bool(stream.writable())
    except ValueError:  # detached from its buffer: holds nothing
        return False
    except Exception:  # a stream class of the user's that misbehaves: assume it holds data
        return True


def _over_a_file(stream: Any) -> bool:
    """Whether the raw stream beneath a text or buffered stream is a file descriptor's."""
    try:
        while not isinstance(stream, io.FileIO):
            stream = getattr(stream, "buffer", None) or getattr(stream, "raw", None)
            if stream is None:
                return False
    except ValueError:  # detached
        return False
    return True
