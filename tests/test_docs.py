"""The documentation: the MkDocs site builds strict and offline, the pages cover what they claim to
cover, and every block marked runnable runs.

A fenced block is runnable when the line before it is ``<!-- runnable: KIND -->``:
- ``catalog``: YAML loaded into a real Kedro ``DataCatalog``; every entry is built.
- ``mlflow.yml``: YAML validated by ``build_config``; ``mlflow.yml defaults``: and it must configure
  exactly what an empty mlflow.yml does.
- ``python``: run in this process, in an empty folder, with ``MLFLOW_TRACKING_URI`` at a temp store.
- ``python in a project``: the same, from the folder of a fresh Kedro project (its own store).
- ``pytest``: a test file; each test is called with the plugin's ``mlflow_store`` and a fresh
  project as ``project_path``.
Whatever a block leaves behind (env vars, active runs, MLflow globals, files in the cwd) fails the
test (conftest's ``_no_leaks``), and no block may leave a run RUNNING.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import all_runs
from kedro_project import kedro_env, make_project, store_uri

import kedro_mlflow_runs
import kedro_mlflow_runs.errors
import kedro_mlflow_runs.io
import kedro_mlflow_runs.pipeline
import kedro_mlflow_runs.testing

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
MARKER = re.compile(r"^<!-- runnable: (?P<kind>[\w. ]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)^```", re.S | re.M)
KINDS = {"catalog": "yaml", "mlflow.yml": "yaml", "mlflow.yml defaults": "yaml", "python": "python",
         "python in a project": "python", "pytest": "python"}


def _blocks() -> list[Any]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for match in MARKER.finditer(text):
            line = text[: match.start()].count("\n") + 2
            found.append(pytest.param(match["kind"], match["lang"], match["body"], id=f"{page.name}:{line}"))
    return found


BLOCKS = _blocks()


# -- the site ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mkdocs build --strict`` with every proxy pointing at a closed port: a build that needs the
    network fails. mkdocs comes with the test extra: if it is missing, this fails (no skip)."""
    out = tmp_path_factory.mktemp("site")
    dead = "http://127.0.0.1:9"
    env = {**kedro_env(), "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
           "ALL_PROXY": dead, "NO_PROXY": "", "no_proxy": ""}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return out


def test_the_site_builds_strict_with_every_page_in_the_navigation(site):
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def pages(nav: Any) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for v in nav.values() for p in pages(v)]
        return [p for item in nav for p in pages(item)]

    listed = pages(config["nav"])
    assert sorted(listed) == sorted(p.name for p in DOCS.glob("*.md"))
    titles = [next(iter(item)) for item in config["nav"]]
    for title in ("Getting started", "Concepts", "Configuration", "Datasets", "Runners and deployment",
                  "Performance", "Troubleshooting", "Migrating from kedro-mlflow", "API reference"):
        assert title in titles
    for page in listed:
        built = site / "index.html" if page == "index.md" else site / page.removesuffix(".md") / "index.html"
        assert built.is_file(), page


def test_the_site_loads_no_remote_asset(site):
    remote = re.compile(r"<(?:script|img|iframe)[^>]*\ssrc=\"(?:https?:)?//|<link[^>]*\shref=\"(?:https?:)?//")
    offenders = [p.relative_to(site).as_posix() for p in site.rglob("*.html") if remote.search(p.read_text())]
    assert not offenders
    css = [p.relative_to(site).as_posix() for p in site.rglob("*.css")
           if re.search(r"@import\s+url\(\s*[\"']?(?:https?:)?//|url\(\s*[\"']?https?://", p.read_text())]
    assert not css


def test_the_api_reference_documents_the_public_api(site):
    html = (site / "api" / "index.html").read_text()
    names = [f"kedro_mlflow_runs.{n}" for n in kedro_mlflow_runs.__all__ if n != "__version__"]
    names += [f"kedro_mlflow_runs.testing.{n}" for n in kedro_mlflow_runs.testing.__all__]
    names += [f"kedro_mlflow_runs.io.{n}" for n in kedro_mlflow_runs.io.__all__
              if getattr(kedro_mlflow_runs.io, n).__name__ == n]  # legacy aliases are the same classes
    names += [f"kedro_mlflow_runs.pipeline.{n}" for n in kedro_mlflow_runs.pipeline.__all__]
    missing = [n for n in names if f'id="{n}"' not in html]
    assert not missing


def test_every_link_between_pages_leads_somewhere_the_title_link_included(site):
    """Each relative link of the built site (the title link to the home page, the navigation, links
    between pages and to their sections) names a page that exists and, after `#`, an anchor on it."""
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: list[str] = []
            self.ids: set[str] = set()

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "a" and found.get("href"):
                self.hrefs.append(str(found["href"]))
            if tag == "img" and found.get("src"):  # the pictures too
                self.hrefs.append(str(found["src"]))
            if found.get("id"):
                self.ids.add(str(found["id"]))

    parsed: dict[Path, Links] = {}
    for page in site.rglob("*.html"):
        parsed[page] = Links()
        parsed[page].feed(page.read_text())
    dead = []
    for page, links in parsed.items():
        if page.name == "404.html":  # served at any address: its links are absolute
            continue
        for href in links.hrefs:
            if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith("//"):
                continue  # another site
            path, _, anchor = href.partition("#")
            target = (page.parent / path).resolve() if path else page
            if target.is_dir():
                target = target / "index.html"
            if (target not in parsed and not (target.suffix != ".html" and target.is_file())) or \
                    (anchor and anchor not in parsed[target].ids):
                dead.append(f"{page.relative_to(site)} -> {href}")
    assert (site / "index.html") in parsed  # the home page the title links to
    assert dead == []


def test_the_docs_never_cite_internal_issue_numbers():
    pattern = re.compile(r"\bissues? ?#?\d+\b|\(#\d+\)|\bPR ?#?\d+", re.I)
    cited = [f"{p.name}: {m.group(0)}" for p in sorted(DOCS.glob("*.md")) for m in pattern.finditer(p.read_text())]
    assert cited == []


# -- pages that must cover something -----------------------------------------------------------------

def test_every_exported_error_class_is_in_troubleshooting_with_an_example_cause_and_remedy():
    text = (DOCS / "troubleshooting.md").read_text()
    sections = dict(re.findall(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, re.S | re.M))
    exported = set(kedro_mlflow_runs.errors.__all__)
    assert exported <= set(kedro_mlflow_runs.__all__)
    assert set(sections) == exported
    for name, body in sections.items():
        example = re.search(r"```text\n(.*?)```", body, re.S)
        assert example and all(line.startswith(f"{name}: ") for line in example[1].splitlines()), name
        assert "**Cause.**" in body and "**What to do.**" in body, name


def test_the_configuration_page_is_the_schema():
    """The key table and the "every key with its default" block of docs/mlflow_yml.md are what the schema
    renders (``python -m kedro_mlflow_runs.config.template [--markdown]`` prints them): a key added,
    renamed or given another default without the docs fails here."""
    from kedro_mlflow_runs.config import KEYS
    from kedro_mlflow_runs.config.template import render_key_table, render_template

    text = (DOCS / "mlflow_yml.md").read_text()
    table = text[text.index("## Keys"):]
    table = table[table.index("| key |"):]
    table = table[:table.index("\n\n")] + "\n"
    assert table == render_key_table()
    assert len(KEYS) >= 30
    (defaults,) = [b.values[2] for b in BLOCKS if b.values[0] == "mlflow.yml defaults"]
    assert defaults == render_template()


def test_the_init_template_configures_exactly_what_an_empty_file_does(tmp_path):
    from kedro_mlflow_runs import build_config
    from kedro_mlflow_runs.config.template import render_template

    written = yaml.safe_load(render_template())
    assert build_config(written, project_path=tmp_path, environ={}) == build_config({}, project_path=tmp_path,
                                                                                     environ={})


@pytest.mark.parametrize("raw, source", [
    ({"tracking": {"run": {"nested": "maybe"}}}, "conf/local/mlflow.yml"),
    ({"server": {"tracking_uri": "x"}}, "conf/base/mlflow.yml"),
    ({"tracking": {"long_params_strategy": "tag"}}, "conf/base/mlflow.yml"),
    ({"tracking": {"name": "nightly"}}, "conf/base/mlflow.yml"),
])
def test_the_configuration_page_shows_the_errors_as_they_are(raw, source, tmp_path):
    from kedro_mlflow_runs import build_config
    from kedro_mlflow_runs.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        build_config(raw, project_path=tmp_path, source=source)
    errors = (DOCS / "mlflow_yml.md").read_text().split("## Errors")[1]
    assert f"\nConfigError: {err.value}\n" in errors


# -- runnable blocks -------------------------------------------------------------------------------

def test_the_docs_mark_runnable_blocks_of_every_kind():
    kinds = [b.values[0] for b in BLOCKS]
    assert set(kinds) == set(KINDS), kinds
    assert len(kinds) >= 10


@pytest.mark.parametrize(("kind", "lang", "body"), BLOCKS)
def test_runnable_block(kind, lang, body, tmp_path, monkeypatch, template_db):
    assert KINDS[kind] == lang, f"a '{kind}' block must be ```{KINDS[kind]}"
    if kind == "catalog":
        _load_catalog(body)
    elif kind.startswith("mlflow.yml"):
        from kedro_mlflow_runs import build_config

        project = tmp_path / "proj"
        config = build_config(yaml.safe_load(body), project_path=project, package_name="proj", environ={})
        if kind == "mlflow.yml defaults":
            assert config == build_config({}, project_path=project, package_name="proj", environ={})
    elif kind == "python":
        store = tmp_path / "store" / "mlflow.db"
        store.parent.mkdir()
        store.write_bytes(template_db.read_bytes())
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
        _exec(body, tmp_path / "work", monkeypatch)
        _assert_runs_ended(f"sqlite:///{store}")
    elif kind == "python in a project":
        project = make_project(tmp_path, template_db=template_db)
        _exec(body, project, monkeypatch)
        _assert_runs_ended(store_uri(project))
    elif kind == "pytest":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///outside.db")
        monkeypatch.setenv("MLFLOW_RUN_ID", "outside")
        _run_tests(body, tmp_path, template_db)


def _load_catalog(body: str) -> None:
    from kedro.io import DataCatalog

    entries = yaml.safe_load(body)
    catalog = DataCatalog.from_config(entries)
    for name, entry in entries.items():
        dataset = catalog.get(name)
        assert type(dataset).__name__ == entry["type"].rpartition(".")[2], name


def _exec(body: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder.mkdir(exist_ok=True)
    monkeypatch.chdir(folder)
    exec(compile(body, f"<doc block in {folder.name}>", "exec"), {"__name__": "__doc_block__"})


def _assert_runs_ended(uri: str) -> None:
    from mlflow import MlflowClient

    runs = all_runs(MlflowClient(tracking_uri=uri))
    assert runs, "the block logged no run"
    assert [r.info.status for r in runs if r.info.status == "RUNNING"] == []


def _run_tests(body: str, folder: Path, template: Path) -> None:
    """The block as a user's test file: each test function called with a fresh ``mlflow_store`` (the
    plugin's own code) and a fresh project as ``project_path``; the environment comes back after each."""
    import inspect

    from kedro_mlflow_runs.testing import _open_store

    namespace: dict[str, Any] = {"__name__": "test_doc_block"}
    exec(compile(body, "<doc test file>", "exec"), namespace)
    tests = [f for name, f in namespace.items() if name.startswith("test_") and callable(f)]
    assert len(tests) >= 2
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    for i, test in enumerate(tests):
        with pytest.MonkeyPatch.context() as mp:
            fixtures = {"mlflow_store": _open_store(folder / f"store{i}", template, mp),
                        "project_path": make_project(folder / f"project{i}")}
            test(**{name: fixtures[name] for name in inspect.signature(test).parameters})
        assert {k: os.environ.get(k) for k in before} == before


def test_the_datasets_page_shows_every_argument_of_every_dataset():
    import inspect

    page = (DOCS / "datasets.md").read_text()
    (full,) = [yaml.safe_load(b.values[2]) for b in BLOCKS
               if b.id.startswith("datasets.md") and "evaluation_history:" in b.values[2]]
    shown: dict[str, set[str]] = {}
    for entry in full.values():
        keys = set(entry) - {"type"}
        if entry.get("versioned") or "model_version" in entry:  # Kedro reserves `version:` in YAML
            keys.add("version")
        shown.setdefault(entry["type"].rpartition(".")[2], set()).update(keys)
    classes = [getattr(kedro_mlflow_runs.io, n) for n in kedro_mlflow_runs.io.__all__]
    classes = [c for c in classes if inspect.isclass(c) and c.__name__.startswith("Mlflow")]
    for cls in set(classes):
        args = set(inspect.signature(cls.__init__).parameters) - {"self"}
        assert args <= shown.get(cls.__name__, set()), (cls.__name__, args - shown.get(cls.__name__, set()))
        assert f"`{cls.__name__}`" in page


def test_the_security_page_lists_every_variable_and_every_secret_query_name():
    """Every environment variable the plugin sets or reads (``KEDRO_MLFLOW_RUNS_*``, and MLflow's
    ``MLFLOW_TRACKING_AUTH`` it sets for a token URI) has a row; every secret query name and suffix
    redaction uses is listed."""
    from kedro_mlflow_runs._redact import SECRET_QUERY_NAMES, SECRET_QUERY_SUFFIXES

    page = (DOCS / "security.md").read_text()
    source = "\n".join(p.read_text() for p in (REPO / "kedro_mlflow_runs").rglob("*.py"))
    variables = set(re.findall(r"KEDRO_MLFLOW_RUNS_[A-Z_]*[A-Z]", source)) | {"MLFLOW_TRACKING_AUTH"}
    assert len(variables) >= 9
    missing = sorted(v for v in variables if f"`{v}`" not in page)
    assert not missing, f"docs/security.md does not list {missing}"
    row = next(line for line in page.splitlines() if line.startswith("| query string values"))
    assert all(f"`{name}`" in row.lower() for name in SECRET_QUERY_NAMES)
    assert all(f"`{suffix}`" in row for suffix in SECRET_QUERY_SUFFIXES)


def test_every_test_the_docs_cite_exists():
    """The fault matrix and other pages cite tests as `test_file.py::test_name`: each must exist."""
    tests_dir = Path(__file__).parent
    cited = {(m.group(1), m.group(2)) for page in (Path(__file__).parents[1] / "docs").glob("*.md")
             for m in re.finditer(r"(test_\w+\.py)::(test_\w+)", page.read_text())}
    assert len(cited) > 20
    missing = [f"{file}::{name}" for file, name in sorted(cited)
               if not (tests_dir / file).exists()
               or not re.search(rf"^(async )?def {name}\(", (tests_dir / file).read_text(), re.MULTILINE)]
    assert not missing, missing
