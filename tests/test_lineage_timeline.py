"""Runs that explain themselves (issue 11): node timeline, data lineage, system metrics, description.

A spaceflights-like project (raw CSVs -> preprocessing -> model input table -> training) runs
once per runner (module-scoped: one run, many assertions); what MLflow holds afterwards is checked.
"""

from __future__ import annotations

import json
import os
import socket
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import all_runs
from kedro_project import make_project, run_session, store_uri

pytestmark = pytest.mark.slow

NODES = '''
import pandas as pd


def preprocess_companies(companies):
    return companies.assign(iata_approved=companies["iata_approved"] == "t")


def preprocess_shuttles(shuttles):
    return shuttles.assign(price=shuttles["price"].astype(float))


def create_model_input_table(shuttles, companies, reviews):
    table = shuttles.merge(companies, left_on="company_id", right_on="id").merge(reviews, on="shuttle_id")
    return table[["shuttle_id", "price", "iata_approved", "review_score"]]


def train_model(table, model):
    if model.get("fail"):
        raise ValueError("train_model failed on purpose")
    return {"rows": int(len(table)), "coef": float(model["C"]) * float(table["price"].sum())}
'''

REGISTRY = '''
from kedro.pipeline import node, pipeline
from .nodes import create_model_input_table, preprocess_companies, preprocess_shuttles, train_model


def register_pipelines():
    return {"__default__": pipeline([
        node(preprocess_companies, "companies", "preprocessed_companies", name="preprocess_companies",
             tags=["preprocessing"]),
        node(preprocess_shuttles, "shuttles", "preprocessed_shuttles", name="preprocess_shuttles",
             tags=["preprocessing"]),
        node(create_model_input_table, ["preprocessed_shuttles", "preprocessed_companies", "reviews"],
             "model_input_table", name="create_model_input_table"),
        node(train_model, ["model_input_table", "params:model"], "summary", name="train_model", tags=["training"]),
    ])}
'''

NODE_NAMES = ["preprocess_companies", "preprocess_shuttles", "create_model_input_table", "train_model"]
RAW = {
    "data/01_raw/companies.csv": "id,iata_approved,company_rating\n1,t,0.9\n2,f,0.5\n",
    "data/01_raw/shuttles.csv": "shuttle_id,company_id,price\n10,1,100\n11,2,250\n12,1,80\n",
    "data/01_raw/reviews.csv": "shuttle_id,review_score\n10,4.5\n11,3.0\n12,5.0\n",
}


def _csv(path: str) -> dict[str, str]:
    return {"type": "pandas.CSVDataset", "filepath": path}


CATALOG = {
    "companies": _csv("data/01_raw/companies.csv"),
    "shuttles": _csv("data/01_raw/shuttles.csv"),
    "reviews": _csv("data/01_raw/reviews.csv"),
    "preprocessed_companies": _csv("data/02_intermediate/preprocessed_companies.csv"),
    "model_input_table": _csv("data/03_primary/model_input_table.csv"),
    "summary": {"type": "json.JSONDataset", "filepath": "data/08_reporting/summary.json"},
}
RAW_INPUTS = {"companies", "shuttles", "reviews"}
PERSISTED_OUTPUTS = {"preprocessed_companies", "model_input_table", "summary"}


class Finished:
    """What one `kedro run` left in MLflow."""

    def __init__(self, project: Path) -> None:
        from mlflow import MlflowClient

        self.project = project
        self.client = MlflowClient(tracking_uri=store_uri(project))
        self.runs = sorted(all_runs(self.client), key=lambda r: r.info.start_time)
        self.run = self.runs[-1]
        self.run_id = self.run.info.run_id

    def artifact(self, path: str) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.client.download_artifacts(self.run_id, path, tmp)).read_text(encoding="utf-8")

    def artifacts(self) -> list[str]:
        return sorted(a.path for a in self.client.list_artifacts(self.run_id, "kedro"))

    def timeline(self) -> list[dict[str, Any]]:
        return json.loads(self.artifact("kedro/timeline.json"))

    def inputs(self, run: Any = None) -> dict[str, Any]:
        run = run or self.client.get_run(self.run_id)
        return {i.dataset.name: i for i in run.inputs.dataset_inputs}


def _project(root: Path, template_db: Path, mlflow_yml: dict[str, Any] | None = None) -> Path:
    return make_project(root, nodes=NODES, registry=REGISTRY, catalog=CATALOG, local_files=RAW, mlflow_yml=mlflow_yml,
                        template_db=template_db)


def _run(project: Path, runner: Any = None, *, mp_context: str | None = None, params: dict[str, Any] | None = None,
         env: dict[str, str] | None = None) -> BaseException | None:
    """One `kedro run` in this process (cwd in the project, nothing of it left in the environment)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        for name in [n for n in os.environ if n.startswith("MLFLOW_")]:
            mp.delenv(name)
        if mp_context:
            mp.setenv("KEDRO_MP_CONTEXT", mp_context)
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        try:
            run_session(project, runner=runner, runtime_params=params)
        except Exception as exc:
            return exc
        finally:
            assert "KEDRO_MLFLOW_RUNS_RECORDER" not in os.environ
    return None


def _runner(name: str) -> Any:
    import kedro.runner

    return kedro.runner.ParallelRunner(max_workers=2) if name == "ParallelRunner" else getattr(kedro.runner, name)()


# -- one run per runner ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sequential(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> tuple[Finished, Finished]:
    """Two runs of one project on the SequentialRunner; reviews.csv changes between them."""
    project = _project(tmp_path_factory.mktemp("seq"), template_db,
                       {"tracking": {"run": {"description": "Spaceflights **baseline**"}}})
    assert _run(project) is None
    first = Finished(project)
    (project / "data/01_raw/reviews.csv").write_text(RAW["data/01_raw/reviews.csv"] + "10,1.0\n")
    assert _run(project) is None
    return first, Finished(project)


@pytest.fixture(scope="module")
def threaded(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Finished:
    """ThreadRunner, with system metrics on through MLflow's own environment variable."""
    project = _project(tmp_path_factory.mktemp("thread"), template_db,
                       {"tracking": {"system_metrics": {"sampling_interval": 0.2}}})
    assert _run(project, _runner("ThreadRunner"), env={"MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING": "true"}) is None
    return Finished(project)


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Finished:
    """ParallelRunner with spawned workers (fresh hook instances, no session context)."""
    project = _project(tmp_path_factory.mktemp("spawn"), template_db)
    assert _run(project, _runner("ParallelRunner"), mp_context="spawn") is None
    return Finished(project)


@pytest.fixture(scope="module")
def forked_failure(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> tuple[Finished, BaseException]:
    """ParallelRunner with forked workers, train_model failing: a failed run's timeline."""
    project = _project(tmp_path_factory.mktemp("fork"), template_db,
                       {"tracking": {"system_metrics": {"enabled": False}}})
    error = _run(project, _runner("ParallelRunner"), mp_context="fork", params={"model": {"fail": True}})
    assert error is not None
    return Finished(project), error


def _documented_timeline_entry() -> dict[str, Any]:
    text = (Path(__file__).parents[1] / "docs" / "lineage-and-timeline.md").read_text()
    block = text.split("one object per node run", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    return json.loads(block)


def _check_timeline(finished: Finished, *, statuses: dict[str, str]) -> list[dict[str, Any]]:
    timeline = finished.timeline()
    assert sorted(e["node"] for e in timeline) == sorted(statuses)
    for entry in timeline:
        assert set(entry) >= {"node", "start", "end", "duration_s", "worker", "status"}
        assert entry["status"] == statuses[entry["node"]], entry
        assert entry["start"] <= entry["end"]
        assert entry["duration_s"] == pytest.approx(entry["end"] - entry["start"], abs=1e-5)
        parts = (entry["load_s"], entry["compute_s"], entry["save_s"])
        assert min(parts) >= 0 and sum(parts) == pytest.approx(entry["duration_s"], abs=1e-5)
        assert set(entry["worker"]) == {"host", "pid", "thread"}  # where the node ran: machine, process, thread
        assert entry["worker"]["host"] == socket.gethostname()
        assert entry["start"] * 1000 >= finished.run.info.start_time - 1
    by_node = {e["node"]: e for e in timeline}
    # the data flows forward in time: a node starts after the nodes it depends on ended (outputs saved)
    assert by_node["create_model_input_table"]["start"] >= by_node["preprocess_companies"]["end"]
    # reading a CSV and writing one are part of the node's time, apart from its function's
    if statuses["preprocess_companies"] == "completed":
        assert by_node["preprocess_companies"]["load_s"] > 0 and by_node["preprocess_companies"]["save_s"] > 0
    for node, status in statuses.items():
        if status != "interrupted":
            metric = finished.run.data.metrics[f"kedro.node_duration_s.{node}"]
            assert metric == pytest.approx(by_node[node]["duration_s"])
    return timeline


class _Html(HTMLParser):
    """Checks nesting (every element closed in order) and collects the text."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "line", "rect"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID and (not self.stack or self.stack[-1] != tag):
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_html(finished: Finished, timeline: list[dict[str, Any]]) -> str:
    page = finished.artifact("kedro/timeline.html")
    parser = _Html()
    parser.feed(page)
    parser.close()
    assert parser.stack == [], parser.stack  # well-formed: everything opened was closed
    assert {"html", "svg", "rect", "table"} <= parser.tags
    text = " ".join(parser.text)
    for entry in timeline:
        assert entry["node"] in text
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script" not in page  # self-contained, nothing to fetch or run
    return text


def _check_inputs(finished: Finished, project: Path) -> dict[str, Any]:
    inputs = finished.inputs()
    assert set(inputs) == RAW_INPUTS  # parameters, memory datasets and intermediate data are not inputs
    for name, item in inputs.items():
        dataset = item.dataset
        assert dataset.source_type == "local"
        assert json.loads(dataset.source) == {"uri": (project / CATALOG[name]["filepath"]).as_posix()}
        assert len(dataset.digest) == 16
        assert {t.key: t.value for t in item.tags} == {"mlflow.data.context": "kedro.input"}
        schema = json.loads(dataset.schema)["mlflow_colspec"]
        header = RAW[CATALOG[name]["filepath"]].splitlines()[0].split(",")
        assert [c["name"] for c in schema] == header
        assert json.loads(dataset.profile)["num_rows"] == len(RAW[CATALOG[name]["filepath"]].splitlines()) - 1
    companies = {c["name"]: c for c in json.loads(inputs["companies"].dataset.schema)["mlflow_colspec"]}
    assert companies["id"]["type"] == "long" and companies["company_rating"]["type"] == "double"
    assert companies["iata_approved"]["type"] == "string"
    return inputs


def _check_pipeline(finished: Finished) -> None:
    described = json.loads(finished.artifact("kedro/pipeline.json"))
    nodes = {n["name"]: n for n in described["nodes"]}
    assert set(nodes) == set(NODE_NAMES)
    assert nodes["create_model_input_table"]["inputs"] == ["preprocessed_shuttles", "preprocessed_companies", "reviews"]
    assert nodes["train_model"]["outputs"] == ["summary"]
    assert nodes["train_model"]["tags"] == ["training"]
    assert nodes["preprocess_companies"]["namespace"] is None
    assert nodes["train_model"]["func"].endswith("nodes.train_model")
    assert described["inputs"] == ["companies", "params:model", "reviews", "shuttles"]


def test_sequential_run_has_timeline_pipeline_lineage_description_and_no_system_metrics(sequential):
    first, second = sequential
    assert [r.info.status for r in second.runs] == ["FINISHED", "FINISHED"]
    assert first.artifacts() == ["kedro/outputs.json", "kedro/pipeline.json", "kedro/timeline.html",
                                 "kedro/timeline.json"]
    timeline = _check_timeline(first, statuses=dict.fromkeys(NODE_NAMES, "completed"))
    assert {e["worker"]["pid"] for e in timeline} == {os.getpid()}
    documented = _documented_timeline_entry()  # the docs' example has the keys a real entry has
    assert set(documented) == set(timeline[0]) and set(documented["worker"]) == set(timeline[0]["worker"])
    _check_html(first, timeline)
    _check_pipeline(first)
    _check_inputs(first, first.project)
    outputs = {o["name"]: o for o in json.loads(first.artifact("kedro/outputs.json"))}
    assert set(outputs) == PERSISTED_OUTPUTS
    table = outputs["model_input_table"]
    assert json.loads(table["source"]) == {"uri": (first.project / "data/03_primary/model_input_table.csv").as_posix()}
    assert [c["name"] for c in json.loads(table["schema"])["mlflow_colspec"]] == [
        "shuttle_id", "price", "iata_approved", "review_score"]
    assert len(table["digest"]) == 16
    assert first.run.data.tags["mlflow.note.content"] == "Spaceflights **baseline**"
    assert not [k for k in first.run.data.metrics if k.startswith("system/")]


def test_the_digest_of_an_input_changes_when_its_data_changes(sequential):
    first, second = sequential
    before = first.inputs(first.client.get_run(first.run_id))
    after = second.inputs()
    assert after["reviews"].dataset.digest != before["reviews"].dataset.digest
    assert after["companies"].dataset.digest == before["companies"].dataset.digest
    assert after["shuttles"].dataset.digest == before["shuttles"].dataset.digest
    # the model input table changed with the reviews, and its recorded digest with it
    tables = [{o["name"]: o for o in json.loads(f.artifact("kedro/outputs.json"))}["model_input_table"]
              for f in (first, second)]
    assert tables[0]["digest"] != tables[1]["digest"]


def test_thread_runner_timeline_names_worker_threads_and_system_metrics_are_logged(threaded):
    assert threaded.run.info.status == "FINISHED"
    timeline = _check_timeline(threaded, statuses=dict.fromkeys(NODE_NAMES, "completed"))
    assert {e["worker"]["pid"] for e in timeline} == {os.getpid()}
    assert all(e["worker"]["thread"] != "MainThread" for e in timeline), timeline
    _check_html(threaded, timeline)
    _check_inputs(threaded, threaded.project)
    system = [k for k in threaded.run.data.metrics if k.startswith("system/")]
    assert "system/cpu_utilization_percentage" in system and "system/system_memory_usage_megabytes" in system
    assert "mlflow.note.content" not in threaded.run.data.tags


def test_spawned_parallel_workers_add_their_nodes_and_schemas(spawned):
    assert spawned.run.info.status == "FINISHED"
    timeline = _check_timeline(spawned, statuses=dict.fromkeys(NODE_NAMES, "completed"))
    assert os.getpid() not in {e["worker"]["pid"] for e in timeline}  # every node ran in a worker process
    _check_html(spawned, timeline)
    _check_pipeline(spawned)
    _check_inputs(spawned, spawned.project)  # schemas seen by the workers reached the run
    outputs = {o["name"] for o in json.loads(spawned.artifact("kedro/outputs.json"))}
    assert outputs == PERSISTED_OUTPUTS  # saved in workers
    assert not [k for k in spawned.run.data.metrics if k.startswith("system/")]


def test_a_failed_forked_parallel_run_still_gets_its_timeline_and_lineage(forked_failure):
    finished, error = forked_failure
    assert "on purpose" in str(error)
    assert finished.run.info.status == "FAILED"
    statuses = {**dict.fromkeys(NODE_NAMES, "completed"), "train_model": "failed"}
    timeline = _check_timeline(finished, statuses=statuses)
    assert os.getpid() not in {e["worker"]["pid"] for e in timeline}
    failed = next(e for e in timeline if e["node"] == "train_model")
    assert failed["error"] == "ValueError"
    assert failed["save_s"] == 0 and failed["load_s"] > 0  # it read its input table, then raised
    text = _check_html(finished, timeline)
    assert "FAILED" in text
    _check_inputs(finished, finished.project)
    outputs = {o["name"] for o in json.loads(finished.artifact("kedro/outputs.json"))}
    assert outputs == PERSISTED_OUTPUTS - {"summary"}  # train_model never saved its summary


# -- switches and errors -----------------------------------------------------------------------


def test_timeline_and_lineage_off_leave_no_trace(project_factory, client_for):
    project = project_factory(nodes=NODES, registry=REGISTRY, catalog=CATALOG, local_files=RAW,
                              mlflow_yml={"tracking": {"timeline": {"enabled": False},
                                                       "lineage": {"enabled": False, "digest": "stat"}}})
    run_session(project)
    (run,) = all_runs(client_for(project))
    assert run.info.status == "FINISHED"
    assert client_for(project).list_artifacts(run.info.run_id) == []
    assert run.inputs.dataset_inputs == []
    assert run.data.metrics == {}


def test_system_metrics_without_psutil_is_a_clear_error_before_any_run(project_factory, client_for, mocker):
    import importlib.util

    from kedro_mlflow_runs import MissingDependencyError

    real = importlib.util.find_spec
    mocker.patch("importlib.util.find_spec", side_effect=lambda name, *a: None if name == "psutil" else real(name, *a))
    project = project_factory(mlflow_yml={"tracking": {"system_metrics": {"enabled": True}}})
    with pytest.raises(MissingDependencyError, match=r"kedro-mlflow-runs\[system\]") as caught:
        run_session(project)
    assert caught.value.key == "tracking.system_metrics.enabled"
    assert all_runs(client_for(project)) == []


@pytest.mark.parametrize(("yml", "key"), [
    ({"tracking": {"timeline": {"enable": True}}}, "tracking.timeline.enable"),
    ({"tracking": {"lineage": {"digest": "md5"}}}, "tracking.lineage.digest"),
    ({"tracking": {"system_metrics": {"sampling_interval": 0}}}, "tracking.system_metrics.sampling_interval"),
    ({"tracking": {"system_metrics": {"samples_before_logging": 0}}}, "tracking.system_metrics.samples_before_logging"),
    ({"tracking": {"run": {"description": ["a"]}}}, "tracking.run.description"),
])
def test_bad_feature_config_names_the_key(tmp_path, yml, key):
    from kedro_mlflow_runs import ConfigError, build_config

    with pytest.raises(ConfigError) as caught:
        build_config(yml, project_path=tmp_path, source="conf/base/mlflow.yml")
    assert caught.value.key == key
    assert key in str(caught.value) and "conf/base/mlflow.yml" in str(caught.value)


def test_digest_modes(tmp_path):
    from kedro_datasets.pandas import CSVDataset

    from kedro_mlflow_runs.recording.lineage import digest, location

    path = tmp_path / "a.csv"
    path.write_text("x\n1\n")
    loc = location(CSVDataset(filepath=str(path)))
    assert loc is not None
    content, stat = digest(loc, "content"), digest(loc, "stat")
    assert digest(loc, "auto") == content != stat
    assert digest(loc, "none") == "none"
    os.utime(path, ns=(1, 1))  # same bytes, another mtime
    assert digest(loc, "content") == content and digest(loc, "stat") != stat
    path.write_text("x\n2\n")
    assert digest(loc, "content") != content
    path.unlink()
    assert digest(loc, "auto") == "missing"


def test_auto_digests_bytes_up_to_4_mib_and_size_and_mtime_above(tmp_path):
    from kedro_mlflow_runs.recording.lineage import CONTENT_DIGEST_MAX_BYTES, Location, digest

    assert CONTENT_DIGEST_MAX_BYTES == 4 * 1024 * 1024  # the figure the docs give
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(b"x" * CONTENT_DIGEST_MAX_BYTES)
    big.write_bytes(b"x" * (CONTENT_DIGEST_MAX_BYTES + 1))
    for path, by_content in ((small, True), (big, False)):
        loc = Location(None, path.as_posix(), "file")
        assert (digest(loc, "auto") == digest(loc, "content")) is by_content
        before = digest(loc, "auto")
        os.utime(path, ns=(1, 1))  # same bytes, another mtime: only a size-and-mtime digest moves
        assert (digest(loc, "auto") == before) is by_content


def test_a_killed_run_records_the_interrupted_node(project_factory, client_for):
    """SystemExit in a node reaches no Kedro error hook: the run ends KILLED, its timeline says where."""
    project = project_factory()
    with pytest.raises(SystemExit):
        run_session(project, runtime_params={"model": {"exit": 3}})
    finished = Finished(project)
    assert finished.run.info.status == "KILLED"
    timeline = {e["node"]: e for e in finished.timeline()}
    assert set(timeline) == {"make_data", "train"}  # report never started
    assert timeline["make_data"]["status"] == "completed"
    assert timeline["train"]["status"] == "interrupted"
    assert timeline["train"]["end"] * 1000 <= finished.run.info.end_time
    metrics = finished.run.data.metrics
    assert "kedro.node_duration_s.make_data" in metrics and "kedro.node_duration_s.train" not in metrics


def test_a_lineage_failure_is_a_warning_and_changes_nothing_else(project_factory, client_for, mocker):
    import logging

    from kedro_mlflow_runs.tracking import Tracker

    class Keep(logging.Handler):  # Kedro's session reconfigures logging, so caplog would miss it
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    keep = Keep()
    logging.getLogger("kedro_mlflow_runs.core.end_steps").addHandler(keep)
    mocker.patch.object(Tracker, "log_inputs", side_effect=RuntimeError("store refused the inputs"))
    project = project_factory(nodes=NODES, registry=REGISTRY, catalog=CATALOG, local_files=RAW)
    try:
        run_session(project)
    finally:
        logging.getLogger("kedro_mlflow_runs.core.end_steps").removeHandler(keep)
    finished = Finished(project)
    assert finished.run.info.status == "FINISHED"
    assert finished.run.inputs.dataset_inputs == []
    assert len(finished.timeline()) == len(NODE_NAMES)  # the rest was still written
    assert any("store refused the inputs" in m and finished.run_id in m for m in keep.messages), keep.messages


@pytest.mark.parametrize(("params", "raised", "status_while_written"), [
    ({"model": {"fail": "x"}}, ValueError, "RUNNING"),  # FAILED: written first, then the status
    ({"model": {"exit": 3}}, SystemExit, "KILLED"),  # KILLED: the status first (a SIGKILL may follow)
])
def test_the_lineage_is_written_before_a_failed_run_ends_and_after_a_killed_run_ends(
        project_factory, client_for, mocker, params, raised, status_while_written):
    import threading
    import time

    from kedro_mlflow_runs.tracking import Tracker

    seen: list[str] = []
    release = threading.Event()
    real = Tracker.log_batch

    def log_batch(self: Any, run_id: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("what") == "log the node durations to":  # one of the end steps' writes
            seen.append(self.client.get_run(run_id).info.status)
            if status_while_written == "KILLED":
                release.wait(30)  # hangs: a killed run's end steps get a few seconds, not a minute
        return real(self, run_id, *args, **kwargs)

    mocker.patch.object(Tracker, "log_batch", log_batch)
    project = project_factory()
    started = time.monotonic()
    try:
        with pytest.raises(raised):
            run_session(project, runtime_params=params)
        took = time.monotonic() - started
    finally:
        release.set()
    assert seen == [status_while_written]
    finished = Finished(project)
    assert finished.run.info.status == ("KILLED" if raised is SystemExit else "FAILED")
    if raised is SystemExit:
        assert took < 25, took  # did not wait for the hanging step


def test_node_duration_metric_keys_are_valid_mlflow_names():
    from kedro_mlflow_runs.recording.timeline import metric_key

    assert metric_key("ns.train_model") == "kedro.node_duration_s.ns.train_model"
    assert metric_key("f([a;params:b]) -> [c]") == "kedro.node_duration_s.f__a_params_b__ -_ _c_"
    assert len(metric_key("n" * 400)) == 250


def test_folder_digests_and_redacted_sources(tmp_path):
    from kedro_mlflow_runs.recording.lineage import Location, digest

    folder = tmp_path / "parts"
    folder.mkdir()
    (folder / "a.csv").write_text("1\n")
    loc = Location(None, folder.as_posix(), "file")
    first = digest(loc, "auto")
    (folder / "b.csv").write_text("2\n")  # a new file in the folder
    second = digest(loc, "auto")
    (folder / "a.csv").write_text("3\n")  # a changed file
    assert len({first, second, digest(loc, "auto")}) == 3
    secret = Location(None, "user:s3cret@example.com/data.csv?token=abc", "https")
    assert "s3cret" not in secret.source and "abc" not in secret.source
    assert json.loads(secret.source) == {"url": "https://user:***@example.com/data.csv?token=***"}


def test_a_change_to_any_file_of_a_large_folder_changes_its_digest(tmp_path):
    """Every file of a folder dataset enters its digest, the 3000th as much as the first."""
    from kedro_mlflow_runs.recording.lineage import Location, digest

    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3000):
        (folder / f"part-{i:05d}.csv").write_text(f"{i}\n")
    loc = Location(None, folder.as_posix(), "file")
    before = {mode: digest(loc, mode) for mode in ("auto", "content", "stat")}
    (folder / "part-02999.csv").write_text("changed\n")  # the last file, same size class
    after = {mode: digest(loc, mode) for mode in ("auto", "content", "stat")}
    assert all(before[mode] != after[mode] for mode in before), (before, after)
    (folder / "part-02999.csv").unlink()  # a file gone
    assert digest(loc, "auto") not in (before["auto"], after["auto"])


def test_frame_schemas_never_import_pandas():
    import subprocess
    import sys

    code = ("import sys; from kedro_mlflow_runs.recording.lineage import frame_schema; "
            "print(frame_schema([1, 2]), 'pandas' in sys.modules, 'polars' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["None", "False", "False"], out.stderr[-2000:]


def test_end_steps_do_not_wait_for_a_step_that_hangs():
    import threading

    from kedro_mlflow_runs.core.end_steps import run_end_steps
    from kedro_mlflow_runs.core.tracked import EndStep
    from kedro_mlflow_runs.handle import Outcome

    release, reached = threading.Event(), []

    def hangs(ctx: Any, outcome: Any) -> None:
        release.wait(60)

    def fails(ctx: Any, outcome: Any) -> None:
        reached.append(outcome)
        raise RuntimeError("boom")

    class Ctx:
        run_id = "r1"

    assert run_end_steps([EndStep("a failing step", fails)], Ctx(), Outcome.finished()) is None  # a failing step is only logged
    assert reached == [Outcome.finished()]
    assert run_end_steps([EndStep("a step that hangs", hangs)], Ctx(), Outcome.finished(), timeout=0.2) is None
    assert not release.is_set()  # returned while the step still hangs
    release.set()
