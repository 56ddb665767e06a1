"""Build real Kedro projects on disk for the tests (no network, no starter download)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml

_counter = itertools.count()

NODES = '''
"""Nodes of the test project: their behaviour is steered by parameters."""
import os
import time
from pathlib import Path


def make_data(data):
    return [float(i) for i in range(int(data["n"]))]


def train(values, model):
    if model.get("started_marker"):
        Path(model["started_marker"]).write_text("started")
    if model.get("sleep"):
        time.sleep(float(model["sleep"]))
    while model.get("gate") and not Path(model["gate"]).exists():  # --params model.gate=PATH: held until it exists
        time.sleep(0.1)
    if model.get("fail"):
        raise ValueError("train failed on purpose: " + str(model["fail"]))
    if model.get("exit"):
        raise SystemExit(int(model["exit"]))
    if model.get("log_metric"):
        import mlflow
        mlflow.log_metric("user_metric", 0.5)
    return {"coef": float(model["C"]) * sum(values)}


def report(result, parameters):
    return {"coef": result["coef"], "n_params": len(parameters)}
'''

REGISTRY = '''
from kedro.pipeline import Pipeline, node, pipeline

from .nodes import make_data, report, train


def register_pipelines():
    data = pipeline([node(make_data, "params:data", "values", name="make_data")])
    training = pipeline([
        node(train, ["values", "params:model"], "result", name="train"),
        node(report, ["result", "parameters"], "summary", name="report"),
    ])
    return {
        "__default__": data + training,
        "data": data,
        "training": data + training,
        "quiet": pipeline([node(make_data, "params:data", "quiet_values", name="quiet")]),
    }
'''

PARAMETERS = {
    "data": {"n": 4},
    "model": {"C": 0.5, "kernel": "rbf", "nested": {"depth": 3}, "fail": False, "sleep": 0,
              "started_marker": "", "log_metric": False, "exit": 0},
    "seed": 42,
}


def make_project(
    root: Path,
    *,
    mlflow_yml: dict[str, Any] | str | None = None,
    settings: str = "",
    parameters: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    local_files: dict[str, str] | None = None,
    template_db: Path | None = None,
    nodes: str | None = None,
    registry: str | None = None,
) -> Path:
    """Write a Kedro project under ``root`` with a unique package name; return its path."""
    package = f"kmr_proj_{os.getpid()}_{next(_counter)}"
    project = root / package
    src = project / "src" / package
    src.mkdir(parents=True)
    (project / "conf" / "base").mkdir(parents=True)
    (project / "conf" / "local").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [tool.kedro]
            package_name = "{package}"
            project_name = "{package}"
            kedro_init_version = "1.7.0"
            source_dir = "src"
            """
        )
    )
    (src / "__init__.py").write_text("")
    (src / "__main__.py").write_text("")
    (src / "settings.py").write_text(settings)
    (src / "nodes.py").write_text(nodes if nodes is not None else NODES)
    (src / "pipeline_registry.py").write_text(registry if registry is not None else REGISTRY)
    (project / "conf" / "base" / "parameters.yml").write_text(yaml.safe_dump(parameters or PARAMETERS))
    (project / "conf" / "base" / "catalog.yml").write_text(yaml.safe_dump(catalog or {}))
    if mlflow_yml is not None:
        text = mlflow_yml if isinstance(mlflow_yml, str) else yaml.safe_dump(mlflow_yml)
        (project / "conf" / "base" / "mlflow.yml").write_text(text)
    for rel, text in (local_files or {}).items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if template_db is not None:
        shutil.copy(template_db, project / "mlflow.db")
    return project


def store_uri(project: Path) -> str:
    return f"sqlite:///{(project / 'mlflow.db').as_posix()}"


def run_session(project: Path, **run_kwargs: Any) -> Any:
    """``kedro run`` in this process, through KedroSession."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    env = run_kwargs.pop("env", None)
    runtime_params = run_kwargs.pop("runtime_params", None)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env, runtime_params=runtime_params) as session:
        return session.run(**run_kwargs)


def kedro_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def kedro_cmd(*args: str) -> list[str]:
    kedro = Path(sys.executable).with_name("kedro")
    return [str(kedro), *args] if kedro.exists() else [sys.executable, "-m", "kedro", *args]


def kedro_run(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``kedro run`` in a subprocess, as a user would type it."""
    return subprocess.run(
        kedro_cmd("run", *args),
        cwd=project,
        env=env or kedro_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until_started(marker: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    """Wait for a node of ``proc`` (a ``kedro run`` subprocess) to write its ``started_marker``."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:] if proc.stdout else "kedro run exited"
        assert time.monotonic() < deadline, "the node never started"
        time.sleep(0.1)


def signal_mid_node(project: Path, marker: Path, signum: int, *args: str, sleep: float) -> tuple[Any, str]:
    """``kedro run [args]`` whose train node sleeps ``sleep`` s; ``signum`` once the node started.

    Returns the finished process and its output (stdout and stderr).
    """
    proc = subprocess.Popen(
        kedro_cmd("run", *args, "--params", f"model.sleep={sleep},model.started_marker={marker}"),
        cwd=project, env=kedro_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_started(marker, proc)
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc, output
