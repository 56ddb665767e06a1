"""Make the tutorial's pictures from real runs: `python tools/doc_pictures.py` (a minute or so).

Creates Kedro's spaceflights project from the starter kept in tests/starters, applies the tutorial's
edits (the blocks of docs/tutorial.md marked `<!-- tutorial: ... -->`), runs it twice (sequential,
then ParallelRunner), and writes:

* docs/img/timeline.svg: the node timeline the plugin drew for the parallel run (the SVG of its
  `kedro/timeline.html`, with the page's styles);
* the `kedro mlflow runs` and `kedro mlflow show` outputs into the tutorial's output blocks (paths and
  the user name made generic).

tests/test_tutorial.py uses the same helpers to follow the tutorial and check the outputs' shape.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TUTORIAL = REPO / "docs" / "tutorial.md"
STARTER = REPO / "tests" / "starters" / "spaceflights-pandas"
BLOCK = re.compile(r"<!-- tutorial: (?P<what>[^>]*?) -->\n```\w*\n(?P<body>.*?)```", re.S)


def blocks(text: str | None = None) -> dict[str, str]:
    """The tutorial's marked blocks: ``{"append conf/base/catalog.yml": "...", "output runs": ...}``."""
    return {m["what"]: m["body"] for m in BLOCK.finditer(text if text is not None else TUTORIAL.read_text())}


def kedro(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``kedro <args>`` as a user types it (telemetry off, wide lines, logging on standard error)."""
    kedro_bin = Path(sys.executable).with_name("kedro")
    full = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([str(kedro_bin), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=600)


def new_project(root: Path) -> Path:
    """``kedro new --starter=spaceflights-pandas --name spaceflights``, from the kept starter."""
    done = kedro("new", "--starter", str(STARTER), "--name", "spaceflights", cwd=root)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    return root / "spaceflights"


def apply_edits(project: Path) -> None:
    """The tutorial's file edits (section 2)."""
    for what, body in blocks().items():
        action, _, rel = what.partition(" ")
        if action == "append":
            with (project / rel).open("a") as out:
                out.write(body)
        elif action == "write":
            (project / rel).write_text(body)


def command_output(result: subprocess.CompletedProcess[str]) -> str:
    """A command's own output: its standard output without Kedro's log lines."""
    lines = [line for line in result.stdout.splitlines() if not re.match(r"^(\[[\d/: ]+\])?\s+(INFO|WARNING)\s", line)
             and line.strip() and not line.startswith(" " * 20)]
    return "\n".join(lines) + "\n"


def timeline_svg(html: str) -> str:
    """The SVG of a timeline page, standing alone: the page's ``svg`` styles moved inside it."""
    styles = "\n".join(line for line in re.search(r"<style>(.*?)</style>", html, re.S)[1].splitlines()
                       if line.startswith("svg"))
    svg = re.search(r"<svg .*?</svg>", html, re.S)[0]
    head_end = svg.index(">") + 1
    return f"{svg[:head_end]}<style>\n{styles}\n</style>{svg[head_end:]}\n"


def generic(text: str, project: Path) -> str:
    """Outputs as a reader would see them in their own project."""
    text = text.replace(str(project), "/home/me/spaceflights")
    return re.sub(r"(\n  user\s+)\S+", r"\1me", text)


def main() -> None:
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as tmp:
        project = new_project(Path(tmp))
        for step in (("run",), ("run", "--runner", "ParallelRunner")):  # the starter as it comes, then edited
            done = kedro(*step, cwd=project)
            if done.returncode != 0:
                raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
            if step == ("run",):
                apply_edits(project)
        client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
        (run,) = client.search_runs(["1"], max_results=1)
        html = Path(client.download_artifacts(run.info.run_id, "kedro/timeline.html", tmp)).read_text()
        (REPO / "docs" / "img").mkdir(exist_ok=True)
        (REPO / "docs" / "img" / "timeline.svg").write_text(timeline_svg(html))
        text = TUTORIAL.read_text()
        outputs = {"output runs": command_output(kedro("mlflow", "runs", cwd=project)),
                   "output show": command_output(kedro("mlflow", "show", run.info.run_id[:8], cwd=project))}
        for what, output in outputs.items():
            old = blocks(text)[what]
            text = text.replace(f"<!-- tutorial: {what} -->\n```text\n{old}```",
                                f"<!-- tutorial: {what} -->\n```text\n{generic(output, project)}```")
        TUTORIAL.write_text(text)


if __name__ == "__main__":
    main()
