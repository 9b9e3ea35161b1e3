"""KPIs to weekly, monthly, fiscal-quarterly or fiscal-yearly periods, with each metric's aggregation.

Periods are labelled by their first day (``period_start``): weeks start on Monday,
months on the 1st, quarters on the first day of the fiscal quarter, years on the first day of the
fiscal year.
"""

from __future__ import annotations

from typing import Iterable, NamedTuple

import numpy as np
import pandas as pd

from .io.coercion import _factorize
from .io.dataset import Dataset
from .io.quarters import _check_fiscal_year_start

__all__ = ["FREQS", "infer_freq", "period_start", "resample_kpis", "kpi_panel"]

FREQS = {"W": "weekly", "M": "monthly", "Q": "quarterly", "A": "annual"}
_ALIASES = {"w": "W", "week": "W", "weekly": "W", "m": "M", "month": "M", "monthly": "M",
            "q": "Q", "quarter": "Q", "quarterly": "Q", "a": "A", "y": "A", "year": "A", "yearly": "A",
            "annual": "A"}
#: Months in a period of each frequency (weeks: none).
_MONTHS = {"M": 1, "Q": 3, "A": 12}


def check_freq(freq: str) -> str:
    """Normalise a frequency name to ``'W'``, ``'M'``, ``'Q'`` or ``'A'`` (aliases: ``'weekly'``, ``'Y'``,
    ``'year'``, ...)."""
    if isinstance(freq, str):
        key = freq.strip()
        if key in FREQS:
            return key
        if key.lower() in _ALIASES:
            return _ALIASES[key.lower()]
    raise ValueError(f"freq must be one of 'W' (weekly), 'M' (monthly), 'Q' (quarterly) or 'A' (annual), "
                     f"got {freq!r}.")


def period_start(dates: pd.Series | pd.DatetimeIndex, freq: str, *, fiscal_year_start: int = 1) -> pd.Series:
    """The first day of the period containing each date.

    Parameters
    ----------
    dates : Series or DatetimeIndex
    freq : {'W', 'M', 'Q', 'A'}
    fiscal_year_start : int, default 1
        Quarters and years follow this fiscal calendar.
    """
    freq = check_freq(freq)
    _check_fiscal_year_start(fiscal_year_start)
    d = pd.Series(pd.to_datetime(dates)).dt.normalize()
    if freq == "W":
        out = d - pd.to_timedelta(d.dt.day_of_week, unit="D")
    elif freq == "M":
        out = d - pd.to_timedelta(d.dt.day - 1, unit="D")
    else:
        months_back = (d.dt.month - fiscal_year_start) % _MONTHS[freq]
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


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of ``values`` in sorted order of the distinct values, and those values.

    Sorting and grouping millions of rows by small integers instead of strings keeps the working
    memory a few bytes a row (a string sort or groupby costs ~200)."""
    codes, uniques = _factorize(values, sort=True)  # pd.factorize, once per run of equal ids
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _lexsort(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """``np.lexsort(keys)`` (the last key primary), without the sort when the rows are already in that
    order (a KPI file written team by team, metric by metric, date by date): then it is ``arange``, as
    the stable lexsort gives for sorted rows."""
    n = len(keys[0])
    tied = np.ones(max(n - 1, 0), dtype=bool)  # rows i and i+1 equal on the keys checked so far
    for key in reversed(keys):
        step = np.diff(key)
        if (step[tied] < 0).any():
            return np.lexsort(keys)
        tied &= step == 0
    return np.arange(n)


def infer_freq(ds: Dataset) -> str:
    """The data's own KPI frequency: ``'W'``, ``'M'``, ``'Q'`` or ``'A'`` from the median spacing of dates.

    The median gap between consecutive dates of one team and metric: under 20 days is weekly, under 60
    days monthly, under 200 days quarterly, longer annual (one date a year, e.g. a yearly survey).
    """
    k = ds.kpis
    k = k[k["date"].notna().to_numpy() & k["team_id"].notna().to_numpy() & k["metric"].notna().to_numpy()]
    if len(k) < 2:
        return "W"
    team, _ = _codes(k["team_id"])
    metric, _ = _codes(k["metric"])
    day = k["date"].to_numpy().astype("datetime64[D]").astype("int64")
    order = _lexsort((day, metric, team))
    team, metric, day = team[order], metric[order], day[order]
    same = (team[1:] == team[:-1]) & (metric[1:] == metric[:-1])
    gaps = np.diff(day)[same]
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        return "W"
    step = float(np.median(gaps))
    return "W" if step < 20 else ("M" if step < 60 else ("Q" if step < 200 else "A"))


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
    freq : {'W', 'M', 'Q', 'A'}, optional
        Target frequency; default: the data's own (:func:`infer_freq`). Quarters and years are fiscal.
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
    groups = _resample_coded(ds, freq, teams=teams, metrics=metrics, start=start, end=end)
    if groups is None:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(["team_id", "metric", "period_start", "value", "n_obs"],
                                 ["str", "str", "datetime64[ns]", "float64", "int64"])})
    return pd.DataFrame({
        "team_id": pd.array(groups.team_names[groups.team], dtype="str"),
        "metric": pd.array(groups.metric_names[groups.metric], dtype="str"),
        "period_start": groups.period.view("datetime64[ns]"),
        "value": groups.value,
        "n_obs": groups.n_obs,
    })


class _Groups(NamedTuple):
    """Resampled KPIs as arrays, one entry per (team, metric, period), sorted by them: integer codes of
    the team and metric (indexes into ``team_names`` / ``metric_names``), the period start (int64 ns),
    the aggregated value and the number of observations."""

    team: np.ndarray
    team_names: np.ndarray
    metric: np.ndarray
    metric_names: np.ndarray
    period: np.ndarray
    value: np.ndarray
    n_obs: np.ndarray


def _resample_coded(ds: Dataset, freq: str, *, teams: Iterable[str] | None, metrics: Iterable[str] | None,
                    start: object, end: object) -> _Groups | None:
    """:func:`resample_kpis` before the strings are spread back (None: no observation kept)."""
    k = ds.kpis
    # One mask, one copy of the rows kept (a copy per filter would cost the table's size each)
    keep = (k["value"].notna().to_numpy() & k["date"].notna().to_numpy() & k["team_id"].notna().to_numpy()
            & k["metric"].notna().to_numpy())
    if teams is not None:
        keep &= k["team_id"].isin(set(teams)).to_numpy(dtype=bool)
    if metrics is not None:
        keep &= k["metric"].isin(set(metrics)).to_numpy(dtype=bool)
    if start is not None:
        keep &= (k["date"] >= pd.Timestamp(start)).to_numpy(dtype=bool)
    if end is not None:
        keep &= (k["date"] <= pd.Timestamp(end)).to_numpy(dtype=bool)
    if not keep.any():
        return None
    k = k[keep]
    # Sort once by integer codes (team, metric, period, then date for 'last'); a group is a run of equal keys.
    team, team_names = _codes(k["team_id"])
    metric, metric_names = _codes(k["metric"])
    period = period_start(k["date"], freq, fiscal_year_start=ds.fiscal_year_start).to_numpy().view("int64")
    order = _lexsort((k["date"].to_numpy().view("int64"), period, metric, team))
    team, metric, period = team[order], metric[order], period[order]
    value = k["value"].to_numpy(dtype="float64")[order]
    new = np.ones(len(team), dtype=bool)
    new[1:] = (team[1:] != team[:-1]) | (metric[1:] != metric[:-1]) | (period[1:] != period[:-1])
    starts = np.flatnonzero(new)
    n_obs = np.diff(np.append(starts, len(team)))
    group = np.cumsum(new) - 1
    agg = ds.metrics.set_index("metric")["aggregation"]
    how = pd.Series(metric_names).map(agg).fillna("mean").to_numpy()[metric[starts]]
    out_value = np.empty(len(starts))
    for name in pd.unique(how):
        in_groups = how == name
        if name == "last":  # the latest-dated observation of the period
            out_value[in_groups] = value[(np.append(starts[1:], len(team)) - 1)[in_groups]]
            continue
        # a group of one observation is its own sum and mean, exactly (data already at the frequency, e.g.
        # weekly KPIs resampled weekly: 0.25 s of pandas' grouped mean for 1.25 million rows otherwise)
        single = in_groups & (n_obs == 1)
        out_value[single] = value[starts[single]] + 0.0  # + 0.0: -0.0 becomes 0.0, as pandas' sum gives
        in_groups &= ~single
        if not in_groups.any():
            continue
        rows = np.repeat(in_groups, n_obs)  # sum and mean: pandas' grouped ones, as before
        out_value[in_groups] = getattr(pd.Series(value[rows]).groupby(group[rows], sort=True), name)().to_numpy()
    return _Groups(team[starts], team_names, metric[starts], metric_names, period[starts], out_value,
                   n_obs.astype("int64"))


def kpi_panel(ds: Dataset, freq: str | None = None, *, metrics: Iterable[str] | None = None,
              teams: Iterable[str] | None = None) -> pd.DataFrame:
    """Resampled KPIs as a wide panel: index (team_id, period_start), one column per metric.

    Every team gets the full, regular range of periods between its first and last observation;
    periods with no observation hold NaN.
    """
    freq = infer_freq(ds) if freq is None else check_freq(freq)
    groups = _resample_coded(ds, freq, metrics=metrics, teams=teams, start=None, end=None)
    if groups is None:
        wide = resample_kpis(ds, freq, metrics=metrics, teams=teams).pivot_table(
            index=["team_id", "period_start"], columns="metric", values="value")
        wide.columns.name = None
        return wide
    # The groups are sorted by team, metric and period: each team is one block. Lay out every team's
    # regular range of periods one after another and drop each value into its (row, metric) cell.
    team, metric, team_names, metric_names = groups.team, groups.metric, groups.team_names, groups.metric_names
    stamp = groups.period.view("datetime64[ns]")
    if freq == "W":  # periods are Mondays: count days, step 7
        pos, step = stamp.view("int64") // 86_400_000_000_000, 7
    else:  # periods are first days of months: count months, step 1, 3 or 12
        pos, step = stamp.astype("datetime64[M]").astype("int64"), _MONTHS[freq]
    starts = np.flatnonzero(np.r_[True, team[1:] != team[:-1]])
    first, last = np.minimum.reduceat(pos, starts), np.maximum.reduceat(pos, starts)
    length = (last - first) // step + 1
    offset = np.r_[0, np.cumsum(length)[:-1]]
    block = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(team)]))
    values = np.full((int(length.sum()), len(metric_names)), np.nan)
    values[offset[block] + (pos - first[block]) // step, metric] = groups.value
    grid = np.repeat(first, length) + (np.arange(len(values)) - np.repeat(offset, length)) * step
    grid = ((grid * 86_400_000_000_000).view("datetime64[ns]") if freq == "W"
            else grid.astype("datetime64[M]").astype("datetime64[ns]"))
    index = pd.MultiIndex.from_arrays(
        [pd.array(np.repeat(team_names[team[starts]], length), dtype="str"), pd.DatetimeIndex(grid)],
        names=["team_id", "period_start"])
    return pd.DataFrame(values, index=index, columns=pd.Index(metric_names, dtype="str"))
