"""The documentation says what the code does: output columns, the data format, the README's promises.

Output columns have one source, the docstrings: the methods pages and the API reference render them
(``docs/hooks/columns.py``, with the parser used here). These tests fail when a docstring's column list, the
module's ``*_COLUMNS`` constant and the columns the function returns on the sample organisation are not the
same list in the same order, when a docs page names a table the parser cannot read, or when the data-format
page lists other columns than the loaders' schema.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import warnings
from pathlib import Path

import pytest

from okr_analysis import forecasting, hygiene, impact, leadlag, monitoring, resample, scoring

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

_spec = importlib.util.spec_from_file_location("okr_docs_columns", DOCS / "hooks" / "columns.py")
columns = sys.modules.setdefault("okr_docs_columns", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(columns)

Q, AS_OF = "2026Q3", "2026-08-15"


def _quiet(f):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f()


def _chart(ds):
    """The sample's planted CSAT drop of 2026Q3 (it signals), on the chart `monitor` uses."""
    return monitoring.control_chart(ds.kpi_series("support-tier2", "csat"), baseline=("2026-01-01", "2026-06-30"),
                                    autocorrelation="adjust")


# (docstring path, *_COLUMNS constant or None, the call on the sample organisation)
CASES = {
    "okr_analysis.scoring.score_key_results": (
        scoring.KR_COLUMNS, lambda ds: scoring.score_key_results(ds, Q, as_of=AS_OF)),
    "okr_analysis.scoring.score_objectives": (
        scoring.OBJECTIVE_COLUMNS, lambda ds: scoring.score_objectives(ds, Q, as_of=AS_OF)),
    "okr_analysis.scoring.score_teams": (
        scoring.TEAM_COLUMNS, lambda ds: scoring.score_teams(ds, Q, as_of=AS_OF)),
    "okr_analysis.hygiene.lint": (hygiene.LINT_COLUMNS, lambda ds: hygiene.lint(ds, Q, as_of=AS_OF)),
    "okr_analysis.monitoring.kpi_trends": (None, lambda ds: monitoring.kpi_trends(ds)),
    "okr_analysis.monitoring.benchmark": (None, lambda ds: monitoring.benchmark(ds)),
    "okr_analysis.monitoring.candidate_key_results": (None, lambda ds: monitoring.candidate_key_results(ds, Q)),
    "okr_analysis.monitoring.monitor": (None, lambda ds: monitoring.monitor(ds)),
    "okr_analysis.monitoring.ControlChartResult:points": (None, lambda ds: _chart(ds).points),
    "okr_analysis.monitoring.ControlChartResult:signals": (None, lambda ds: _chart(ds).signals),
    "okr_analysis.resample.resample_kpis": (None, lambda ds: resample.resample_kpis(ds, "M")),
    "okr_analysis.forecasting.forecast_key_results": (
        forecasting.KR_FORECAST_COLUMNS,
        lambda ds: forecasting.forecast_key_results(ds, Q, as_of=AS_OF, n_paths=200)),
    "okr_analysis.forecasting.forecast_kpis": (
        forecasting.KPI_FORECAST_COLUMNS,
        lambda ds: forecasting.forecast_kpis(ds, teams=["support-tier1"], metrics=["csat"], n_paths=200)),
    "okr_analysis.forecasting.BacktestResult:predictions": (
        forecasting.PREDICTION_COLUMNS,
        lambda ds: forecasting.backtest(ds, quarters=["2026Q2"], at=(0.5,), n_paths=200).predictions),
    "okr_analysis.leadlag.LeadLagResult:table": (
        leadlag.TABLE_COLUMNS, lambda ds: leadlag.lead_lag(ds, pairs=[("first_response_time", "csat")]).table),
    "okr_analysis.impact.initiative_impact": (impact.IMPACT_COLUMNS, lambda ds: impact.initiative_impact(ds)),
    "okr_analysis.impact.ImpactResult:series": (impact.SERIES_COLUMNS, lambda ds: impact.estimate_impact(ds).series),
}
# leadlag.py and forecasting.py are being edited elsewhere: a known disagreement is recorded here (strict, so the
# fix makes this test fail until the mark, and the note on the methods page, are removed).
KNOWN: dict[str, str] = {}


def _params():
    return [pytest.param(p, marks=pytest.mark.xfail(reason=KNOWN[p], strict=True)) if p in KNOWN else p
            for p in CASES]


@pytest.mark.parametrize("path", _params())
def test_docstring_columns_are_the_constant_and_the_output(path, sample_ds):
    """The docstring lists every column the function returns, in order; so does its *_COLUMNS constant."""
    constant, call = CASES[path]
    documented = columns.column_names(path)
    returned = list(_quiet(lambda: call(sample_ds)).columns)
    assert documented == returned, f"{path}: docstring {documented} != returned {returned}"
    if constant is not None:
        assert documented == list(constant), f"{path}: docstring {documented} != constant {list(constant)}"


def _markers() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for m in columns._MARKER.finditer(page.read_text(encoding="utf-8")):
            found.setdefault(m.group(1), []).append(str(page.relative_to(ROOT)))
    return found


def test_every_table_is_shown_on_a_docs_page_and_every_marker_resolves():
    markers = _markers()
    assert set(CASES) - set(markers) == set(), "tables not shown on any docs page with {{ columns PATH }}"
    for path in markers:
        assert columns.column_names(path), path
        assert columns.markdown_table(path).startswith("| column | type | meaning |")


def test_the_parser_reads_both_forms_exactly():
    """Both column-list forms of the package, with shared types, continuations, optional columns and prose."""
    doc = '''Summary.

    Returns
    -------
    pandas.DataFrame
        One row per thing, with columns:

        quarter : str
            Quarter label, e.g. ``'2026Q3'``.
        team_id, objective_id : str
        score : float
            Progress clipped to [0, 1];
            NaN when none.

        An empty frame when nothing is found.

    Raises
    ------
    ValueError
        Never.
    '''
    cols, before, after = columns.columns_of(columns.section_entry(doc))
    assert [c.names for c in cols] == [("quarter",), ("team_id", "objective_id"), ("score",)]
    assert [c.type for c in cols] == ["str", "str", "float"]
    assert cols[2].description == "Progress clipped to [0, 1]; NaN when none."
    assert before == "One row per thing, with columns:" and after == "An empty frame when nothing is found."

    doc = '''Result.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns in this order:

        - ``leading``, ``lagging`` (str): the pair; ``team_id`` (str): ``*`` pooled
        - ``lag`` (Int64): the lag; a positive lag (see
          ``corr``: x; y) means the leading metric moves first
        - ``quarter`` (str), ``at`` (float: fraction of the quarter), ``signals`` (str): e.g. ``'a (b; c)'``
        - with ``with_drivers=True`` also ``p_hit_drivers``, ``drivers``
    options : dict
    '''
    cols, _, _ = columns.columns_of(columns.section_entry(doc, "table"))
    assert [n for c in cols for n in c.names] == ["leading", "lagging", "team_id", "lag", "quarter", "at", "signals",
                                                 "p_hit_drivers", "drivers"]
    assert [c.conditional for c in cols] == [False] * 4 + [True]
    assert cols[2].description.startswith("the lag; a positive lag (see")
    with pytest.raises(ValueError, match="Attributes section has no entry"):
        columns.section_entry(doc, "lags")


# ------------------------------------------------------------------------------------------------
# The data format page
def _schema_tables():
    try:
        from okr_analysis.io.schemas import TABLES
    except ImportError:
        from okr_analysis.io import TABLES
    return TABLES


def _top_level_items(paragraph: str) -> list[str]:
    """The comma-separated items of a column list, up to its first full stop or colon (outside parentheses)."""
    items, depth, cur = [], 0, ""
    for i, ch in enumerate(paragraph):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and (ch == ":" or (ch == "." and paragraph[i + 1:i + 2] in ("", " ", "\n"))):
            break
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    return items + [cur]


def test_the_data_format_page_lists_every_column_of_the_schema():
    """Per table: the column list (required ones starred) and the example table's header are the schema's."""
    text = (DOCS / "guide" / "data-format.md").read_text(encoding="utf-8")
    tables = _schema_tables()
    for name, spec in tables.items():
        m = re.search(rf"^## `{name}`.*\n((?:.+\n)+)\n((?:\|.*\n)+)", text, re.M)
        assert m, f"no section for table {name!r}"
        listed = [re.match(r"\s*([a-z_]+)(\*?)", it).groups() for it in _top_level_items(m.group(1))]
        assert [c for c, _ in listed] == spec.column_names, name
        assert [bool(star) for _, star in listed] == [c.required for c in spec.columns], name
        header = [h.strip() for h in m.group(2).splitlines()[0].strip("|").split("|")]
        assert header == spec.column_names, name


# ------------------------------------------------------------------------------------------------
# README: a landing page
def test_readme_is_a_landing_page_whose_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert [ln.split("#")[0].strip() for ln in block.strip().splitlines()] == ["make demo", "make test"]
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [ln for ln in links if not re.match(r"[a-z]+:", ln)]
    assert local, "the README links into the docs"
    assert [ln for ln in local if not (ROOT / ln).exists()] == []
