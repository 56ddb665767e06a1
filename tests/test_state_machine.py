"""The RunContext state machine: the transition table, and random sequences checked by hypothesis."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import user_metrics
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from mlflow import MlflowClient

from kedro_mlflow_runs import (
    Ownership,
    RunContext,
    RunHandle,
    RunState,
    RunStateError,
    TrackingError,
    active_contexts,
    build_config,
)

LEGAL = {
    RunState.IDLE: {RunState.ACTIVE, RunState.DISABLED},
    RunState.ACTIVE: {RunState.FINISHED, RunState.FAILED, RunState.KILLED},
}


def _config(uri: str, tmp: Path, run_id: str | None = None, **raw_run):
    environ = {"MLFLOW_TRACKING_URI": uri, **({"MLFLOW_RUN_ID": run_id} if run_id else {})}
    raw = {"tracking": {"run": raw_run}} if raw_run else None
    return build_config(raw, project_path=tmp, package_name="machine", environ=environ)


@pytest.fixture
def store(tmp_path, template_db):
    db = tmp_path / "mlflow.db"
    shutil.copy(template_db, db)
    return f"sqlite:///{db}", tmp_path


@pytest.mark.parametrize("state", list(RunState))
def test_every_transition_outside_the_table_raises_and_keeps_the_state(store, state):
    uri, tmp = store
    ctx = RunContext(_config(uri, tmp), kedro_run_id="k")
    # drive the context into `state` through legal transitions
    if state is RunState.DISABLED:
        ctx.disable()
    elif state is not RunState.IDLE:
        ctx.start()
        if state is not RunState.ACTIVE:
            ctx.end(state)
    assert ctx.state is state
    attempts = {
        RunState.ACTIVE: ctx.start,
        RunState.DISABLED: ctx.disable,
        RunState.FINISHED: lambda: ctx.end(RunState.FINISHED),
        RunState.FAILED: lambda: ctx.end(RunState.FAILED),
        RunState.KILLED: lambda: ctx.end(RunState.KILLED),
        RunState.IDLE: lambda: ctx.end(RunState.IDLE),
    }
    for target, attempt in attempts.items():
        if target in LEGAL.get(state, set()):
            continue
        with pytest.raises(RunStateError, match=state.value):
            attempt()
        assert ctx.state is state
    if ctx.is_active:
        ctx.end(RunState.FINISHED)


def test_logging_outside_active_is_a_clear_error(store):
    uri, tmp = store
    ctx = RunContext(_config(uri, tmp), kedro_run_id="k1")
    with pytest.raises(RunStateError, match="Cannot log parameters.*'k1' is IDLE"):
        ctx.log_params({"params:x": 1})
    with pytest.raises(RunStateError, match="no MLflow run"):
        ctx.handle  # noqa: B018


def test_end_moves_to_the_terminal_state_even_when_mlflow_fails(store, mocker):
    uri, tmp = store
    ctx = RunContext(_config(uri, tmp), kedro_run_id="k")
    handle = ctx.start()
    from mlflow.exceptions import MlflowException

    mocker.patch("mlflow.MlflowClient.set_terminated", side_effect=MlflowException("server error 503"))
    with pytest.raises(TrackingError, match=handle.run_id):
        ctx.end(RunState.FINISHED)
    assert ctx.state is RunState.FINISHED
    assert ctx not in active_contexts()
    mocker.stopall()
    MlflowClient(uri).set_terminated(handle.run_id, "FINISHED")


def test_handle_is_small_and_picklable(store):
    import pickle

    uri, tmp = store
    ctx = RunContext(_config(uri, tmp), kedro_run_id="k")
    handle = ctx.start()
    try:
        clone = pickle.loads(pickle.dumps(handle))
        assert clone == handle
        assert len(pickle.dumps(handle)) < 400
        worker = RunContext.attach(clone)
        assert worker.ownership is Ownership.ATTACHED
        worker.log_metrics({"from_worker": 1.0})
        worker.end(RunState.FINISHED)  # a worker never ends the owner's run
        assert MlflowClient(uri).get_run(handle.run_id).info.status == "RUNNING"
    finally:
        ctx.end(RunState.FINISHED)
    run = MlflowClient(uri).get_run(handle.run_id)
    assert run.info.status == "FINISHED"
    assert user_metrics(run.data.metrics) == {"from_worker": 1.0}


def test_handle_repr_redacts_the_password():
    handle = RunHandle("r1", "https://u:topsecret@host/", "0")
    assert "topsecret" not in repr(handle)


class RunContextMachine(RuleBasedStateMachine):
    """Random sequences of hook-like calls and errors against a real sqlite store.

    Invariants: never two open runs of ours, every OWNED run that ended is closed in MLflow
    with the context's status, an ATTACHED run is left open, and a transition outside the
    table raises without changing the state.
    """

    def __init__(self):
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="kmr-machine-"))
        shutil.copy(TEMPLATE_DB, self.tmp / "mlflow.db")
        self.uri = f"sqlite:///{self.tmp / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        exp = self.client.create_experiment("orchestrator", artifact_location=(self.tmp / "mlartifacts").as_uri())
        self.orchestrator_run = self.client.create_run(exp).info.run_id
        self.ctx: RunContext | None = None
        self.ended: list[RunContext] = []
        self.counter = 0

    def teardown(self):
        if self.ctx is not None and self.ctx.is_active:
            self.ctx.end(RunState.KILLED)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _try(self, target: RunState, action):
        ctx = self.ctx
        before = ctx.state
        if target in LEGAL.get(before, set()):
            action()
            assert ctx.state is target
            if target.is_terminal and target is not RunState.DISABLED:
                self.ended.append(ctx)
        else:
            with pytest.raises(RunStateError):
                action()
            assert ctx.state is before

    @precondition(lambda self: self.ctx is None or self.ctx.state.is_terminal)
    @rule(attach=st.booleans(), end_run=st.booleans(), record_failure=st.booleans())
    def new_kedro_run(self, attach, end_run, record_failure):
        self.counter += 1
        run_id = self.orchestrator_run if attach else None  # attaching to an ended run is refused at start
        cfg = _config(self.uri, self.tmp, run_id, attached={"end_run": end_run, "record_failure": record_failure})
        self.ctx = RunContext(cfg, kedro_run_id=f"kedro-{self.counter}")

    @precondition(lambda self: self.ctx is not None)
    @rule(bind=st.booleans())
    def before_pipeline_run(self, bind):
        ctx = self.ctx
        if (ctx.config.tracking.run.id and RunState.ACTIVE in LEGAL.get(ctx.state, set())
                and self.client.get_run(ctx.config.tracking.run.id).info.status != "RUNNING"):
            before = ctx.state  # attaching to a run that has ended is refused, and nothing changes
            with pytest.raises(RunStateError, match="cannot attach to a run that has ended"):
                ctx.start(run_name="p", publish=bind)
            assert ctx.state is before and not ctx.is_active
            return
        self._try(RunState.ACTIVE, lambda: ctx.start(run_name="p", publish=bind))

    @precondition(lambda self: self.ctx is not None)
    @rule()
    def pipeline_disabled(self):
        self._try(RunState.DISABLED, self.ctx.disable)

    @precondition(lambda self: self.ctx is not None and self.ctx.is_active)
    @rule(value=st.integers(0, 3))
    def node_reads_params(self, value):
        self.ctx.log_params({"params:fixed": {"a": 1}, f"params:p{value}": value})

    @precondition(lambda self: self.ctx is not None and self.ctx.is_active)
    @rule(message=st.text(max_size=20))
    def on_node_error(self, message):
        self.ctx.record_error(ValueError(message), "node")

    @precondition(lambda self: self.ctx is not None)
    @rule(status=st.sampled_from([RunState.FINISHED, RunState.FAILED, RunState.KILLED]))
    def run_ends(self, status):
        error = None if status is RunState.FINISHED else RuntimeError("pipeline failed")
        self._try(status, lambda: self.ctx.end(status, error))

    @invariant()
    def at_most_one_open_run_of_ours(self):
        running = [
            r for r in self.client.search_runs(
                [e.experiment_id for e in self.client.search_experiments()],
                filter_string="attributes.status = 'RUNNING'",
            )
            if r.info.run_id != self.orchestrator_run
        ]
        assert len(running) <= 1
        ours = [c for c in active_contexts() if c.config.server.tracking_uri == self.uri]
        assert len(ours) <= 1
        if self.ctx is not None and self.ctx.is_active:
            assert ours == [self.ctx]
            if self.ctx.ownership is Ownership.OWNED:
                assert [r.info.run_id for r in running] == [self.ctx.run_id]
        else:
            assert running == []

    @invariant()
    def ended_runs_are_closed_with_the_true_status(self):
        for ctx in self.ended:
            run = self.client.get_run(ctx.run_id)
            if ctx.ownership is Ownership.OWNED:
                assert run.info.status == ctx.state.value
            if ctx.ownership is Ownership.ATTACHED:
                closer = self._last_closer_of(ctx.run_id)
                if closer is None:  # no attached context was configured to end it: left open
                    assert run.info.status == "RUNNING"
                else:
                    assert run.info.status == closer.state.value

    def _last_closer_of(self, run_id):
        closers = [c for c in self.ended if c.run_id == run_id and c.ownership is Ownership.ATTACHED
                   and (c.config.tracking.run.attached.end_run
                        or (c.state is not RunState.FINISHED and c.config.tracking.run.attached.record_failure))]
        return closers[-1] if closers else None

    @invariant()
    def fluent_stack_is_ours_or_empty(self):
        import mlflow

        active = mlflow.active_run()
        if active is not None:
            assert self.ctx is not None and self.ctx.is_active and active.info.run_id == self.ctx.run_id


TEMPLATE_DB: Path


@pytest.fixture
def _template(template_db):
    global TEMPLATE_DB
    TEMPLATE_DB = template_db


def _run_machine(machine: type[RuleBasedStateMachine], examples: int, steps: int) -> None:
    machine.TestCase.settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    machine.TestCase().runTest()


@pytest.mark.usefixtures("_template")
def test_run_context_state_machine():
    _run_machine(RunContextMachine, examples=25, steps=12)


class HooksMachine(RuleBasedStateMachine):
    """Random sequences of Kedro hook calls (as a session and its runner make them, with two hook
    instances registered, errors and interrupts) against a real sqlite store.

    Invariants: at most one open run; every run a finished Kedro run opened is closed with the
    status its outcome calls for; after a Kedro run ends, MLflow's fluent run, its global URI and
    the published handle are back to what they were.
    """

    def __init__(self):
        super().__init__()
        from kedro.io import DataCatalog, MemoryDataset
        from kedro.pipeline import node, pipeline

        from kedro_mlflow_runs.hooks import MlflowRunsHooks

        self.tmp = Path(tempfile.mkdtemp(prefix="kmr-hooks-"))
        shutil.copy(TEMPLATE_DB, self.tmp / "mlflow.db")
        self.uri = f"sqlite:///{self.tmp / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        self.hooks = [MlflowRunsHooks(), MlflowRunsHooks()]  # the entry point's and the project's
        self.node = node(lambda x: x, "params:alpha", "out", name="identity")
        self.pipeline = pipeline([self.node])
        self.catalog = DataCatalog({"params:alpha": MemoryDataset(0.5)})
        (self.tmp / "conf" / "base").mkdir(parents=True)  # the hooks read the project's mlflow.yml
        (self.tmp / "conf" / "base" / "mlflow.yml").write_text(f"server:\n  mlflow_tracking_uri: {self.uri}\n")
        self.counter = 0
        self.current: str | None = None  # Kedro run id in progress
        self.expected: dict[str, str] = {}  # kedro run id -> expected final MLflow status
        self.node_running = False

    def teardown(self):
        if self.current is not None:
            self._each("on_pipeline_error", error=RuntimeError("teardown"), run_params=self._params())
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _params(self):
        return {"run_id": self.current, "project_path": str(self.tmp), "env": "local", "kedro_version": "1.7.0",
                "pipeline_names": None, "runner": "None"}

    def _each(self, hook, **kwargs):
        for instance in self.hooks:
            getattr(instance, hook)(**kwargs)

    @precondition(lambda self: self.current is None)
    @rule()
    def before_pipeline_run(self):
        from kedro_mlflow_runs.core.registry import registry

        self.counter += 1
        self.current = f"kedro-run-{self.counter}"
        registry().configs.forget()  # no after_context_created here: the hooks read conf/ themselves
        self._each("before_pipeline_run", run_params=self._params(), pipeline=self.pipeline, catalog=self.catalog)

    @precondition(lambda self: self.current is not None and not self.node_running)
    @rule()
    def before_node_run(self):
        self._each("before_node_run", node=self.node, run_id=self.current)
        self.node_running = True

    @precondition(lambda self: self.current is not None and self.node_running)
    @rule(fail=st.booleans())
    def node_ends(self, fail):
        import mlflow

        assert mlflow.active_run() is not None and mlflow.active_run().info.run_id == self._run_id()
        if fail:
            self._each("on_node_error", error=ValueError("node failed"), node=self.node, run_id=self.current)
        else:
            self._each("after_node_run", run_id=self.current)
        self.node_running = False

    @precondition(lambda self: self.current is not None and not self.node_running)
    @rule(outcome=st.sampled_from(["success", "error", "interrupt"]))
    def pipeline_ends(self, outcome):
        from kedro_mlflow_runs import Outcome
        from kedro_mlflow_runs.core.registry import registry

        if outcome == "success":
            self._each("after_pipeline_run", run_params=self._params())
            self.expected[self.current] = "FINISHED"
        elif outcome == "error":
            self._each("on_pipeline_error", error=RuntimeError("pipeline failed"), run_params=self._params())
            self.expected[self.current] = "FAILED"
        else:  # SystemExit from node code: no hook sees it, the runner guard ends it this way
            registry().finish(self.current, Outcome.killed(SystemExit(1)))
            self.expected[self.current] = "KILLED"
        self.current = None

    def _run_id(self):
        from kedro_mlflow_runs.core.registry import registry

        return registry().runs()[self.current].run_id

    @invariant()
    def at_most_one_open_run_and_true_statuses(self):
        import os

        import mlflow

        runs = self.client.search_runs([e.experiment_id for e in self.client.search_experiments()])
        by_kedro = {r.data.tags["kedro.run_id"]: r for r in runs}
        assert len(by_kedro) == len(runs)  # one MLflow run per Kedro run, despite two hook instances
        assert sum(r.info.status == "RUNNING" for r in runs) == (1 if self.current else 0)
        for kedro_run, status in self.expected.items():
            assert by_kedro[kedro_run].info.status == status
        if self.current is None:
            assert mlflow.active_run() is None
            assert "KEDRO_MLFLOW_RUNS_HANDLE" not in os.environ
            assert not active_contexts()


@pytest.mark.usefixtures("_template")
def test_hook_sequences_state_machine():
    _run_machine(HooksMachine, examples=20, steps=15)
