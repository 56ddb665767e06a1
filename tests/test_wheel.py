"""The wheel stands alone: it says where its docs, source and issues are, its license and status, ships
``py.typed``, and its messages cite the docs site, not a repository path; installed alone in a fresh
virtual environment (no system site-packages), it runs the demo project."""

from __future__ import annotations

import ast
import email.parser
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from kedro_mlflow_runs._version import DOCS_URL, docs_page

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "kedro_mlflow_runs"
REPO = "https://github.com/kedro-mlflow-runs/kedro-mlflow-runs"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built by pip from a copy of the sources (a build leaves build/ next to them)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "kedro_mlflow_runs", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("kedro_mlflow_runs-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_names_its_home_license_and_status_and_is_typed(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
        license_text = archive.read(metadata_name.replace("METADATA", "licenses/LICENSE")).decode()
    urls = dict(value.split(", ", 1) for value in metadata.get_all("Project-URL"))
    assert urls == {"Documentation": "https://kedro-mlflow-runs.readthedocs.io/", "Source": REPO,
                    "Issues": f"{REPO}/issues", "Changelog": f"{REPO}/blob/main/CHANGELOG.md"}
    assert metadata["License-Expression"] == "Apache-2.0" and metadata["License-File"] == "LICENSE"
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    classifiers = set(metadata.get_all("Classifier"))
    assert {"Development Status :: 3 - Alpha", "Framework :: Kedro", "Programming Language :: Python :: 3.11",
            "Typing :: Typed"} <= classifiers
    assert "kedro_mlflow_runs/py.typed" in names
    description = metadata.get_payload()  # the README, PyPI's page: no link into a repository checkout
    assert "kedro mlflow" in description and not re.search(r"\]\((?!https?://|#)", description)


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module that are not docstrings, f-string parts included."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_messages_and_the_init_template_cite_pages_of_the_docs_site_not_repository_paths():
    cited = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _string_constants(path):
            assert not re.search(r"docs/[\w-]+\.md", text), f"{path.relative_to(ROOT)}:{line} cites {text!r}"
        cited += re.findall(r"docs_page\(\s*['\"]([\w-]+)['\"]", path.read_text())
    documentation = re.search(r'^Documentation = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    assert DOCS_URL.startswith(documentation)  # the site the wheel's metadata names
    assert len(cited) >= 5
    assert [name for name in cited if not (ROOT / "docs" / f"{name}.md").exists()] == []  # pages of the site
    from kedro_mlflow_runs.config.template import render_template

    assert f"Reference: {docs_page('mlflow_yml')}\n" in render_template()
    assert docs_page("mlflow_yml") == "https://kedro-mlflow-runs.readthedocs.io/en/latest/mlflow_yml/"


@pytest.mark.slow
def test_the_wheel_alone_in_a_fresh_environment_runs_the_demo(wheel, tmp_path):
    """No system site-packages: the wheel and what it declares (plus the demo's scikit-learn) are enough."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-compile", str(wheel), "scikit-learn"],
                               capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "demo", demo, ignore=shutil.ignore_patterns("mlflow.db", "__pycache__", "*.log"))
    from kedro_project import kedro_env

    env = kedro_env(PYTHONPATH="", VIRTUAL_ENV=str(env_dir))
    run = subprocess.run([str(env_dir / "bin" / "kedro"), "run"], cwd=demo, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    listed = subprocess.run([str(env_dir / "bin" / "kedro"), "mlflow", "runs", "--json"], cwd=demo, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-3000:]
    import json

    (summary,) = json.loads(listed.stdout.splitlines()[-1])
    assert summary["status"] == "FINISHED"
    where = subprocess.run([str(python), "-c", "import kedro_mlflow_runs; print(kedro_mlflow_runs.__file__)"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert where.stdout.startswith(str(env_dir))  # the wheel's copy, not this checkout
