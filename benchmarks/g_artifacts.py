"""Big artifacts (``run_all.py --only artifacts``, or alone with the ``ours`` venv or the dev venv)::

    <venv>/bin/python benchmarks/g_artifacts.py [--size-mb 500] [--partitions 1000] [--stores local,server]
                                                [--repeats 2]

Two workloads through ``MlflowArtifactDataset``, each against two stores:

- ``file``: one file of ``--size-mb`` MB, written by a dataset that streams it in 8 MiB chunks (the node's
  data is the size, never the bytes, so that the memory measured is the transfer's);
- ``partitions``: a ``PartitionedDataset`` of ``--partitions`` text files (``--partition-kb`` each);

- ``local``: a sqlite tracking store with a local artifact root;
- ``server``: ``mlflow server`` (sqlite backend) with proxied artifacts (``--artifacts-destination``):
  every file is uploaded over HTTP, as on a shared server.

Three sides, each in a fresh process (for a clean peak memory), each of the six orders in turn:
``write only`` (the wrapped dataset's save, no MLflow), ``raw`` (the same save, then
``MlflowClient.log_artifact`` of the file or ``log_artifacts`` of the folder: what a user writes by hand),
and ``ours`` (``MlflowArtifactDataset.save``). Per side: wall seconds of the save, and the peak resident
memory it added (``VmHWM`` after minus ``VmRSS`` before). Each side's run is checked afterwards: every file
is in it, with its size.

Prints one JSON object (every measurement) on stdout; progress on stderr. Standard library only in the
parent; the children import MLflow, Kedro and this plugin.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import MlflowServer  # noqa: E402

SIDES = ("write only", "raw", "ours")
ORDERS = list(itertools.permutations(SIDES))
WORKLOADS = ("file", "partitions")
STORES = ("local", "server")
CHUNK = 8 * 1024 * 1024


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ the child


def _memory() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def _chunked_dataset(path: Path) -> Any:
    """A file dataset that writes ``data`` bytes (an int) in chunks, and loads the file's size."""
    from kedro.io.core import AbstractDataset

    class ChunkedFileDataset(AbstractDataset[int, int]):
        def __init__(self, filepath: str) -> None:
            from pathlib import PurePosixPath

            self._filepath = PurePosixPath(filepath)
            self._protocol = "file"

        def save(self, data: int) -> None:
            block = (bytes(range(256)) * (CHUNK // 256))
            left = data
            with open(self._filepath, "wb") as out:
                while left > 0:
                    out.write(block[:min(left, CHUNK)])
                    left -= CHUNK

        def load(self) -> int:
            return os.path.getsize(self._filepath)

        def _exists(self) -> bool:
            return os.path.exists(self._filepath)

        def _describe(self) -> dict[str, Any]:
            return {"filepath": str(self._filepath)}

    return ChunkedFileDataset(str(path))


def _partitioned(folder: Path) -> Any:
    from kedro_datasets.partitions import PartitionedDataset

    return PartitionedDataset(path=str(folder), dataset="text.TextDataset", filename_suffix=".txt")


def child(args: argparse.Namespace) -> None:
    import logging

    import mlflow
    from mlflow import MlflowClient

    logging.disable(logging.WARNING)
    work = Path(args.workdir)
    mlflow.set_tracking_uri(args.uri)
    client = MlflowClient()
    if args.workload == "file":
        dataset = _chunked_dataset(work / "big.bin")
        data: Any = args.size_mb * 1000 * 1000
        local = work / "big.bin"
    else:
        folder = work / "parts"
        dataset = _partitioned(folder)
        text = ("x" * 63 + "\n") * (args.partition_kb * 1024 // 64)
        data = {f"part-{i:05d}": text for i in range(args.partitions)}
        local = folder
    if args.side == "ours":
        from kedro_mlflow_runs.io.artifacts import MlflowArtifactDataset

        wrapper = MlflowArtifactDataset(dataset=dataset, artifact_path="out")
    with mlflow.start_run(run_name=f"{args.workload} {args.side}") as run:
        run_id = run.info.run_id
        before = _memory()
        start = time.perf_counter()
        if args.side == "write only":
            dataset.save(data)
        elif args.side == "raw":
            dataset.save(data)
            if local.is_dir():
                client.log_artifacts(run_id, str(local), "out")
            else:
                client.log_artifact(run_id, str(local), "out")
        else:
            wrapper.save(data)
        elapsed = time.perf_counter() - start
        after = _memory()
    logged = _walk(client, run_id, "out") if args.side != "write only" else {}
    print(json.dumps({
        "s": elapsed, "rss_before_mb": before["VmRSS"], "peak_added_mb": max(0.0, after["VmHWM"] - before["VmRSS"]),
        "files_logged": len(logged), "bytes_logged": sum(logged.values()),
        "bytes_written": sum(p.stat().st_size for p in ([local] if local.is_file() else local.rglob("*"))
                             if p.is_file()),
    }))


def _walk(client: Any, run_id: str, path: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found.update(_walk(client, run_id, item.path))
        else:
            found[item.path] = item.file_size or 0
    return found


# ------------------------------------------------------------------------------------ the parent


def _one(args: argparse.Namespace, store: str, uri: str, workload: str, side: str, root: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="side-", dir=root))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "KEDRO_", "KMR_"))}
    env.update(KEDRO_DISABLE_TELEMETRY="1", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--side", side, "--workload", workload,
           "--uri", uri, "--workdir", str(work), "--size-mb", str(args.size_mb), "--partitions",
           str(args.partitions), "--partition-kb", str(args.partition_kb)]
    _settle()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise SystemExit(f"{store}/{workload}/{side} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    shutil.rmtree(work, ignore_errors=True)  # the local copy; the store keeps its own until the store goes
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _settle() -> None:
    """Each side starts from the same machine state: the previous side's dirty pages written out, the page
    cache dropped where this user may (root), and a pause for the server to go idle."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        pass
    time.sleep(2)


def _measure_store(args: argparse.Namespace, store: str, uri: str, root: Path, out: dict[str, Any]) -> None:
    for workload in args.workloads:
        for r in range(args.repeats):
            order = ORDERS[r % len(ORDERS)]  # every side after every other as often: a side that follows a
            # 500 MB write pays for the kernel's writeback of it
            for side in order:
                found = _one(args, store, uri, workload, side, root)
                out.setdefault(store, {}).setdefault(workload, {}).setdefault(side, []).append(found)
                _say(f"{store} {workload} {side}: {found['s']:.2f} s, +{found['peak_added_mb']:.0f} MB, "
                     f"{found['files_logged']} files logged")
            _clear_artifacts(root)


def _clear_artifacts(root: Path) -> None:
    """Drop what the runs stored (a 500 MB file per side adds up); the runs stay."""
    for folder in (root / "local-artifacts", root / "server" / "served"):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--partition-kb", type=int, default=4)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0
    args.workloads = [w for w in args.workloads.split(",") if w]
    stores = [s for s in args.stores.split(",") if s]
    out: dict[str, Any] = {"size_mb": args.size_mb, "partitions": args.partitions,
                           "partition_kb": args.partition_kb, "repeats": args.repeats}
    root = Path(tempfile.mkdtemp(prefix="kmr-artifacts-"))
    try:
        if "local" in stores:
            (root / "local-artifacts").mkdir()
            # the experiment's artifact root: set when the store creates its Default experiment
            uri = f"sqlite:///{(root / 'local.db').as_posix()}"
            subprocess.run([sys.executable, "-c", "import sys, mlflow; from mlflow.store.tracking.sqlalchemy_store "
                            "import SqlAlchemyStore; SqlAlchemyStore(sys.argv[1], sys.argv[2])", uri,
                            (root / "local-artifacts").as_posix()], check=True, cwd=root)
            _measure_store(args, "local", uri, root, out)
        if "server" in stores:
            (root / "server").mkdir()
            server_db = f"sqlite:///{(root / 'server' / 'server.db').as_posix()}"
            with MlflowServer(root / "server", server_db) as server:
                _measure_store(args, "server", server.url, root, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
