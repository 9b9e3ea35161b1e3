"""The Dask executor: a real ``distributed`` scheduler and two worker processes on loopback.

The same small batch (the overview, a team, a failing team) is built with the local executor and
with the Dask one into two folders; outcomes, manifest entries, index rows, notebook outputs and
PDFs must agree. The driver screen's tables must be byte-for-byte the same.
"""

from __future__ import annotations

import json
import re
import socket
import warnings
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from conftest import tiny_tables
from test_loaders import write_csv_folder
from okr_analysis.reports import find_chromium
from okr_analysis.reports import NOTEBOOK, build_reports

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(300)

QUARTER = "2026Q3"
TEAMS = ["t1", "t2"]  # plus the organisation overview "co"; t2 fails
CHROMIUM = find_chromium()
FORMATS = "html,pdf" if CHROMIUM else "html"


# ----------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two single-threaded worker processes on 127.0.0.1 (no dashboard)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as c:
        assert c.scheduler_address.startswith("tcp://127.0.0.1:")
        yield c


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_csv_folder(tiny_tables(), tmp_path_factory.mktemp("data") / "org")


@pytest.fixture(scope="module")
def failing_notebook(tmp_path_factory) -> Path:
    """The real report notebook plus a cell that raises for team t2 (no environment needed on the workers)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = next(i for i, c in enumerate(nb.cells) if "open_report" in c.source)
    cell = nbformat.v4.new_code_cell("if team_id == 't2':\n    raise RuntimeError(f'injected failure for {team_id}')")
    cell["id"] = "inject-failure"
    nb.cells.insert(setup + 1, cell)
    path = tmp_path_factory.mktemp("notebook") / "failing_review.ipynb"
    nbformat.write(nb, path)
    return path


def _build(data_dir, out, nb, **kw):
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")
        # The skip key hashes the package's source: pin it so that edits to other modules in a shared
        # working tree between the two builds cannot change the keys being compared.
        mp.setattr("okr_analysis.reports.build._package_hash", lambda: "pinned-for-the-test")
        seen = []
        kw.setdefault("jobs", 2)
        result = build_reports(data_dir, quarter=QUARTER, teams=TEAMS, formats=FORMATS, out=out,
                               notebook=nb, progress=lambda o, done, total: seen.append((o.team_id, done, total)),
                               **kw)
    return result, seen


@pytest.fixture(scope="module")
def builds(cluster, data_dir, failing_notebook, tmp_path_factory):
    local, local_seen = _build(data_dir, tmp_path_factory.mktemp("local"), failing_notebook)
    dask, dask_seen = _build(data_dir, tmp_path_factory.mktemp("dask"), failing_notebook, executor="dask",
                             scheduler=cluster.scheduler_address)
    return {"local": local, "dask": dask, "local_seen": local_seen, "dask_seen": dask_seen}


# ----------------------------------------------------------------------------------
# Helpers: what must agree, without times and folder names
# ----------------------------------------------------------------------------------
_ENTRY_KEYS = ("team_id", "team_name", "kind", "department", "order", "file", "status", "state", "key", "summary",
               "html", "notebook", "pdf", "failed_html", "failed_notebook")


def _entries(result) -> dict[str, dict]:
    out = {}
    for e in result.manifest["teams"]:
        entry = {k: e.get(k) for k in _ENTRY_KEYS}
        entry["summary"] = {k: v for k, v in (entry["summary"] or {}).items() if k != "generated_at"}
        err = e.get("error")
        entry["error"] = None if err is None else {k: err.get(k) for k in ("stage", "ename", "evalue", "cell_index")}
        out[e["team_id"]] = entry
    return out


_VOLATILE = [
    re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?"),  # generated / rendered / attempted at
    re.compile(r"\b\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}\b"),  # "Generated 23 Nov 2026 14:36" in headers
    re.compile(r"\b\d+(\.\d+)?\s?s\b"),  # durations
]


def _normalise(text: str, folder: Path) -> str:
    text = text.replace(str(folder), "<folder>").replace(str(folder.parent), "<out>")
    for pattern in _VOLATILE:
        text = pattern.sub("<t>", text)
    return text


def _index_rows(result) -> list[str]:
    page = result.index_path.read_text(encoding="utf-8")
    rows = re.findall(r"<tr data-state=.*?</tr>", page, re.S)
    return [_normalise(r, result.folder) for r in rows]


def _outputs(path: Path, folder: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    shown = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue
        for o in cell.get("outputs", []):
            o = {k: v for k, v in o.items() if k not in ("execution_count", "metadata")}
            shown.append(_normalise(json.dumps(o, sort_keys=True), folder))
    return shown


# ----------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------
def test_dask_batch_has_the_same_outcomes(builds):
    local, dask = builds["local"], builds["dask"]
    assert [t.team_id for t in dask.teams] == [t.team_id for t in local.teams] == ["co", "t1", "t2"]
    assert [(t.status, t.state) for t in dask.teams] == [(t.status, t.state) for t in local.teams]
    assert local.ok is dask.ok is False and [f.team_id for f in dask.failures] == ["t2"]
    assert dask["t2"].error.ename == "RuntimeError" and dask["t2"].error.evalue == "injected failure for t2"
    assert dask["t2"].failed_notebook.exists() and dask["t2"].failed_html.exists() and dask["t2"].html is None


def test_dask_manifest_entries_and_index_match(builds):
    local, dask = builds["local"], builds["dask"]
    assert _entries(dask) == _entries(local)
    assert dask.manifest["counts"] == local.manifest["counts"]
    assert dask.manifest["parameters"]["executor"] == "dask" and local.manifest["parameters"]["executor"] == "local"
    assert dask.manifest["input_hash"] == local.manifest["input_hash"]
    assert _index_rows(dask) == _index_rows(local) and len(_index_rows(dask)) == 3


def test_dask_progress_is_reported_per_team(builds):
    assert sorted(t for t, _, _ in builds["dask_seen"]) == sorted(t for t, _, _ in builds["local_seen"])
    assert [(d, n) for _, d, n in builds["dask_seen"]] == [(1, 3), (2, 3), (3, 3)]


def test_dask_notebooks_show_the_same_outputs(builds):
    local, dask = builds["local"], builds["dask"]
    for tid in ("co", "t1"):
        a = _outputs(local[tid].notebook, local.folder)
        b = _outputs(dask[tid].notebook, dask.folder)
        assert a and a == b, tid
    assert _outputs(dask["t2"].failed_notebook, dask.folder) == _outputs(local["t2"].failed_notebook, local.folder)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_dask_prints_the_pdfs(builds):
    for tid in ("co", "t1"):
        pdf = builds["dask"][tid].pdf
        assert pdf is not None and pdf.read_bytes().startswith(b"%PDF")


def test_dask_rerun_skips_what_is_up_to_date(builds, cluster, data_dir, failing_notebook):
    again, _ = _build(data_dir, builds["dask"].folder.parent, failing_notebook, executor="dask",
                      scheduler=cluster.scheduler_address)
    assert {t.team_id: t.status for t in again.teams} == {"co": "skipped", "t1": "skipped", "t2": "failed"}


def test_dask_batch_of_large_data_warms_the_workers_after_the_shared_analyses(builds, cluster, data_dir,
                                                                             failing_notebook, tmp_path,
                                                                             monkeypatch):
    """Above ``_WARM_EARLY_MAX_ROWS`` KPI rows the shared analyses come first, then the workers warm up:
    the same outcomes, entries and index as the batch that overlapped them."""
    monkeypatch.setattr("okr_analysis.reports.build._WARM_EARLY_MAX_ROWS", 10)
    r, seen = _build(data_dir, tmp_path, failing_notebook, executor="dask", scheduler=cluster.scheduler_address)
    assert _entries(r) == _entries(builds["dask"])
    assert _index_rows(r) == _index_rows(builds["dask"])
    assert sorted(t for t, _, _ in seen) == ["co", "t1", "t2"]
    for tid in ("co", "t1"):
        assert _outputs(r[tid].notebook, r.folder) == _outputs(builds["dask"][tid].notebook, builds["dask"].folder)


def test_dask_stop_at_first_failure(cluster, data_dir, failing_notebook, tmp_path):
    from okr_analysis.reports import BuildError

    with pytest.raises(BuildError) as info:
        _build(data_dir, tmp_path, failing_notebook, executor="dask", scheduler=cluster.scheduler_address,
               continue_on_error=False, org_overview=False, jobs=1)
    r = info.value.result
    assert {t.team_id: t.status for t in r.teams} == {"t1": "rendered", "t2": "failed"}


# ----------------------------------------------------------------------------------
# Arguments and an unreachable scheduler
# ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(executor="spark"), "executor must be one of"),
    (dict(scheduler="tcp://127.0.0.1:8786"), "needs executor='dask'"),
    (dict(executor="dask", scheduler="127.0.0.1"), "tcp://"),
])
def test_bad_executor_arguments(tmp_path, data_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_reports(data_dir, quarter=QUARTER, out=tmp_path, **kwargs)


def test_unreachable_scheduler_is_a_clear_cli_error(tmp_path, data_dir, monkeypatch):
    from okr_analysis import parallel
    from okr_analysis.cli import cli

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1)
    addr = f"tcp://127.0.0.1:{_free_port()}"
    for args in (["report", str(data_dir), "-q", QUARTER, "--format", "html", "--out", str(tmp_path / "r")],
                 ["drivers", str(data_dir)]):
        res = CliRunner().invoke(cli, args + ["--executor", "dask", "--scheduler", addr])
        assert res.exit_code == 1, res.output
        assert f"could not connect to the Dask scheduler at {addr}" in res.output
        assert "Traceback" not in res.output


# ----------------------------------------------------------------------------------
# The driver screen
# ----------------------------------------------------------------------------------
def test_driver_screen_on_dask_is_byte_for_byte_the_same(sample_ds, cluster):
    from okr_analysis.leadlag import lead_lag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = lead_lag(sample_ds, by_team=True)
        dask = lead_lag(sample_ds, by_team=True, executor="dask", scheduler=cluster.scheduler_address)
    assert len(local.table) > 10
    assert dask.table.to_csv() == local.table.to_csv()
    for name in ("lags", "granger", "forecasts", "transforms"):
        assert getattr(dask, name).to_csv() == getattr(local, name).to_csv(), name
    assert dask.options == local.options


def test_drivers_cli_on_dask_writes_the_same_csv(sample_dir, cluster, tmp_path):
    from okr_analysis.cli import cli

    runner = CliRunner()
    a, b = tmp_path / "local.csv", tmp_path / "dask.csv"
    res = runner.invoke(cli, ["drivers", str(sample_dir), "--out", str(a)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["drivers", str(sample_dir), "--out", str(b), "--executor", "dask",
                              "--scheduler", cluster.scheduler_address])
    assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()


# ----------------------------------------------------------------------------------
# Ctrl-C
# ----------------------------------------------------------------------------------
def test_ctrl_c_stops_a_dask_batch_cleanly(data_dir, tmp_path):
    """SIGINT to the command's process group (a terminal's Ctrl-C) while a local Dask cluster renders."""
    import os
    import signal
    import subprocess
    import sys
    import time

    psutil = pytest.importorskip("psutil")
    folder = tmp_path / "r" / QUARTER
    cmd = [sys.executable, "-m", "okr_analysis.cli", "report", str(data_dir), "-q", QUARTER, "--format", "html",
           "--out", str(tmp_path / "r"), "--jobs", "2", "--executor", "dask"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not list(folder.glob(".*.tmp-*.ipynb")):
        time.sleep(0.05)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    time.sleep(1.0)  # mid-notebook
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("the batch did not stop within 60 s of Ctrl-C")
    err = proc.communicate()[1].decode(errors="replace")
    assert proc.returncode != 0 and "Traceback" not in err, err[-2000:]
    deadline = time.monotonic() + 20
    alive = family
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    for p in alive:
        psutil.Process(p).kill()
    assert not alive, f"processes of the interrupted batch still running: {alive}"
    manifest = json.loads((folder / "build.json").read_text())  # written atomically
    assert {t["status"] for t in manifest["teams"]} <= {"rendered", "cancelled"}
    assert all(p.read_text().rstrip().endswith("</html>") for p in folder.glob("*.html"))


def test_workers_that_cannot_see_the_folders_are_a_clear_error(tmp_path):
    from okr_analysis.reports.executors import _dask_check_paths, _dask_missing

    class FakeClient:  # client.run(f, paths) on two workers, one of them on another machine
        def run(self, func, paths):
            return {"tcp://10.0.0.6:4000": func([str(tmp_path / "not-mounted")]), "tcp://10.0.0.7:4000": func(paths)}

    assert _dask_missing([str(tmp_path)]) == []
    with pytest.raises(OSError, match="OKR_ANALYSIS_CACHE"):
        _dask_check_paths(FakeClient(), "tcp://10.0.0.5:8786", [str(tmp_path)])
