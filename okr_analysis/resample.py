"""KPIs to weekly, monthly or fiscal-quarterly periods, with each metric's aggregation.

Periods are labelled by their first day (``period_start``): weeks start on Monday,
months on the 1st, quarters on the first day of the fiscal quarter.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from .dataset import Dataset
from .quarters import Quarter, _check_fiscal_year_start

__all__ = ["FREQS", "infer_freq", "period_start", "resample_kpis", "kpi_panel"]

FREQS = {"W": "weekly", "M": "monthly", "Q": "quarterly"}
_ALIASES = {"w": "W", "week": "W", "weekly": "W", "m": "M", "month": "M", "monthly": "M",
            "q": "Q", "quarter": "Q", "quarterly": "Q"}


def check_freq(freq: str) -> str:
    """Normalise a frequency name to ``'W'``, ``'M'`` or ``'Q'``."""
    if isinstance(freq, str):
        key = freq.strip()
        if key in FREQS:
            return key
        if key.lower() in _ALIASES:
            return _ALIASES[key.lower()]
    raise ValueError(f"freq must be one of 'W' (weekly), 'M' (monthly) or 'Q' (quarterly), got {freq!r}.")


def period_start(dates: pd.Series | pd.DatetimeIndex, freq: str, *, fiscal_year_start: int = 1) -> pd.Series:
    """The first day of the period containing each date.

    Parameters
    ----------
    dates : Series or DatetimeIndex
    freq : {'W', 'M', 'Q'}
    fiscal_year_start : int, default 1
        Quarters follow this fiscal calendar.
    """
    freq = check_freq(freq)
    _check_fiscal_year_start(fiscal_year_start)
    d = pd.Series(pd.to_datetime(dates)).dt.normalize()
    if freq == "W":
        out = d - pd.to_timedelta(d.dt.day_of_week, unit="D")
    elif freq == "M":
        out = d - pd.to_timedelta(d.dt.day - 1, unit="D")
    else:
        months_back = (d.dt.month - fiscal_year_start) % 3
        first_of_month = d - pd.to_timedelta(d.dt.day - 1, unit="D")
        out = _shift_months(first_of_month, months_back)
    return out.astype("datetime64[ns]")


def _shift_months(first_of_month: pd.Series, months_back: pd.Series) -> pd.Series:
    """first_of_month minus months_back months (vectorised through month arithmetic)."""
    y = first_of_month.dt.year.to_numpy(dtype="float64")
    m = first_of_month.dt.month.to_numpy(dtype="float64") - months_back.to_numpy(dtype="float64")
    y = y + np.floor((m - 1) / 12)
    m = (m - 1) % 12 + 1
    ok = ~np.isnan(y)
    out = np.full(len(y), np.datetime64("NaT"), dtype="datetime64[ns]")
    if ok.any():
        ym = (y[ok].astype("int64") - 1970) * 12 + (m[ok].astype("int64") - 1)
        out[ok] = ym.astype("datetime64[M]").astype("datetime64[ns]")
    return pd.Series(out, index=first_of_month.index)


def infer_freq(ds: Dataset) -> str:
    """The data's own KPI frequency: ``'W'``, ``'M'`` or ``'Q'`` from the median spacing of dates.

    Spacing under 20 days is weekly, under 60 days monthly, longer quarterly.
    """
    k = ds.kpis
    if len(k) < 2:
        return "W"
    k = k.sort_values(["team_id", "metric", "date"])
    same = (k["team_id"].to_numpy()[1:] == k["team_id"].to_numpy()[:-1]) & (
        k["metric"].to_numpy()[1:] == k["metric"].to_numpy()[:-1])
    gaps = np.diff(k["date"].to_numpy().astype("datetime64[D]").astype("int64"))[same]
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        return "W"
    step = float(np.median(gaps))
    return "W" if step < 20 else ("M" if step < 60 else "Q")


def resample_kpis(
    ds: Dataset,
    freq: str | None = None,
    *,
    teams: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    start: object = None,
    end: object = None,
) -> pd.DataFrame:
    """Aggregate KPI values to periods with each metric's ``aggregation`` (mean, sum or last).

    Parameters
    ----------
    ds : Dataset
    freq : {'W', 'M', 'Q'}, optional
        Target frequency; default: the data's own (:func:`infer_freq`). Quarters are fiscal.
    teams, metrics : iterable of str, optional
        Restrict to these teams / metrics.
    start, end : date-like, optional
        Keep observations dated within [start, end] before aggregating.

    Returns
    -------
    pandas.DataFrame
        One row per team, metric and period, sorted by them, with columns:

        - ``team_id`` (str)
        - ``metric`` (str)
        - ``period_start`` (datetime64): first day of the period
        - ``value`` (float): the aggregated value
        - ``n_obs`` (int): number of observations aggregated

        Periods with no observation are absent (not filled).
    """
    freq = infer_freq(ds) if freq is None else check_freq(freq)
    k = ds.kpis
    if teams is not None:
        k = k[k["team_id"].isin(set(teams))]
    if metrics is not None:
        k = k[k["metric"].isin(set(metrics))]
    if start is not None:
        k = k[k["date"] >= pd.Timestamp(start)]
    if end is not None:
        k = k[k["date"] <= pd.Timestamp(end)]
    k = k.dropna(subset=["value"])
    cols = ["team_id", "metric", "period_start", "value", "n_obs"]
    if k.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(cols, ["str", "str", "datetime64[ns]", "float64", "int64"])})
    k = k.assign(period_start=period_start(k["date"], freq, fiscal_year_start=ds.fiscal_year_start).to_numpy())
    agg = ds.metrics.set_index("metric")["aggregation"]
    parts = []
    for how, sub in k.groupby(k["metric"].map(agg).fillna("mean"), sort=False):
        keys = ["team_id", "metric", "period_start"]
        if how == "last":
            sub = sub.sort_values("date")
        g = sub.groupby(keys, sort=False)["value"]
        parts.append(pd.DataFrame({"value": getattr(g, how)(), "n_obs": g.size()}).reset_index())
    out = pd.concat(parts, ignore_index=True).sort_values(["team_id", "metric", "period_start"])
    out["n_obs"] = out["n_obs"].astype("int64")
    return out[cols].reset_index(drop=True)


def kpi_panel(ds: Dataset, freq: str | None = None, *, metrics: Iterable[str] | None = None,
              teams: Iterable[str] | None = None) -> pd.DataFrame:
    """Resampled KPIs as a wide panel: index (team_id, period_start), one column per metric.

    Every team gets the full, regular range of periods between its first and last observation;
    periods with no observation hold NaN.
    """
    freq = infer_freq(ds) if freq is None else check_freq(freq)
    long = resample_kpis(ds, freq, metrics=metrics, teams=teams)
    wide = long.pivot_table(index=["team_id", "period_start"], columns="metric", values="value", aggfunc="first")
    wide.columns.name = None
    if wide.empty:
        return wide
    offset = {"W": pd.DateOffset(weeks=1), "M": pd.DateOffset(months=1), "Q": pd.DateOffset(months=3)}[freq]
    pieces = []
    for team, sub in wide.groupby(level="team_id", sort=True):
        idx = sub.index.get_level_values("period_start")
        full = pd.date_range(idx.min(), idx.max(), freq=offset)
        pieces.append(sub.droplevel("team_id").reindex(full).rename_axis("period_start")
                      .assign(team_id=team).set_index("team_id", append=True).swaplevel())
    return pd.concat(pieces)
