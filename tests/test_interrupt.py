"""Never lose a good report: a batch killed (SIGKILL) or interrupted (Ctrl-C) mid-run leaves every report
either the previous complete version or a new complete one, no half-written file under a report's name,
an index that lists every team, and no lingering kernels or browsers; the next run cleans up and completes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import tiny_tables
from test_loaders import write_csv_folder

pytestmark = pytest.mark.timeout(300)

QUARTER = "2026Q3"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_csv_folder(tiny_tables(), tmp_path_factory.mktemp("data") / "org")


def command(data_dir, out, *extra):
    return [sys.executable, "-m", "okr_analysis.cli", "report", str(data_dir), "-q", QUARTER, "--format", "html",
            "--out", str(out), "--jobs", "2", *extra]


ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def complete_html(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return text.lstrip().lower().startswith("<!doctype html") and text.rstrip().endswith("</html>")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def first(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "reports"
    proc = subprocess.run(command(data_dir, out), capture_output=True, text=True, timeout=240, env=ENV)
    assert proc.returncode == 0, proc.stderr
    folder = out / QUARTER
    manifest = json.loads((folder / "build.json").read_text())
    assert manifest["counts"]["ok"] == 6
    return {"out": out, "folder": folder, "files": snapshot(folder), "teams": [t["team_id"] for t in manifest["teams"]]}


def interrupt(data_dir, out, folder, sig, *, group=True):
    """Start a forced re-render and send ``sig`` to its process group (``group``) or to the batch process
    alone once a worker is executing a notebook."""
    # a killed run before this one leaves its temporaries behind: only a new one means a worker started
    left_over = set(folder.glob(".*.tmp-*.ipynb"))
    proc = subprocess.Popen(command(data_dir, out, "--force"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=ENV, start_new_session=True)
    deadline = time.monotonic() + 120
    started = False
    while time.monotonic() < deadline and proc.poll() is None:
        if set(folder.glob(".*.tmp-*.ipynb")) - left_over:
            started = True
            break
        time.sleep(0.05)
    assert started, "no worker started within 120 s"
    time.sleep(1.0)  # mid-notebook
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    if group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"the batch did not stop within 60 s of {sig!r}")
    _, err = proc.communicate()
    # kernels (their own session) and browsers must not outlive the batch
    deadline = time.monotonic() + 20
    alive = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    for p in alive:  # clean up before failing
        psutil.Process(p).kill()
    assert not alive, f"processes of the interrupted batch still running: {alive}"
    return proc.returncode, err.decode(errors="replace")


def check_folder(folder: Path, old: dict[str, bytes], teams: list[str]):
    manifest = json.loads((folder / "build.json").read_text())  # parses: written atomically
    assert [t["team_id"] for t in manifest["teams"]] == teams, "the index lists every team"
    index = (folder / "index.html").read_text()
    assert complete_html(folder / "index.html")
    for link in set(re.findall(r'href="([^"#?]+\.html)"', index)):
        assert (folder / link).exists(), f"index links to a missing {link}"
    for name, data in snapshot(folder).items():
        if name.endswith(".html"):
            assert complete_html(folder / name), f"{name} is half-written"
        elif name.endswith(".ipynb") or name.endswith(".json"):
            json.loads(data)  # complete JSON
    for t in manifest["teams"]:
        if t["html"]:
            assert (folder / t["html"]).exists() and complete_html(folder / t["html"])
    # every report file of the first run is still there (old or new, never gone)
    assert {n for n in old if n.endswith(".html")} <= set(snapshot(folder))


@pytest.mark.parametrize("sig,group", [(signal.SIGKILL, True), (signal.SIGINT, True), (signal.SIGTERM, False),
                                       (signal.SIGKILL, False)],
                         ids=["kill", "ctrl-c", "term-batch-only", "kill-batch-only"])
def test_interrupted_batch_keeps_every_good_report(first, data_dir, sig, group):
    # group: what a terminal or a process manager does; batch only: `kill PID` of the okr-analysis process,
    # after which its workers, kernels and browsers must not live on (interrupt() checks that)
    code, err = interrupt(data_dir, first["out"], first["folder"], sig, group=group)
    assert code != 0
    if sig != signal.SIGKILL:
        assert "Traceback" not in err, err[-2000:]
    check_folder(first["folder"], first["files"], first["teams"])


def test_next_run_cleans_up_and_completes(first, data_dir):
    # after the interruptions above (or on its own): a normal run finishes, and no temporary file is left
    proc = subprocess.run(command(data_dir, first["out"]), capture_output=True, text=True, timeout=240, env=ENV)
    assert proc.returncode == 0, proc.stderr
    folder = first["folder"]
    assert not list(folder.glob(".*.tmp-*")), "temporaries of the interrupted runs were not cleaned up"
    manifest = json.loads((folder / "build.json").read_text())
    assert manifest["counts"]["ok"] == 6 and manifest["ok"]
    check_folder(folder, first["files"], first["teams"])
