"""environment.yml and pyproject.toml stay in step; the set-up files exist and do what README says."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}


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
