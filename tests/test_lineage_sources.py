"""Lineage of inputs that are not local files: http(s) files, SQL tables and queries, and every digest
value a run can record (a digest; ``missing``; ``unknown``), each on a real project and a real store."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import logging
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import all_runs, records
from kedro_project import run_session
from mlflow_server import free_port, postgres_or_skip

NODES = '''
from kedro.io import AbstractDataset


def rows(frame):
    return int(len(frame))


def report(companies, approved):
    import pandas as pd

    return pd.DataFrame({"companies": [len(companies)], "approved": [len(approved)]})


class RemoteWithoutFilesystem(AbstractDataset):
    """Data on a remote store read with its own client: no fsspec filesystem (``_fs``) to ask."""

    def __init__(self, filepath):
        self._protocol, _, self._filepath = filepath.partition("://")

    def load(self):
        return [1, 2]

    def save(self, data):
        raise NotImplementedError

    def _describe(self):
        return {"filepath": f"{self._protocol}://{self._filepath}"}
'''

HEX_DIGEST = re.compile(r"^[0-9a-f]{16}$")


def _registry(*pairs: tuple[str, str]) -> str:
    """A pipeline of ``rows`` nodes, one per ``(input, output)``."""
    nodes = ", ".join(f'node(rows, "{i}", "{o}", name="{o}")' for i, o in pairs)
    return ("from kedro.pipeline import node, pipeline\nfrom .nodes import report, rows\n\n\n"
            f"def register_pipelines():\n    return {{'__default__': pipeline([{nodes}])}}\n")


def _inputs(client: Any, run: Any) -> dict[str, Any]:
    return {i.dataset.name: i.dataset for i in client.get_run(run.info.run_id).inputs.dataset_inputs}


@contextlib.contextmanager
def _serving(folder: Path) -> Iterator[int]:
    """An http server on a free loopback port serving ``folder``; yields the port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)




# -- http(s) ----------------------------------------------------------------------------------------

def test_an_http_input_gets_a_real_digest_that_changes_with_the_served_file(project_factory, client_for, tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "data.csv").write_text("id,name\n1,a\n2,b\n")
    with _serving(served) as port:
        url = f"http://127.0.0.1:{port}/data.csv"
        project = project_factory(nodes=NODES, registry=_registry(("remote", "n_rows")),
                                  catalog={"remote": {"type": "pandas.CSVDataset", "filepath": url}})
        run_session(project)
        (served / "data.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
        run_session(project)
    client = client_for(project)
    first, second = sorted(all_runs(client), key=lambda r: r.info.start_time)
    assert first.info.status == second.info.status == "FINISHED"
    before, after = _inputs(client, first)["remote"], _inputs(client, second)["remote"]
    assert HEX_DIGEST.match(before.digest) and HEX_DIGEST.match(after.digest), (before.digest, after.digest)
    assert before.digest != after.digest
    assert before.source_type == "http" and json.loads(before.source) == {"url": url}
    assert [c["name"] for c in json.loads(before.schema)["mlflow_colspec"]] == ["id", "name"]


# -- SQL ---------------------------------------------------------------------------------------------

SQL_QUERY = "SELECT * FROM companies WHERE approved = 1"


def test_sql_tables_and_queries_are_recorded_as_sql_sources(project_factory, client_for, tmp_path):
    """A sqlite database file: two inputs (a table, a query), one output (a table). Each is recorded
    with source type ``sql``, the connection and the table (or the query's sha256), and the digest
    ``unknown`` (the plugin never queries a database to digest it)."""
    db = tmp_path / "warehouse.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE companies (id INTEGER, approved INTEGER)")
        conn.executemany("INSERT INTO companies VALUES (?, ?)", [(1, 1), (2, 0), (3, 1)])
        conn.commit()
    con = f"sqlite:///{db.as_posix()}"
    query_file = tmp_path / "count.sql"
    query_file.write_text("SELECT COUNT(*) AS n FROM companies")
    catalog = {
        "companies": {"type": "pandas.SQLTableDataset", "table_name": "companies", "credentials": "warehouse"},
        "approved": {"type": "pandas.SQLQueryDataset", "sql": SQL_QUERY, "credentials": "warehouse"},
        "counted": {"type": "pandas.SQLQueryDataset", "filepath": str(query_file), "credentials": "warehouse"},
        "summary": {"type": "pandas.SQLTableDataset", "table_name": "summary", "credentials": "warehouse",
                    "save_args": {"if_exists": "replace", "index": False}},
    }
    registry = ("from kedro.pipeline import node, pipeline\nfrom .nodes import report, rows\n\n\n"
                "def register_pipelines():\n"
                "    return {'__default__': pipeline([\n"
                "        node(report, ['companies', 'approved'], 'summary', name='report'),\n"
                "        node(rows, 'counted', 'n_counts', name='count')])}\n")
    project = project_factory(nodes=NODES, registry=registry, catalog=catalog,
                              local_files={"conf/local/credentials.yml": f"warehouse:\n  con: {con}\n"})
    run_session(project)
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    inputs = _inputs(client, run)
    assert {name: d.source_type for name, d in inputs.items()} == {"companies": "sql", "approved": "sql",
                                                                   "counted": "sql"}
    assert json.loads(inputs["counted"].source) == {"uri": con, "query_file": query_file.as_posix()}
    assert json.loads(inputs["companies"].source) == {"uri": con, "table": "companies"}
    assert json.loads(inputs["approved"].source) == {
        "uri": con, "query_sha256": hashlib.sha256(SQL_QUERY.encode()).hexdigest()}
    assert inputs["companies"].digest == inputs["approved"].digest == inputs["counted"].digest == "unknown"
    with tempfile.TemporaryDirectory() as tmp:
        outputs = json.loads(Path(client.download_artifacts(run.info.run_id, "kedro/outputs.json", tmp)).read_text())
    (summary,) = outputs
    assert summary["name"] == "summary" and summary["source_type"] == "sql" and summary["digest"] == "unknown"
    assert json.loads(summary["source"]) == {"uri": con, "table": "summary"}
    with contextlib.closing(sqlite3.connect(db)) as conn:  # the pipeline really ran against the database
        assert conn.execute("SELECT companies, approved FROM summary").fetchall() == [(3, 2)]


def test_a_sql_connection_password_is_never_recorded(project_factory, client_for):
    """A real PostgreSQL query with a password in the connection string (the server trusts any): the
    recorded source has the user, host, port and database, no password and no query string."""
    postgres_or_skip().close()
    con = "postgresql://postgres:s3cret-pw@127.0.0.1:5432/postgres?application_name=kmr&password=s3cret-pw"
    catalog = {"probe": {"type": "pandas.SQLQueryDataset", "sql": "SELECT 1 AS one", "credentials": "pg"}}
    project = project_factory(nodes=NODES, registry=_registry(("probe", "n_rows")), catalog=catalog,
                              local_files={"conf/local/credentials.yml": f"pg:\n  con: '{con}'\n"})
    run_session(project)
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED"
    probe = _inputs(client, run)["probe"]
    assert json.loads(probe.source) == {"uri": "postgresql://postgres@127.0.0.1:5432/postgres",
                                        "query_sha256": hashlib.sha256(b"SELECT 1 AS one").hexdigest()}
    recorded = json.dumps([probe.source, probe.schema, probe.profile, client.get_run(run.info.run_id).data.tags])
    assert "s3cret" not in recorded


# -- every digest value that is not a digest -----------------------------------------------------------

def test_missing_and_unknown_digests_say_exactly_why(project_factory, client_for, tmp_path):
    """``missing``: the data does not exist (a local path, an http 404). ``unknown``: it could not be
    computed (an http server that does not answer: with a warning naming the dataset) or cannot be
    (a remote path without an fsspec filesystem). The run fails loading them; the lineage is kept."""
    served = tmp_path / "served"
    served.mkdir()
    down = free_port()
    with _serving(served) as port:
        catalog = {
            "local_missing": {"type": "pandas.CSVDataset", "filepath": str(tmp_path / "nowhere.csv")},
            "http_missing": {"type": "pandas.CSVDataset", "filepath": f"http://127.0.0.1:{port}/nowhere.csv"},
            "http_down": {"type": "pandas.CSVDataset", "filepath": f"http://127.0.0.1:{down}/data.csv"},
            "no_filesystem": {"type": "PACKAGE.nodes.RemoteWithoutFilesystem", "filepath": "s3://bucket/data.csv"},
        }
        project = project_factory(nodes=NODES, catalog=catalog, registry=_registry(
            *[(name, f"{name}_rows") for name in catalog]))
        text = (project / "conf/base/catalog.yml").read_text().replace("PACKAGE", project.name)
        (project / "conf/base/catalog.yml").write_text(text)
        with records("kedro_mlflow_runs.recording.recorder") as emitted, pytest.raises(Exception):
            run_session(project)
    client = client_for(project)
    (run,) = all_runs(client)
    assert run.info.status == "FAILED"
    inputs = _inputs(client, run)
    assert {name: d.digest for name, d in inputs.items()} == {
        "local_missing": "missing", "http_missing": "missing", "http_down": "unknown", "no_filesystem": "unknown"}
    assert json.loads(inputs["no_filesystem"].source) == {"uri": "s3://bucket/data.csv"}
    failed = run.data.tags["kedro.error.dataset"]  # the load that failed first, and its node
    assert failed in ("local_missing", "http_missing", "http_down")
    assert run.data.tags["kedro.error.node"] == f"{failed}_rows"
    warnings = [r.getMessage() for r in emitted if r.levelno == logging.WARNING]
    assert any(m.startswith("Could not compute the digest of dataset 'http_down'") for m in warnings), warnings
    assert not any("local_missing" in m or "http_missing" in m for m in warnings)
