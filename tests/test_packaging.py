"""environment.yml and pyproject.toml stay in step; the set-up files exist and do what README says."""

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {"python-duckdb": "duckdb", "python-build": "build"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~ \[;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _conda_names() -> tuple[set[str], list]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    names = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in deps if isinstance(d, str)}
    return names - {"python", "pip"}, deps


def test_every_runtime_dependency_is_in_both_files():
    runtime = {_name(d) for d in _pyproject()["dependencies"]}
    conda, _ = _conda_names()
    assert runtime - conda == set(), "in pyproject.toml but not environment.yml"
    extras = {_name(d) for deps in _pyproject()["optional-dependencies"].values() for d in deps}
    assert conda - runtime - extras == set(), "in environment.yml but not pyproject.toml"


def test_environment_yml_is_conda_forge_python_311_ending_in_editable_pip_install():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    assert env["dependencies"][-1] == {"pip": ["-e ."]}
    for pkg in ("jupyterlab", "pandas", "statsmodels", "seaborn", "papermill", "nbconvert", "pytest"):
        assert pkg in _conda_names()[0]


def test_console_script_and_ci():
    assert _pyproject()["scripts"]["okr-analysis"] == "okr_analysis.cli:main"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_environment_renders_the_sample(tmp_path):
    """The wheel carries the notebooks and the template: installed into a new virtual environment (no
    repository beside it), `okr-analysis report` renders the sample organisation's reports."""
    wheels = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
                   check=True, cwd=tmp_path)
    wheel = next(wheels.glob("okr_analysis-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for nb in ("team_quarterly_review.ipynb", "org_quarterly_overview.ipynb", "kpi_driver_exploration.ipynb"):
        assert f"okr_analysis/_notebooks/{nb}" in names
    assert "okr_analysis/_templates/okr_report/conf.json" in names
    assert "okr_analysis/reports/build.py" in names and "okr_analysis/io/loading.py" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True, env=env,
                   cwd=tmp_path)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import okr_analysis.config as c; "
                            "print(c.NOTEBOOK); print(c.TEMPLATE_DIR)"],
                           check=True, env=env, cwd=tmp_path, capture_output=True, text=True).stdout.split()
    assert all(str(venv) in p and "_notebooks" in where[0] for p in where), where
    cli = str(venv / "bin" / "okr-analysis")
    subprocess.run([cli, "sample", str(tmp_path / "data")], check=True, env=env, cwd=tmp_path)
    run = subprocess.run([cli, "report", str(tmp_path / "data"), "--quarter", "latest", "--team", "hr-partners",
                          "--out", str(tmp_path / "reports")], env=env, cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    folder = next((tmp_path / "reports").iterdir())
    built = json.loads((folder / "build.json").read_text())
    assert {t["team_id"]: t["state"] for t in built["teams"]} == {"acme": "ok", "hr-partners": "ok"}
    assert "_notebooks" in built["notebook"]["path"]
    html = (folder / "hr-partners.html").read_text()
    assert "Objective / key result" in html and "Traceback" not in html
    if built["pdf"]["available"]:
        assert (folder / "hr-partners.pdf").stat().st_size > 10_000
