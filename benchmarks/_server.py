"""A real ``mlflow server`` for the benchmarks that need one (``g_artifacts.py``, ``g_server_runs.py``).

Standard library only; importing this module does nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["MlflowServer", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MlflowServer:
    """``mlflow server`` of this Python with proxied artifacts (``folder/served``), its output in
    ``folder/server.log``; a context manager that waits for ``/health`` and stops the whole process group."""

    def __init__(self, folder: Path, backend_uri: str, *, workers: int = 2, extra: Sequence[str] = ()) -> None:
        self.folder, self.backend_uri, self.workers, self.extra = folder, backend_uri, workers, tuple(extra)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MlflowServer:
        import urllib.request

        exe = Path(sys.executable).with_name("mlflow")
        cmd = [str(exe), "server", "--backend-store-uri", self.backend_uri,
               "--artifacts-destination", str(self.folder / "served"), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers), *self.extra]
        # TMPDIR: the server's lock files; HOME: gunicorn's control socket (when gunicorn runs it)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
               "TMPDIR": str(self.folder), "HOME": str(self.folder)}
        log = self.folder / "server.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=self.folder, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"mlflow server exited: {log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise SystemExit("mlflow server did not answer /health in 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
