"""``kedro mlflow ui``: the MLflow UI on the project's store."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys

import click


@click.command(name="ui")
@click.option("--env", "-e", default=None, help="Kedro environment whose mlflow.yml to read.")
@click.option("--host", default=None, help="Address to serve on (default: ui.host in mlflow.yml, else 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port to serve on (default: ui.port in mlflow.yml, else 5000).")
def ui(env: str | None, host: str | None, port: int | None) -> None:
    """Open the MLflow UI on this project's tracking store.

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
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", config.server.tracking_uri,
           "--host", config.ui.host, "--port", str(config.ui.port)]
    address = f"http://{config.ui.host}:{config.ui.port}"
    click.echo(f"Serving {config.server.redacted_tracking_uri} at {address} (Ctrl-C to stop)")
    code = _run_forwarding_signals(cmd)
    if code < 0:  # the server ended on a signal: end the same way, as a shell expects
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    raise SystemExit(code)


def _run_forwarding_signals(cmd: list[str]) -> int:
    """Run ``cmd`` in its own process group; SIGINT/SIGTERM/SIGHUP to us stop its whole tree, and we wait."""
    child = subprocess.Popen(cmd, start_new_session=True)

    def forward(signum: int, frame: object) -> None:
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # pragma: no cover - forward() already handled it
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # pragma: no cover
            os.killpg(child.pid, signal.SIGKILL)
