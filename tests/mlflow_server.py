"""A real `mlflow server` on a free loopback port, backed by a fresh PostgreSQL database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_or_skip():
    """A psycopg connection to the server's `postgres` database; skip (or fail in CI) when absent."""
    try:
        import psycopg

        return psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5)
    except Exception as exc:  # psycopg missing, or no server
        if os.environ.get("KMR_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required (KMR_REQUIRE_POSTGRES is set) but unavailable: {exc}")
        pytest.skip(f"PostgreSQL not available at 127.0.0.1:5432: {exc}")


class TempDatabase:
    """CREATE DATABASE on enter, DROP DATABASE on exit."""

    def __init__(self) -> None:
        self.name = f"kmr_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.uri = f"postgresql://postgres@127.0.0.1:5432/{self.name}"

    def __enter__(self) -> TempDatabase:
        with postgres_or_skip() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        with postgres_or_skip() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class MlflowServer:
    """`mlflow server` with a PostgreSQL backend and proxied artifacts; stoppable and restartable."""

    def __init__(self, backend_uri: str, workdir: Path, *, artifacts_destination: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        """``artifacts_destination``: where the server stores artifacts (default: ``workdir/artifacts``);
        ``env``: extra environment variables of the server process only (storage credentials)."""
        self.backend_uri = backend_uri
        self.workdir = workdir
        self.artifacts = workdir / "artifacts"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.artifacts_destination = artifacts_destination or str(self.artifacts)
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> None:
        mlflow_exe = Path(sys.executable).with_name("mlflow")
        cmd = [
            str(mlflow_exe), "server",
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", self.artifacts_destination,
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        # TMPDIR: the server leaves a db_init_lock-<hash> file in its temporary folder
        # MLFLOW_SERVER_ENABLE_JOB_EXECUTION: MLflow 3.17's server otherwise starts a job runner and seven
        # huey consumers (each importing mlflow), seconds of CPU that slow down every step of a test
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "TMPDIR": str(self.workdir),
               "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.extra_env}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     start_new_session=True, env=env)
        log.close()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer /health in {timeout}s: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=20)
        # wait until the port is really closed
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.2)
