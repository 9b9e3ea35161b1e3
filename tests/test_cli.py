"""The okr-analysis command: exit codes, messages (never a traceback), tables and CSV outputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import tiny_tables
from okr_analysis.cli import cli
from test_loaders import write_csv_folder

BIN = Path(sys.executable).parent


def run(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


@pytest.fixture
def tiny_dir(tmp_path) -> Path:
    return write_csv_folder(tiny_tables(), tmp_path / "org")


def test_validate_prints_a_summary(tiny_dir):
    r = run("validate", tiny_dir)
    assert r.exit_code == 0, r.output
    assert "valid" in r.stdout
    assert "teams        6 (2 departments, 30 people in leaf teams)" in r.stdout
    assert "quarters     1 (2026Q3 – 2026Q3)" in r.stdout


def test_validate_lists_every_problem_and_exits_1(tiny_dir):
    kr = pd.read_csv(tiny_dir / "key_results.csv", dtype=str)
    kr.loc[0, "direction"] = "up"
    kr.loc[2, "target"] = "two"
    kr.to_csv(tiny_dir / "key_results.csv", index=False)
    r = run("validate", tiny_dir)
    assert r.exit_code == 1
    assert "key_results(key_results.csv):2: direction: 'up' is not allowed" in r.stderr
    assert "key_results(key_results.csv):4: target: 'two' is not a number" in r.stderr
    assert "Fix the 2 problems above" in r.stderr
    assert "Traceback" not in r.output


def test_warnings_are_shown_on_stderr(tiny_dir):
    teams = pd.read_csv(tiny_dir / "teams.csv", dtype=str)
    teams["employee_id"] = "e1"
    teams.to_csv(tiny_dir / "teams.csv", index=False)
    r = run("validate", tiny_dir)
    assert r.exit_code == 0
    assert "warning: teams(teams.csv): unknown column employee_id ignored" in r.stderr


def test_missing_source_is_a_message(tmp_path):
    r = run("validate", tmp_path / "nowhere")
    assert r.exit_code == 1
    assert "the source does not exist" in r.stderr and "Traceback" not in r.output


def test_usage_error_exits_2(tiny_dir):
    r = run("validate", tiny_dir, "--fiscal-year-start", "13")
    assert r.exit_code == 2


def test_console_script_runs_as_a_real_process(tiny_dir):
    exe = BIN / "okr-analysis"
    if not exe.exists():
        pytest.skip("the package is not installed in this environment (run `make test`)")
    proc = subprocess.run([str(exe), "validate", str(tiny_dir)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout
    bad = subprocess.run([str(exe), "validate", str(tiny_dir / "missing")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


# ---- argument checks: a clear message, exit 1, nothing written ------------------------------------------
def test_report_unknown_team_is_a_message(tiny_dir, tmp_path):
    r = run("report", tiny_dir, "-q", "2026Q3", "--team", "nope", "--out", tmp_path / "rep", "--format", "html")
    assert r.exit_code == 1 and "--team nope: no such team" in r.stderr
    assert not (tmp_path / "rep").exists()


def test_a_report_batch_has_arrow_allocate_through_glibc(tiny_dir, tmp_path, monkeypatch):
    """Arrow's mimalloc keeps the pages freed after the shared analyses, and transparent huge pages
    fill them back in: the batch process grew with every report (benchmarks/results/scale.md)."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    args = ("report", tiny_dir, "-q", "2026Q3", "--team", "nope", "--out", tmp_path / "rep", "--format", "html")
    try:
        pa.set_memory_pool(pa.mimalloc_memory_pool())  # Arrow's default (an earlier test may have changed it)
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "mimalloc")  # the user's choice wins
        assert run(*args).exit_code == 1 and pa.default_memory_pool().backend_name == "mimalloc"
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        assert run(*args).exit_code == 1 and pa.default_memory_pool().backend_name == "system"
    finally:
        pa.set_memory_pool(before)


@pytest.mark.parametrize("command", [["score"], ["lint"], ["report", "--format", "html"]])
def test_quarter_without_objectives_is_a_message(tiny_dir, tmp_path, command):
    r = run(command[0], tiny_dir, "-q", "2024Q1", *command[1:])
    assert r.exit_code == 1 and "no objectives in that quarter" in r.stderr and "2026Q3" in r.stderr


@pytest.fixture
def locked(tmp_path):
    """A folder its owner may read but not write (restored afterwards so pytest can clean up).

    Mode 0o500 stops a user; root (as in CI) writes past modes, so there the folder is also made immutable
    (``chattr +i``, which binds root too) where the file system and capabilities allow it."""
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o500)
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None and subprocess.run(
        ["chattr", "+i", str(path)], capture_output=True).returncode == 0
    try:
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(0o700)


def skip_if_writable(path):
    """The rest of a test needs an unwritable folder: skip where even ``locked`` could not make one (the cases
    before still ran)."""
    if os.access(path, os.W_OK):
        pytest.skip("cannot make an unwritable folder here (root, and chattr +i refused)")


@pytest.mark.parametrize("command", [["score", "-q", "2026Q3"], ["lint", "-q", "2026Q3"], ["monitor"],
                                     ["forecast", "-q", "2026Q3", "--as-of", "2026-08-01"], ["drivers"]])
def test_csv_out_in_a_missing_or_unwritable_folder_is_a_message(tiny_dir, tmp_path, locked, command):
    r = run(command[0], tiny_dir, *command[1:], "-o", tmp_path / "missing" / "x.csv")
    assert r.exit_code == 1 and "does not exist" in r.stderr
    r = run(command[0], tiny_dir, *command[1:], "-o", tmp_path / "x.txt")
    assert r.exit_code == 1 and "ending in .csv" in r.stderr
    skip_if_writable(locked)
    r = run(command[0], tiny_dir, *command[1:], "-o", locked / "x.csv")
    assert r.exit_code == 1 and "not writable" in r.stderr
    assert list(locked.iterdir()) == []


def test_report_out_that_is_a_file_or_unwritable_is_a_message(tiny_dir, tmp_path, locked):
    f = tmp_path / "file"
    f.write_text("x")
    r = run("report", tiny_dir, "-q", "2026Q3", "--out", f, "--format", "html")
    assert r.exit_code == 1 and "it is a file" in r.stderr
    r = run("report", tiny_dir, "-q", "2026Q3", "--out", f / "sub", "--format", "html")
    assert r.exit_code == 1 and "is a file" in r.stderr
    skip_if_writable(locked)
    r = run("report", tiny_dir, "-q", "2026Q3", "--out", locked / "new" / "deep", "--format", "html")
    assert r.exit_code == 1 and "not writable" in r.stderr


def test_score_prints_suppressed_cells(sample_dir):
    r = run("score", sample_dir, "-q", "2026Q3", "--level", "team")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.stdout.splitlines() if x.lstrip().startswith("hr-partners"))
    assert "suppressed" in line


def test_drivers_chickegg_with_yearly_dates_through_the_command(tmp_path, reference_dir):
    """R's ChickEgg (lmtest) as an organisation with one date a year: the command infers annual periods,
    eggs lead chickens and chickens do not lead eggs (Thurman & Fisher 1988; grangertest(order = 3):
    F 5.405, p 0.00297 and F 0.5916, p 0.624, tests/data/README.md), run as a real process."""
    exe = BIN / "okr-analysis"
    if not exe.exists():
        pytest.skip("the package is not installed in this environment (run `make test`)")
    ce = pd.read_csv(reference_dir / "ChickEgg.csv")
    t = tiny_tables()
    dates = pd.to_datetime(ce["year"].astype(str) + "-12-31")
    t["kpis"] = pd.concat([pd.DataFrame({"team_id": "t1", "metric": m, "date": dates, "value": ce[m]})
                           for m in ("egg", "chicken")], ignore_index=True)
    t["metrics"] = pd.concat([t["metrics"], pd.DataFrame({
        "metric": ["egg", "chicken"], "description": ["Eggs produced", "Chickens"], "unit": ["", ""],
        "higher_is_better": [True, True], "kind": ["leading", "lagging"], "aggregation": ["last", "last"],
        "people_metric": [False, False]})], ignore_index=True)
    folder = write_csv_folder(t, tmp_path / "chickegg")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = tmp_path / "drivers.csv"
    proc = subprocess.run([str(exe), "drivers", str(folder), "-o", str(out)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    row = pd.read_csv(out).iloc[0]
    assert (row["leading"], row["lagging"], row["freq"], row["verdict"]) == ("egg", "chicken", "A", "leads")
    assert row["q_value"] < 0.05 and row["reverse_q"] > 0.5
    assert row["sentence"].startswith("Egg moves first; chicken follows about")
    # both directions in one run (a family of two primary tests), and --freq A given explicitly
    proc = subprocess.run([str(exe), "drivers", str(folder), "--freq", "A", "--pair", "egg:chicken",
                           "--pair", "chicken:egg", "-o", str(out)], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    v = pd.read_csv(out).set_index(["leading", "lagging"])["verdict"]
    assert v[("egg", "chicken")] == "leads" and v[("chicken", "egg")] == "reverse"
    # the printed table reads the verdict too
    proc = subprocess.run([str(exe), "drivers", str(folder)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and "leads" in proc.stdout


def test_drivers_default_jobs_are_the_idle_cores(monkeypatch):
    """``drivers --jobs`` defaults to the cores that the tasks running right now leave idle (a worker on a
    busy core made the 1,000-team run slower), at least 1: the median of a few readings, this process not
    counted; without /proc/loadavg, the cores the 1-minute load average leaves idle."""
    from okr_analysis import cli as C

    reading = C._runnable_now()
    assert reading is None or reading >= 1  # the real reading: at least this process
    monkeypatch.setattr(C.os, "cpu_count", lambda: 2)
    for readings, jobs in (([1, 1, 1, 1, 1], 2), ([1, 3, 1, 1, 2], 2), ([2, 2, 1, 2, 3], 1), ([5, 4, 6, 5, 5], 1)):
        it = iter(readings)
        monkeypatch.setattr(C, "_runnable_now", lambda: next(it))
        assert C.idle_cores(interval=0) == jobs
    # the load average trails the machine by a minute: it is not asked when the tasks can be read
    monkeypatch.setattr(C.os, "getloadavg", lambda: (3.8, 3.8, 3.8))
    monkeypatch.setattr(C, "_runnable_now", lambda: 1)
    assert C.idle_cores(interval=0) == 2
    monkeypatch.setattr(C, "_runnable_now", lambda: None)
    for load, jobs in ((0.2, 2), (1.3, 1), (3.8, 1)):
        monkeypatch.setattr(C.os, "getloadavg", lambda load=load: (load, load, load))
        assert C.idle_cores(interval=0) == jobs


def test_drivers_jobs_with_dask_is_a_usage_error(tmp_path):
    from okr_analysis.cli import cli

    res = CliRunner().invoke(cli, ["drivers", str(tmp_path), "--jobs", "2", "--executor", "dask"])
    assert res.exit_code == 2 and "--jobs" in res.output


def test_drivers_starts_workers_before_the_load_only_for_a_large_kpi_file(tmp_path):
    """``drivers`` starts its worker before the load (its imports overlap it) only when the KPI file is large
    enough for the run to use it: a worker still importing when a small run ends makes closing wait."""
    from okr_analysis import cli as C

    (tmp_path / "kpis.csv").write_bytes(b"x" * 1000)
    (tmp_path / "kpis.parquet.bak").write_bytes(b"x" * 10)  # every kpis.* file counts
    (tmp_path / "teams.csv").write_bytes(b"x" * 5000)
    assert C._kpi_file_bytes(str(tmp_path)) == 1010
    assert C._kpi_file_bytes(str(tmp_path / "teams.csv")) == 5000  # a database or workbook file: its size
    assert C._kpi_file_bytes("postgresql+psycopg://u:p@host/db") is None
    assert C._kpi_file_bytes(str(tmp_path / "missing")) is None
    assert 1010 < C.EARLY_WORKERS_MIN_BYTES <= 46_000_000  # the 1,000-team benchmark's 46 MB file is large
