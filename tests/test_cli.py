"""The okr-analysis command: exit codes, messages (never a traceback), tables and CSV outputs."""

from __future__ import annotations

import os
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
