"""The three contenders' virtualenvs: built once, cached, reused while their requirements match.

``bare``          Kedro, kedro-datasets, scikit-learn, pandas (no MLflow plugin, no MLflow).
``ours``          the same plus this repository (kedro-mlflow-runs), installed non-editable.
``kedro-mlflow``  the same bare set plus kedro-mlflow 2.x from the package index.

Each venv lives in ``<cache>/<name>`` (``python3.11 -m venv`` + pip). A file ``.kmr-bench.json`` in
it records the hash of its requirement list; a venv whose hash differs is rebuilt from scratch. For
``ours`` the hash of the package's sources is recorded separately: when only the sources changed,
the package alone is reinstalled (``pip install --no-deps --force-reinstall``, a few seconds), so
the lead's fixes are measured without rebuilding the venv.

Standard library only; importing this module does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BARE", "BARE_MLFLOW", "KEDRO_MLFLOW", "OURS", "Venv", "build_all", "default_cache", "source_hash"]

#: the requirements every contender shares (the bare Kedro project's own needs)
BASE_REQUIREMENTS: tuple[str, ...] = (
    "kedro>=1.7,<2",
    "kedro-datasets[pandas-csvdataset,json-jsondataset,pickle-pickledataset]",
    "scikit-learn",
    "pandas",
)
#: kedro-mlflow 2.0.3 declares kedro>=1.0,<2 and mlflow>=3.0,<4: it installs beside Kedro 1.7+.
KEDRO_MLFLOW_REQUIREMENT = "kedro-mlflow==2.0.3"

BARE = "bare"
#: bare plus MLflow and its dependencies, no plugin: what merely installing MLflow costs a plain
#: `kedro run` (Kedro, dynaconf, pandas and kedro-datasets import flask, pyarrow, sqlalchemy, ...
#: when they are installed)
BARE_MLFLOW = "bare-mlflow"
MLFLOW_REQUIREMENT = "mlflow>=3.4,<4"
OURS = "ours"
KEDRO_MLFLOW = "kedro-mlflow"
_MARKER = ".kmr-bench.json"
_PYTHON = os.environ.get("KMR_BENCH_PYTHON", "python3.11")


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/kmr-bench-venvs`` (``~/.cache/kmr-bench-venvs``): outside the repository."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "kmr-bench-venvs"


def source_hash(repo: Path) -> str:
    """Hash of the package sources a non-editable install of ``repo`` copies (``*.py``)."""
    digest = hashlib.sha256()
    files = sorted((repo / "kedro_mlflow_runs").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(repo)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Venv:
    """One contender's virtualenv.

    Attributes:
        name: ``bare``, ``ours`` or ``kedro-mlflow``.
        path: the venv's folder.
        requirements: what pip installs into it (the repository path for ``ours`` is not listed:
            it is installed separately and tracked by its source hash).
        salt: more text the requirement hash covers (``ours``: the repository's pyproject.toml,
            whose dependencies pip resolves when the venv is built).
        versions: installed versions of kedro, mlflow, kedro-mlflow, kedro-mlflow-runs, scikit-learn.
    """

    name: str
    path: Path
    requirements: tuple[str, ...]
    salt: str = ""
    versions: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.path / "bin" / "python"

    @property
    def kedro(self) -> Path:
        """The venv's ``kedro`` executable."""
        return self.path / "bin" / "kedro"

    def requirements_hash(self) -> str:
        """Hash of the requirement list and the interpreter it is built with."""
        text = "\n".join([_PYTHON, *self.requirements, self.salt])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pip(venv: Venv, *args: str, log: Path) -> None:
    cmd = [str(venv.python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode:
        tail = log.read_text()[-4000:]
        raise SystemExit(f"pip failed building the '{venv.name}' venv ({' '.join(args)}):\n{tail}")


def _read_marker(path: Path) -> dict[str, str]:
    try:
        return dict(json.loads((path / _MARKER).read_text()))
    except (OSError, ValueError):
        return {}


def _write_marker(path: Path, marker: dict[str, str]) -> None:
    (path / _MARKER).write_text(json.dumps(marker, indent=2))


def _versions(venv: Venv) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for d in ('kedro', 'mlflow', 'kedro-mlflow', 'kedro-mlflow-runs', 'kedro-datasets', 'scikit-learn', 'pandas'):\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(venv.python), "-c", code], capture_output=True, text=True, check=True,
                          cwd=tempfile.gettempdir())  # not the checkout: `-c` puts the cwd on sys.path
    return dict(json.loads(proc.stdout))


def _staged(repo: Path, into: Path) -> Path:
    """A copy of what the wheel is built from (pip builds in place: the checkout stays clean)."""
    stage = into / "src"
    shutil.copytree(repo / "kedro_mlflow_runs", stage / "kedro_mlflow_runs",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "setup.py", "MANIFEST.in"):
        if (repo / name).exists():
            shutil.copy2(repo / name, stage / name)
    return stage


def ensure(venv: Venv, repo: Path | None, log: Path, say: Callable[[str], None]) -> Venv:
    """Build ``venv`` unless a cached one has the same requirement hash; install ``repo`` into it."""
    marker = _read_marker(venv.path)
    wanted = venv.requirements_hash()
    if marker.get("requirements") != wanted or not venv.python.exists():
        say(f"building venv '{venv.name}' in {venv.path} (a few minutes; log: {log})")
        start = time.perf_counter()
        if venv.path.exists():
            shutil.rmtree(venv.path)
        venv.path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([_PYTHON, "-m", "venv", str(venv.path)], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            local = [str(_staged(repo, Path(tmp)))] if repo is not None else []
            _pip(venv, *venv.requirements, *local, log=log)
        marker = {"requirements": wanted, "list": "\n".join(venv.requirements)}
        if repo is not None:
            marker["source"] = source_hash(repo)
        _write_marker(venv.path, marker)
        say(f"venv '{venv.name}' built in {time.perf_counter() - start:.0f} s")
    elif repo is not None and marker.get("source") != source_hash(repo):
        say(f"reinstalling {repo} into venv '{venv.name}' (its sources changed)")
        with tempfile.TemporaryDirectory() as tmp:
            _pip(venv, "--no-deps", "--force-reinstall", str(_staged(repo, Path(tmp))), log=log)
        marker["source"] = source_hash(repo)
        _write_marker(venv.path, marker)
    return Venv(venv.name, venv.path, venv.requirements, venv.salt, _versions(venv))


def build_all(cache: Path, repo: Path, names: set[str], say: Callable[[str], None]) -> dict[str, Venv]:
    """The venvs named in ``names`` (``bare``, ``ours``, ``kedro-mlflow``), built or reused."""
    cache.mkdir(parents=True, exist_ok=True)
    log = cache / "pip.log"
    specs = {
        BARE: (Venv(BARE, cache / BARE, BASE_REQUIREMENTS), None),
        BARE_MLFLOW: (Venv(BARE_MLFLOW, cache / BARE_MLFLOW, (*BASE_REQUIREMENTS, MLFLOW_REQUIREMENT)), None),
        # the plugin's own dependencies (mlflow>=3.4,<4, ...) come from its pyproject
        # psycopg: the driver of the `server` workload's mlflow server (never imported by a `kedro run`)
        OURS: (Venv(OURS, cache / OURS, (*BASE_REQUIREMENTS, "psycopg[binary]"), (repo / "pyproject.toml").read_text()),
               repo),
        KEDRO_MLFLOW: (Venv(KEDRO_MLFLOW, cache / KEDRO_MLFLOW, (*BASE_REQUIREMENTS, KEDRO_MLFLOW_REQUIREMENT)), None),
    }
    return {name: ensure(venv, src, log, say) for name, (venv, src) in specs.items() if name in names}


if __name__ == "__main__":  # pragma: no cover - manual use: build the venvs only
    here = Path(__file__).resolve().parents[1]
    built = build_all(default_cache(), here, {BARE, OURS, KEDRO_MLFLOW}, lambda s: print(s, flush=True))
    for v in built.values():
        print(v.name, v.versions)
    sys.exit(0)
