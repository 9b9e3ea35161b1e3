"""Charts for the review reports and notebooks.

Every function follows seaborn's shape: ``f(data, *, ..., ax=None, **kwargs)`` draws on
the given axes (or the current ones), gives the chart a title, axis labels and units,
and returns the axes. Nothing here calls ``plt.show()`` or saves a file.

Charts owned by a result object live with it: ``ControlChartResult.plot``
(monitoring), ``KRForecast.plot`` (forecasting), ``LeadLagResult.plot_ccf`` (lead-lag).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap

from .rules import BAND_COLOURS, BAND_GREEN_FROM, BAND_RED_BELOW

__all__ = [
    "BAND_COLOURS",
    "plot_kr_progress",
    "plot_kr_scores",
    "plot_score_distribution",
    "plot_team_kr_heatmap",
    "plot_lagged_correlations",
    "plot_peer_comparison",
]

# BAND_COLOURS (the score bands' colours, colour-blind safe shades) and the band thresholds are rules the
# sections and docs quote too: defined once, in :mod:`okr_analysis.rules`.
_BAND_LINES = (BAND_RED_BELOW, BAND_GREEN_FROM)


def _axes(ax: Axes | None) -> Axes:
    return ax if ax is not None else plt.gca()


def _require(data: pd.DataFrame, columns: list[str], what: str) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame ({what}), got {type(data).__name__}.")
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"data lacks column(s) {', '.join(missing)}; pass the table returned by {what}.")


def _empty(ax: Axes, title: str, message: str) -> Axes:
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _shorten(text: Any, width: int = 48) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_kr_scores(data: pd.DataFrame, *, label: str = "title", ax: Axes | None = None,
                   title: str = "Key-result scores") -> Axes:
    """Horizontal bars of key-result scores coloured by band, with lines at the band thresholds
    (:data:`okr_analysis.rules.BAND_RED_BELOW`, :data:`~okr_analysis.rules.BAND_GREEN_FROM`).

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.score_key_results` (score, band and ``label`` columns).
    label : str, default ``'title'``
        Column used to name the bars.
    ax : matplotlib Axes, optional
    title : str

    Returns
    -------
    matplotlib.axes.Axes
    """
    _require(data, ["score", "band", label], "score_key_results")
    ax = _axes(ax)
    if data.empty:
        return _empty(ax, title, "no key results")
    d = data.reset_index(drop=True)
    y = np.arange(len(d))[::-1]
    scores = d["score"].astype(float)
    colours = [BAND_COLOURS.get(b if isinstance(b, str) else "none", BAND_COLOURS["none"]) for b in d["band"]]
    ax.barh(y, scores.fillna(0).clip(0, 1), color=colours, height=0.6)
    for yi, s in zip(y, scores):
        ax.text(min(s, 1) + 0.02 if pd.notna(s) else 0.02, yi, "no data" if pd.isna(s) else f"{s:.2f}",
                va="center", fontsize=8)
    for line in _BAND_LINES:
        ax.axvline(line, color="#555555", lw=0.8, ls="--")
    ax.set_yticks(y, [_shorten(t) for t in d[label]])
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("score (0 = no progress, 1 = target reached)")
    ax.set_title(title)
    return ax


def plot_score_distribution(data: pd.DataFrame, *, by: str = "department", ax: Axes | None = None,
                            title: str = "Team scores by department") -> Axes:
    """Team scores per group: a box per group with every team as a dot.

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.score_teams` with a ``score`` column and the ``by`` column
        (e.g. ``department`` names added by the caller).
    by : str, default ``'department'``
    """
    _require(data, ["score", by], "score_teams")
    ax = _axes(ax)
    d = data.dropna(subset=["score"])
    if d.empty:
        return _empty(ax, title, "no scored teams")
    order = sorted(d[by].astype(str).unique())
    d = d.assign(**{by: d[by].astype(str)})
    sns.boxplot(data=d, x="score", y=by, order=order, ax=ax, color="#dde6f0", fliersize=0, width=0.5)
    state = np.random.get_state()  # seaborn jitters with NumPy's global generator: same data, same picture
    np.random.seed(0)
    try:
        sns.stripplot(data=d, x="score", y=by, order=order, ax=ax, color="#1f3b5c", size=5, jitter=0.15)
    finally:
        np.random.set_state(state)
    for line in _BAND_LINES:
        ax.axvline(line, color="#555555", lw=0.8, ls="--")
    ax.set_xlim(-0.02, 1.05)
    ax.set_xlabel("team score (mean of objective scores, 0–1)")
    ax.set_ylabel(by.replace("_", " "))
    ax.set_title(title)
    return ax


def plot_team_kr_heatmap(data: pd.DataFrame, *, team_label: str = "team_id", ax: Axes | None = None,
                         title: str = "Key-result scores by team") -> Axes:
    """Team × key-result heat map: one row per team, its key results left to right, coloured by band.

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.score_key_results` (team_id, kr_id, score).
    """
    _require(data, ["team_id", "kr_id", "score", team_label], "score_key_results")
    ax = _axes(ax)
    if data.empty:
        return _empty(ax, title, "no key results")
    d = data.sort_values(["team_id", "objective_id" if "objective_id" in data else "kr_id", "kr_id"])
    d = d.assign(slot=d.groupby("team_id").cumcount() + 1)
    grid = d.pivot_table(index=team_label, columns="slot", values="score", aggfunc="first", dropna=False)
    cmap = ListedColormap([BAND_COLOURS["red"], BAND_COLOURS["yellow"], BAND_COLOURS["green"]]).with_extremes(
        bad=BAND_COLOURS["none"])
    norm = BoundaryNorm([0, BAND_RED_BELOW, BAND_GREEN_FROM, 1.0 + 1e-9], cmap.N)
    sns.heatmap(grid, ax=ax, cmap=cmap, norm=norm, annot=True, fmt=".1f", linewidths=0.5, linecolor="white",
                cbar_kws={"label": "score (band)"}, annot_kws={"fontsize": 7})
    ax.set_xlabel("key result (in objective order)")
    ax.set_ylabel("team")
    ax.set_title(title)
    return ax


def plot_lagged_correlations(data: pd.DataFrame, *, ax: Axes | None = None,
                             title: str = "Lagged correlations (leading metric first)") -> Axes:
    """Heat map of correlations by metric pair (rows) and lag (columns).

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.leadlag.lagged_correlations`: metric_x, metric_y, lag, correlation.
        A positive lag means ``metric_x`` moves first.
    """
    _require(data, ["metric_x", "metric_y", "lag", "correlation"], "lagged_correlations")
    ax = _axes(ax)
    if data.empty:
        return _empty(ax, title, "no metric pairs")
    d = data.assign(pair=data["metric_x"].astype(str) + " → " + data["metric_y"].astype(str))
    grid = d.pivot_table(index="pair", columns="lag", values="correlation", aggfunc="first")
    sns.heatmap(grid, ax=ax, cmap="RdBu_r", vmin=-1, vmax=1, center=0, linewidths=0.3,
                cbar_kws={"label": "correlation"})
    ax.set_xlabel("lag in periods (positive: the first metric leads)")
    ax.set_ylabel("")
    ax.set_title(title)
    return ax


def plot_peer_comparison(data: pd.DataFrame, *, team_id: str, metric: str, ax: Axes | None = None,
                         unit: str = "", title: str | None = None, max_bars: int = 15) -> Axes:
    """One metric's latest value for a team and each of its peers, with the company median.

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.benchmark` for the team's peer group (team_id, team_name, metric,
        latest, company_median; optional benchmark_value).
    team_id, metric : str
        The team to highlight and the metric to show.
    max_bars : int
        Up to this many teams get a named bar each; a larger peer group is drawn as its values in
        rank order (one dot per team, the team's own highlighted and its rank written), which stays
        readable with hundreds of peers.
    """
    _require(data, ["team_id", "metric", "latest"], "benchmark")
    ax = _axes(ax)
    title = title or f"{metric}: team against its peers"
    d = data[data["metric"] == metric].dropna(subset=["latest"])
    if d.empty:
        return _empty(ax, title, "no peer values")
    if len(d) > max_bars:
        d = d.sort_values("latest", kind="stable").reset_index(drop=True)
        own = d["team_id"] == team_id
        ax.scatter(d.index[~own] + 1, d.loc[~own, "latest"], s=8, color="#a7b8cc", label="peers", zorder=2)
        if own.any():
            rank = int(d.index[own][0]) + 1
            ax.scatter([rank], d.loc[own, "latest"], s=40, color="#1f3b5c", label="this team", zorder=3)
            ax.annotate(f"{rank} of {len(d)}", (rank, float(d.loc[own, "latest"].iloc[0])),
                        textcoords="offset points", xytext=(4, 6), fontsize=8, color="#1f3b5c")
        ax.set_xlabel(f"{len(d)} teams, lowest to highest")
        ax.set_xticks([])
    else:
        names = d["team_name"] if "team_name" in d else d["team_id"]
        colours = ["#1f3b5c" if t == team_id else "#a7b8cc" for t in d["team_id"]]
        ax.bar([_shorten(n, 18) for n in names], d["latest"], color=colours)
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=30, labelsize=8)
    if "company_median" in d and d["company_median"].notna().any():
        ax.axhline(d["company_median"].dropna().iloc[0], color="#555555", ls="--", lw=1, label="company median")
    if "benchmark_value" in d and d["benchmark_value"].notna().any():
        ax.axhline(d["benchmark_value"].dropna().iloc[0], color=BAND_COLOURS["green"], ls=":", lw=1.5,
                   label="external benchmark")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")
    ax.set_ylabel(f"{metric} ({unit})" if unit else metric)
    ax.set_title(title)
    return ax


def plot_kr_progress(checkins: pd.DataFrame, *, direction: str, baseline: float, target: float,
                     start: Any, end: Any, as_of: Any = None, unit: Any = "", title: str = "",
                     ax: Axes | None = None) -> Axes:
    """A key result's check-ins against its target and the straight-line expected pace.

    Parameters
    ----------
    checkins : DataFrame
        The key result's check-ins (date, value) inside the quarter.
    direction : str
        The key result's direction; milestones are drawn on a 0–1 scale.
    baseline, target : float
        The expected-pace line runs from the baseline at ``start`` to the target at ``end``
        (increase/decrease and milestones); maintain key results show the target as a line.
    start, end, as_of : date-like
        The quarter and the data's as-of date (marked).
    """
    _require(checkins, ["date", "value"], "the checkins table")
    ax = _axes(ax)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    d = checkins.sort_values("date")
    unit = unit if isinstance(unit, str) else ""
    if direction == "milestone":
        baseline = 0.0
    if direction in ("increase", "decrease", "milestone") and pd.notna(baseline):
        ax.plot([start, end], [baseline, target], color="#888888", ls="--", lw=1, label="expected pace")
    ax.axhline(target, color=BAND_COLOURS["green"], lw=1.2, label="target")
    if len(d):
        ax.plot(d["date"], d["value"], marker="o", ms=3.5, color="#1f3b5c", lw=1.5, label="check-ins")
    else:
        ax.text(0.5, 0.5, "no check-in yet", ha="center", va="center", transform=ax.transAxes, color="#666666")
    if as_of is not None and start <= pd.Timestamp(as_of) < end:
        ax.axvline(pd.Timestamp(as_of), color="#bbbbbb", lw=1, ls=":", label="as of")
    ax.set_xlim(start, end)
    ax.set_title(_shorten(title, 80) if title else "Key-result progress")
    ax.set_ylabel(f"value ({unit})" if unit else ("share done" if direction == "milestone" else "value"))
    ax.set_xlabel("date")
    ax.legend(fontsize=7, loc="best")
    return ax
