"""The shared analyses: org-wide tables a batch computes once and hands to every notebook.

Each is ``f(ds, *, quarter, as_of, min_group_size) -> DataFrame``; add one to
:data:`SHARED_ANALYSES` when a section needs figures about other teams than its own.
"""

from __future__ import annotations

import weakref
from typing import Callable, Mapping

import pandas as pd

from ..forecasting import fit_calibration, forecast_key_results
from ..hygiene import lint
from ..impact import ImpactResult, estimate_impact
from ..io.dataset import Dataset
from ..io.quarters import Quarter
from ..leadlag import lagged_correlations, lead_lag
from ..monitoring import benchmark, candidate_key_results, monitor
from ..privacy import score_suppression, suppress_lint
from ..scoring import score_key_results, score_objectives, score_teams

__all__ = ["SHARED_ANALYSES", "shared_analyses"]



# ==================================================================================
# Shared analyses
# ==================================================================================
def shared_analyses() -> Mapping[str, Callable[..., pd.DataFrame]]:
    """The org-wide analyses a batch computes once and hands to every notebook.

    ``name -> f(ds, *, quarter, as_of, min_group_size) -> DataFrame``; a table with a ``team_id``
    column can be sliced per team with :meth:`ReportContext.team_table`. The list is
    ``okr_analysis.review.SHARED_ANALYSES`` (the report sections own it: add an analysis there
    when a section needs it).
    """

    return SHARED_ANALYSES


# ==================================================================================
# Org-wide analyses, computed once per batch
# ==================================================================================
def _key_results(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return ds.key_results_in(quarter)


def _kr_scores(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return score_key_results(ds, quarter, as_of=as_of)


def _objective_scores(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return score_objectives(ds, quarter, as_of=as_of)


def _team_scores(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return score_teams(ds, quarter, as_of=as_of)


def _kr_suppression(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    """team_id, kr_id, hidden: whether each key result of the quarter is suppressed
    (:func:`okr_analysis.privacy.score_suppression`; computed over the whole organisation once)."""
    krs = _kr_scores(ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size)
    if krs.empty:
        return pd.DataFrame({"team_id": pd.Series(dtype="string"), "kr_id": pd.Series(dtype="string"),
                             "hidden": pd.Series(dtype=bool)})
    hidden, _ = score_suppression(ds, krs, min_group_size=min_group_size)
    return pd.DataFrame({"team_id": krs["team_id"], "kr_id": krs["kr_id"], "hidden": hidden.astype(bool)})


def _team_suppression(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    """team_id, suppressed: whether a team's scores would let a reader work out a small team's people key
    results (it has a hidden key result, or complementary suppression hides its roll-up)."""
    krs = _kr_scores(ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size)
    sensitive: set[str] = set()
    if not krs.empty:
        hidden, supp = score_suppression(ds, krs, min_group_size=min_group_size)
        sensitive = set(krs.loc[hidden, "team_id"]) | set(supp.loc[supp["suppressed"], "team_id"])
    ids = ds.teams["team_id"].reset_index(drop=True)
    return pd.DataFrame({"team_id": ids, "suppressed": ids.isin(sensitive).astype(bool)})


def _lint(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return suppress_lint(lint(ds, quarter, as_of=as_of), ds, kr_scores=_kr_scores(
        ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size), min_group_size=min_group_size)


def _kpi_as_of(ds: Dataset, as_of: pd.Timestamp) -> pd.Timestamp | None:
    dates = ds.kpis["date"].dropna()
    if dates.empty or dates.min() > as_of:
        return None
    return min(as_of, dates.max())


def _monitor(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    kpi_as_of = _kpi_as_of(ds, as_of)
    if kpi_as_of is None:
        return pd.DataFrame(columns=["team_id", "metric"])
    return monitor(ds, as_of=kpi_as_of)


def _benchmark(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    kpi_as_of = _kpi_as_of(ds, as_of)
    if kpi_as_of is None:
        return pd.DataFrame(columns=["team_id", "metric", "latest"])
    return benchmark(ds, as_of=kpi_as_of, min_group_size=min_group_size)


def _candidates(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    if _kpi_as_of(ds, as_of) is None:
        return pd.DataFrame(columns=["team_id", "metric", "reason"])
    return candidate_key_results(ds, quarter, as_of=as_of)


def _drivers(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    known = ds.known_on(as_of)
    if known.kpis.empty or not ((ds.metrics["kind"] == "leading").any() and (ds.metrics["kind"] == "lagging").any()):
        return pd.DataFrame(columns=["leading", "lagging", "team_id", "lag", "verdict"])
    return lead_lag(known, by_team=True).table


def _lagged_correlations(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    known = ds.known_on(as_of)
    if known.kpis.empty:
        return pd.DataFrame(columns=["metric_x", "metric_y", "lag", "correlation", "n", "p_value"])
    return lagged_correlations(known)


def _forecasts_table(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    table = forecast_key_results(ds, quarter, as_of=min(as_of, quarter.end))
    return table.drop(columns=[c for c in ("history",) if c in table.columns])


#: The columns of the ``forecast_intervals`` shared table.
FORECAST_INTERVAL_COLUMNS = ["at", "n", "interval_scale_80", "interval_scale_95"]


def _forecast_intervals(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    """The factors by which the forecasts' calibration rescales the 80% and 95% intervals
    (:func:`okr_analysis.forecasting.fit_calibration`), so that each key-result chart's forecast band is the
    one the forecasts table states: one row (``at``: elapsed share of the quarter; ``n``: key results fitted
    on; ``interval_scale_80``, ``interval_scale_95``), or none when the quarter is over (charts draw no band
    then) or there was too little history to rescale."""
    ts = min(pd.Timestamp(as_of), quarter.end)
    if ts >= quarter.end:
        return pd.DataFrame(columns=FORECAST_INTERVAL_COLUMNS)
    cal = fit_calibration(ds, quarter, as_of=ts)
    if cal.interval_scale is None:
        return pd.DataFrame(columns=FORECAST_INTERVAL_COLUMNS)
    return pd.DataFrame([{"at": float(cal.at), "n": int(cal.interval_n), "interval_scale_80": cal.interval_scale[0],
                          "interval_scale_95": cal.interval_scale[1]}], columns=FORECAST_INTERVAL_COLUMNS)


#: Dataset -> {(as_of, min_group_size): ImpactResult}: ``impact`` and ``impact_series`` are two tables of one
#: estimate; the second reads the first's (weak keys: nothing is kept once the batch drops the dataset).
_IMPACT_RESULTS: "weakref.WeakKeyDictionary[Dataset, dict[tuple, ImpactResult]]" = weakref.WeakKeyDictionary()


def _impact_result(ds: Dataset, *, as_of: pd.Timestamp, min_group_size: int) -> ImpactResult:
    """:func:`okr_analysis.impact.estimate_impact` of ``ds``, computed once per dataset, as-of day and group size."""
    by_args = _IMPACT_RESULTS.setdefault(ds, {})
    key = (pd.Timestamp(as_of), min_group_size)
    if key not in by_args:
        by_args[key] = estimate_impact(ds, as_of=as_of, min_group_size=min_group_size)
    return by_args[key]


def _impact(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return _impact_result(ds, as_of=as_of, min_group_size=min_group_size).table


def _impact_series(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return _impact_result(ds, as_of=as_of, min_group_size=min_group_size).series


#: name -> f(ds, *, quarter, as_of, min_group_size) -> DataFrame. Tables with a ``team_id``
#: column can be sliced per team with :meth:`ReportContext.team_table`.
SHARED_ANALYSES: dict[str, Callable[..., pd.DataFrame]] = {
    "key_results": _key_results,
    "kr_scores": _kr_scores,
    "kr_suppression": _kr_suppression,
    "team_suppression": _team_suppression,
    "objective_scores": _objective_scores,
    "team_scores": _team_scores,
    "lint": _lint,
    "monitor": _monitor,
    "benchmark": _benchmark,
    "candidates": _candidates,
    "drivers": _drivers,
    "lagged_correlations": _lagged_correlations,
    "forecasts": _forecasts_table,
    "forecast_intervals": _forecast_intervals,
    "impact": _impact,
    "impact_series": _impact_series,
}
