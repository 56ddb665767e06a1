"""``kedro mlflow ui``: the MLflow UI on the project's store.

The server runs under a small keeper process (:mod:`._ui_server`) that ends the server's whole process
group when this command ends in any way: on its signals (forwarded), and when it is killed outright
(the keeper sees the pipe from this process close).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import click

#: The signals that stop the UI: each one takes the server down, then ends this command the same way.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
#: How often the command says it is still waiting for the server (seconds).
_WAITING_NOTE_S = 30.0


@click.command(name="ui")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
@click.option("--host", default=None, help="Address to serve on (default: ui.host in mlflow.yml, else 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port to serve on (default: ui.port in mlflow.yml, else 5000).")
def ui(env: str | None, host: str | None, port: int | None) -> None:
    """Open the MLflow UI on this project's tracking store.

    It prints the address once the UI answers, and stops the UI when it is stopped.

    Example: kedro mlflow ui --port 5001
    """
    # the project's config loads Kedro's session: imported when the command runs, not for every `kedro` command
    from ..config.model import UiSection
    from ._project import project_config

    config = project_config(env, talks_to_store=False)
    config = dataclasses.replace(config, ui=UiSection(host or config.ui.host, port or config.ui.port))
    if config.server.tracking_uri.startswith(("http://", "https://")):
        click.echo(f"The tracking server is {config.server.redacted_tracking_uri}: open it in a browser.")
        return
    host, port = config.ui.host, config.ui.port
    address = f"http://{_url_host(host)}:{port}"
    if _port_taken(host, port):
        raise click.ClickException(_port_taken_message(host, port))
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", config.server.tracking_uri,
           "--host", host, "--port", str(port), "--workers", "1"]  # one user: MLflow's 4 cost 4 imports of it
    click.echo(f"Waiting for the MLflow UI to start on {address}...", err=True)
    server = _UiServer(cmd)
    try:
        if server.wait_until_healthy(f"http://{_url_host(_connect_host(host))}:{port}/health"):
            click.echo(f"Serving {config.server.redacted_tracking_uri} at {address} (Ctrl-C to stop)")
            server.wait()
    finally:
        server.stop()
    if server.signalled is not None:  # stopped on a signal: end the same way, as a shell expects
        signal.signal(server.signalled, signal.SIG_DFL)
        os.kill(os.getpid(), server.signalled)
    if server.answered:
        raise click.ClickException(
            f"The MLflow UI at {address} stopped by itself (exit code {server.exit_code}): see its output above.")
    if _port_taken(host, port):
        raise click.ClickException(_port_taken_message(host, port))
    raise click.ClickException(
        f"The MLflow UI stopped before it answered on {address} (exit code {server.exit_code}): "
        f"see its output above.")


class _UiServer:
    """The keeper process and, under it, the MLflow server; stopped by :data:`STOP_SIGNALS` sent to us."""

    def __init__(self, cmd: list[str]) -> None:
        self.signalled: int | None = None
        self.answered = False
        self.exit_code: int | None = None
        read_end, self._write_end = os.pipe()  # both close on exec; the keeper gets the read end alone
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            # a session of its own: the terminal's signals reach this command, which forwards them
            self._keeper = subprocess.Popen(
                [sys.executable, "-m", "kedro_mlflow_runs.cli._ui_server", str(read_end), *cmd],
                pass_fds=(read_end,), start_new_session=True)
        except BaseException:
            self._restore()
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.signalled is None:
            self.signalled = signum
        self._stop_keeper()

    def _stop_keeper(self) -> None:
        try:
            self._keeper.send_signal(signal.SIGTERM)
        except ProcessLookupError:  # pragma: no cover - already reaped
            pass

    def wait_until_healthy(self, health_url: str) -> bool:
        """Poll ``/health`` until it answers (True), or the server ends or we are signalled (False)."""
        started = next_note = time.monotonic()
        next_note += _WAITING_NOTE_S
        while self.signalled is None and self._keeper.poll() is None:
            if _answers(health_url):
                # a dead server cannot have answered: whatever answered is ours only if it is still up
                self.answered = self._keeper.poll() is None
                return self.answered and self.signalled is None
            if time.monotonic() >= next_note:
                click.echo(f"Still waiting for the MLflow UI ({time.monotonic() - started:.0f} s)...", err=True)
                next_note += _WAITING_NOTE_S
            time.sleep(0.25)
        return False

    def wait(self) -> None:
        """Wait until the keeper (and so the server) ends."""
        while True:
            try:
                self._keeper.wait()
                return
            except KeyboardInterrupt:  # pragma: no cover - _on_signal handles SIGINT
                continue

    def stop(self) -> None:
        """Take the server down (if still up), wait for its keeper, and give the signals back."""
        try:
            if self._keeper.poll() is None:
                self._stop_keeper()
                self.wait()
            self.exit_code = self._keeper.returncode
        finally:
            self._restore()
            os.close(self._write_end)

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # our own server: never through a proxy
    try:
        with opener.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):  # refused, reset, timeout, HTTP errors (URLError and HTTPError are OSErrors)
        return False


def _port_taken(host: str, port: int) -> bool:
    """Whether a server could not listen on ``host:port``, bound as uvicorn binds (SO_REUSEADDR; IPv6 when
    the host has a colon). Other errors (an unknown host) are left for the server to report."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _port_taken_message(host: str, port: int) -> str:
    other = 5001 if port == 5000 else 5000
    return (f"Port {port} on {host} is already in use (another MLflow UI or another program listens on it), "
            f"so the MLflow UI cannot serve there. Stop that program, or choose another port: "
            f"`kedro mlflow ui --port {other}`, or ui.port in mlflow.yml.")


def _connect_host(host: str) -> str:
    """Where to reach a server listening on ``host`` from this machine."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
