"""The notebooks: committed without outputs, one parameters cell with working defaults, thin cells;
the analyst's exploration notebook runs top to bottom with papermill (the report notebooks run in test_report)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import papermill as pm
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPORT_PARAMETERS = {"source", "team_id", "quarter", "as_of", "min_group_size", "shared"}


EXPLORATION = {"kpi_driver_exploration.ipynb", "initiative_impact.ipynb"}


def test_the_four_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} == {"team_quarterly_review.ipynb", "org_quarterly_overview.ipynb",
                                           "kpi_driver_exploration.ipynb", "initiative_impact.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_and_thin(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs before committing"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for cell in code:
        tree = ast.parse(cell.source)
        defined = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defined, f"notebook cells call the package; they define nothing: {cell.source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameter_defaults_point_at_the_sample_organisation(path):
    params = pm.inspect_notebook(str(path))
    assert params["source"]["default"].strip("'\"") == "../data/sample"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^DATA\s*:=\s*data/sample$", makefile, re.M), "make demo/lab write the sample there"
    if path.name not in EXPLORATION:
        assert set(params) == REPORT_PARAMETERS
        assert params["min_group_size"]["default"] == "5"


def test_exploration_notebook_runs_top_to_bottom(sample_dir, tmp_path):
    out = tmp_path / "explore.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "kpi_driver_exploration.ipynb"), str(out),
                        parameters={"source": str(sample_dir), "leading": "first_response_time",
                                    "lagging": "csat"},
                        cwd=str(ROOT / "notebooks"), progress_bar=False, kernel_name="python3")
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "leads" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 3


def test_initiative_notebook_runs_top_to_bottom(sample_dir, tmp_path):
    out = tmp_path / "impact.ipynb"
    pm.execute_notebook(str(ROOT / "notebooks" / "initiative_impact.ipynb"), str(out),
                        parameters={"source": str(sample_dir)}, cwd=str(ROOT / "notebooks"), progress_bar=False,
                        kernel_name="python3")
    nb = nbformat.read(out, as_version=4)
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Engagement rose by" in text and "no detectable effect" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert images >= 1
