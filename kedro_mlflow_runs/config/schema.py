"""mlflow.yml, described once: every key with its type, default, allowed values, template comment and
documentation. Validation (``validation.py``), the ``kedro mlflow init`` template and the key table
of ``docs/mlflow_yml.md`` (``template.py``) are all made from :data:`KEYS`; a test checks the docs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..params import LONG_PARAMS_STRATEGIES

__all__ = ["KEYS", "LINEAGE_DIGESTS", "Key", "Kind", "keys_under"]

#: ``tracking.lineage.digest``: how a dataset's digest is computed (see docs/lineage-and-timeline.md).
LINEAGE_DIGESTS: Final = ("auto", "stat", "content", "none")


@dataclass(frozen=True)
class Kind:
    """The type a key's value must have: ``name`` is how errors and the docs call it."""

    name: str
    types: tuple[type, ...]
    item: type | None = None  # the type of each item of a list


STRING: Final = Kind("a string", (str,))
BOOLEAN: Final = Kind("a boolean", (bool,))
INTEGER: Final = Kind("an integer", (int,))
NUMBER: Final = Kind("a number", (int, float))
MAPPING: Final = Kind("a mapping", (dict,))
PIPELINES: Final = Kind("a list of pipeline names (strings)", (list,), str)
FLAVORS: Final = Kind("a list of MLflow flavor names such as sklearn", (list,), str)


@dataclass(frozen=True)
class Key:
    """One key of mlflow.yml.

    Attributes:
        path: the dotted key (``tracking.run.id``).
        kind: the type its value must have.
        default: its value when unset (None: unset, resolved from the environment or elsewhere).
        comment: the one-line comment of the ``init`` template.
        doc: what it does, for ``docs/mlflow_yml.md``.
        shown_default: the docs' default column, when the value alone does not say it.
        choices: the values it may take (when it is one of a few).
        minimum: the least value it may take (numbers); ``exclusive`` when it must be above it.
        maximum: the greatest value it may take (numbers).
        non_empty: whether an empty string is an error (a value must be given, or the key left out).
    """

    path: str
    kind: Kind
    default: Any
    comment: str
    doc: str
    shown_default: str | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    non_empty: bool = False

    @property
    def section(self) -> str:
        return self.path.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]


_SECURITY = "[Security](security.md)"

KEYS: Final[tuple[Key, ...]] = (
    Key("server.mlflow_tracking_uri", STRING, None, "default: MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db",
        "Where runs are stored. Local forms are resolved against the project root: `sqlite:///mlflow.db` means "
        "`<project>/mlflow.db`, `mlruns` means `file://<project>/mlruns` (MLflow 3 refuses the file store unless "
        "`MLFLOW_ALLOW_FILE_STORE=true`). Remote URIs (`http(s)://`, `postgresql://`, `databricks`) are used as "
        "they are. A password in the URI is never printed: logs and errors show `user:***@`.",
        shown_default="`MLFLOW_TRACKING_URI`, else `sqlite:///<project>/mlflow.db`", non_empty=True),
    Key("server.mlflow_registry_uri", STRING, None, "default: MLFLOW_REGISTRY_URI, else the tracking URI",
        "The model registry.", shown_default="`MLFLOW_REGISTRY_URI`, else the tracking URI"),
    Key("server.credentials", STRING, None, "a credentials.yml entry set as environment variables during the run",
        "Name of an entry of `credentials.yml` whose keys are environment variables for MLflow "
        "(`MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`, `AWS_ACCESS_KEY_ID`, ...). They are set in the "
        "environment for the duration of the run (so worker processes inherit them), removed afterwards, and "
        "never logged. A missing entry is an error before anything runs."),
    Key("server.http.max_retries", INTEGER, None, "default: MLFLOW_HTTP_REQUEST_MAX_RETRIES, else 5",
        "Retries of a failed request (HTTP 408/429/5xx, connection errors), with exponential backoff. Set for the "
        "duration of the run, as MLflow's environment variable, so worker processes use it too.",
        shown_default="`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, else 5", minimum=0),
    Key("server.http.backoff_factor", INTEGER, None, "default: MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, else 1",
        "Backoff between retries: about factor x 2^(n-1) seconds. 5 retries with factor 1 wait about 30 s in all "
        "(MLflow's own defaults, 7 and 2, wait about 4 minutes).",
        shown_default="`MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`, else 1", minimum=0),
    Key("server.http.timeout", INTEGER, None, "default: MLFLOW_HTTP_REQUEST_TIMEOUT, else MLflow's 120 s",
        "Seconds a request may wait for an answer.", shown_default="`MLFLOW_HTTP_REQUEST_TIMEOUT`, else 120",
        minimum=0),
    Key("server.request_header_provider.type", STRING, None, "your RequestHeaderProvider subclass (import path)",
        "For a server behind a gateway that wants a header MLflow cannot send itself: the import path of your "
        "subclass of MLflow's `RequestHeaderProvider` (`mlflow.tracking.request_header."
        "abstract_request_header_provider`). It is built with `init_kwargs` when a tracked run starts, before its "
        "first request, and MLflow asks it for headers on every request until the run ends, so a provider that "
        "refreshes an expiring token keeps a long run working. ParallelRunner workers started with `spawn` build "
        "their own, with `kedro_context=None`, from what the run publishes: `KEDRO_MLFLOW_RUNS_HEADER_PROVIDER` "
        "names the class and a private 0600 file holding `init_kwargs`, removed when the run ends; the values "
        f"never go into the environment ({_SECURITY}). `kedro mlflow close-run` uses it too. A class that cannot "
        "be imported, is not a `RequestHeaderProvider` or refuses `init_kwargs` is a `ConfigError` naming the "
        "key, before any run is opened. Not used when tracking is disabled for the pipeline."),
    Key("server.request_header_provider.pass_context", BOOLEAN, False, "also pass kedro_context=<KedroContext>",
        "Build the provider with `kedro_context=<KedroContext>` as well."),
    Key("server.request_header_provider.init_kwargs", MAPPING, {}, "its constructor's arguments (never logged)",
        "The provider's constructor arguments. Never logged."),
    Key("tracking.disable_tracking.pipelines", PIPELINES, [], "pipelines that run with no MLflow call",
        "A run is untracked when every pipeline it runs is listed (`__default__` when none is named)."),
    Key("tracking.disable_tracking.disable_autologging", BOOLEAN, True, "no MLflow autologging during a tracked run",
        "While a tracked run is in progress, MLflow's autologging is off (as kedro-mlflow does), so that it cannot "
        "open runs of its own; whatever was on (a flavor's `autolog()` you called, or `mlflow.autolog()`, which "
        "Databricks calls for you) is on again after the run. `false` keeps your autologging on during the run, "
        "which then logs into the plugin's run."),
    Key("tracking.autolog.enabled", BOOLEAN, False, "MLflow autologging into the plugin's run, on every runner",
        "Turn MLflow autologging on when a tracked run starts (`mlflow.<flavor>.autolog(**kwargs)` for each "
        "flavor, `mlflow.autolog(**kwargs)` when none is listed) and off when it ends (what was on before is on "
        "again). What nodes fit lands in the plugin's run on every runner: worker threads have the run as their "
        "active run, forked workers inherit autologging, spawned workers turn it on from "
        "`KEDRO_MLFLOW_RUNS_AUTOLOG`, Dask workers when the run is handed to them. When enabled, "
        "`disable_autologging` does not apply."),
    Key("tracking.autolog.flavors", FLAVORS, [], "e.g. [sklearn, xgboost]; empty: every library (mlflow.autolog)",
        "The flavors to autolog. A flavor MLflow cannot autolog is a `ConfigError` (the run ends FAILED before "
        "any node)."),
    Key("tracking.autolog.kwargs", MAPPING, {}, "passed to autolog(), e.g. {log_models: false}",
        "Passed to each `autolog()` call."),
    Key("tracking.lineage.enabled", BOOLEAN, True, "the datasets the run read and wrote (lineage)",
        "Log the persisted catalog datasets the pipeline reads as free inputs as MLflow dataset inputs of the run "
        "(context `kedro.input`: name, source, digest, schema of pandas/polars frames), and the persisted outputs "
        "it wrote as `kedro/outputs.json`. See [lineage-and-timeline.md](lineage-and-timeline.md)."),
    Key("tracking.lineage.digest", STRING, "auto", "auto | stat | content | none",
        "How a dataset's digest is computed: a hash of the bytes (`content`), of size and modification time "
        "(`stat`), content up to 4 MiB and stat above (`auto`), or the constant `none`.",
        choices=LINEAGE_DIGESTS),
    Key("tracking.timeline.enabled", BOOLEAN, True, "kedro/timeline.json|html, kedro.node_duration_s.* metrics",
        "At the end of the run (whatever its outcome), log `kedro/timeline.json`, `kedro/timeline.html`, "
        "`kedro/pipeline.json` and one metric `kedro.node_duration_s.<node>` per node that ran."),
    Key("tracking.timeline.trace", BOOLEAN, True, "the timeline as an MLflow trace too (MLflow's Traces tab)",
        "With the timeline on, also write the run's nodes as one MLflow trace linked to the run, shown on a time "
        "axis in MLflow's UI (the run's Traces tab): a span per node with its worker, attempt, load / compute / "
        "save seconds and datasets, failed nodes marked. Written once, by whoever ends the run, in two requests; "
        "a store that cannot take traces gets a warning and the run is unchanged. It costs about 0.3 ms a node at the "
        "end of the run: `false` for pipelines of thousands of nodes."),
    Key("tracking.child_runs.by", STRING, "none", "none | pipeline | namespace",
        "Give each group of nodes a child run of the run (`mlflow.parentRunId`), named after the group: `pipeline`, "
        "the smallest registered pipeline holding the node (ties: the first name; `__default__` never counts); "
        "`namespace`, the node's top-level namespace. Datasets a node saves and `mlflow.log_metric` in its code go "
        "to its child run, the parameters its nodes read are logged there too, and the parent keeps everything else "
        "(the timeline, lineage, status). Nodes in no group stay in the parent. See [Child runs](child-runs.md).",
        choices=("none", "pipeline", "namespace")),
    Key("tracking.system_metrics.enabled", BOOLEAN, False, "MLflow's system/... metrics (needs the [system] extra)",
        "MLflow's `system/...` metrics (CPU, memory, disk, network, GPU where present) for the whole `kedro run`, "
        "sampled in the process that runs it and stopped before the run ends. "
        "`MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true` turns it on too. Needs `psutil` "
        "(`pip install \"kedro-mlflow-runs[system]\"`): without it, a `MissingDependencyError` before the run opens."),
    Key("tracking.system_metrics.sampling_interval", NUMBER, 10.0, "seconds between samples",
        "Seconds between samples (MLflow's `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` wins when set).",
        minimum=0, exclusive=True),
    Key("tracking.system_metrics.samples_before_logging", INTEGER, 1, "samples averaged into each logged point",
        "Samples averaged into each logged point (MLflow's `MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING` wins "
        "when set).", minimum=1),
    Key("tracking.experiment.name", STRING, None, "default: MLFLOW_EXPERIMENT_NAME, else the package name",
        "The experiment, created when missing. With the default store its artifacts go to `<project>/mlartifacts`. "
        "`${km.random_name:}` gives a random readable name (see `tracking.run.name`).",
        shown_default="`MLFLOW_EXPERIMENT_NAME`, else the package name", non_empty=True),
    Key("tracking.experiment.restore_if_deleted", BOOLEAN, True, "restore a deleted experiment of that name",
        "Restore a deleted experiment of that name; with `false`, a deleted experiment is an error."),
    Key("tracking.experiment.create_experiment_kwargs.artifact_location", STRING, None,
        "used when the plugin creates the experiment",
        "Artifact location of an experiment the plugin creates.",
        shown_default="the store's (`<project>/mlartifacts` for the default store)"),
    Key("tracking.experiment.create_experiment_kwargs.tags", MAPPING, None, "used when the plugin creates it",
        "Tags of an experiment the plugin creates."),
    Key("tracking.run.id", STRING, None, "attach to this run; default: MLFLOW_RUN_ID, else a new run",
        "Attach to this existing run instead of creating one.", shown_default="`MLFLOW_RUN_ID`, else a new run",
        non_empty=True),
    Key("tracking.run.name", STRING, None, "default: the pipeline names joined with ','",
        "Name of a new run. `${km.random_name:}` (kedro-mlflow's resolver, registered when the plugin reads the "
        "config) gives a random readable name such as `keen-otter-042`.",
        shown_default="the pipeline names joined with `,`", non_empty=True),
    Key("tracking.run.description", STRING, None, "the run's description in the MLflow UI (Markdown)",
        "The run's description, shown (as Markdown) on the run page of the MLflow UI: the `mlflow.note.content` "
        "tag.", non_empty=True),
    Key("tracking.run.nested", BOOLEAN, True, "a run active in the session thread becomes the parent",
        "A run started by your code in the calling thread becomes the parent (`mlflow.parentRunId`)."),
    Key("tracking.run.tags", MAPPING, {}, "set on every run; plain values",
        "Tags set on every run; values must be plain (string, number, boolean)."),
    Key("tracking.run.attached.end_run", BOOLEAN, False, "end an attached run when the Kedro run ends",
        "End an attached run when the Kedro run ends, with its status."),
    Key("tracking.run.attached.record_failure", BOOLEAN, False, "end an attached run when the Kedro run fails",
        "End an attached run as FAILED/KILLED when the Kedro run fails or is killed (success leaves it open)."),
    Key("tracking.params.dict_params.flatten", BOOLEAN, True, "one parameter per leaf: model.C",
        "Log dict parameters as one parameter per leaf (`model.C`), else as the dict's string. kedro-mlflow's "
        "default is `false`; its generated mlflow.yml says `false` explicitly, and that is honoured."),
    Key("tracking.params.dict_params.recursive", BOOLEAN, True, "flatten nested dicts all the way down",
        "Flatten nested dicts all the way down, else only the first level."),
    Key("tracking.params.dict_params.sep", STRING, ".", "separator of flattened names",
        "Separator of flattened names.", non_empty=True),
    Key("tracking.params.long_params_strategy", STRING, "fail", "fail | tag | truncate",
        "For values over 6000 characters: fail naming the parameter, log as a tag instead (up to 8000 "
        "characters), or cut to 6000. The length is that of the value as written; passwords are redacted "
        f"afterwards, in what is kept ({_SECURITY}), so a long value costs no more than a short one.",
        choices=LONG_PARAMS_STRATEGIES),
    Key("ui.host", STRING, "127.0.0.1", "kedro mlflow ui --host overrides it",
        "The address `kedro mlflow ui` serves on; its `--host` option overrides it."),
    Key("ui.port", INTEGER, 5000, "kedro mlflow ui --port overrides it",
        "The port `kedro mlflow ui` serves on (a numeric string such as kedro-mlflow's `\"5000\"` is accepted); "
        "its `--port` option overrides it.", minimum=1, maximum=65535),
)


def keys_under(section: str) -> tuple[Key, ...]:
    """The keys of ``section`` and of the sections inside it."""
    prefix = f"{section}." if section else ""
    return tuple(key for key in KEYS if key.path.startswith(prefix))
