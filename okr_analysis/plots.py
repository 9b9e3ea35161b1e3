"""Charts for the review reports and notebooks.

Every function follows seaborn's shape: ``f(data, *, ..., ax=None, **kwargs)`` draws on
the given axes (or the current ones), gives the chart a title, axis labels and units,
and returns the axes. Nothing here calls ``plt.show()`` or saves a file.

Charts owned by a result object live with it: ``ControlChartResult.plot``
(monitoring), ``KRForecast.plot`` (forecasting), ``ImpactResult.plot`` (impact),
``LeadLagResult.plot_ccf`` (lead-lag). :func:`plot_control_charts` and :func:`plot_peer_comparisons` draw
several of them as compact small multiples and return the figures.

One visual language (:mod:`okr_analysis.style`): the Okabe–Ito palette with the same band colours everywhere,
legends outside the data, titles that state the message in words, and each chart's message recorded as its
alt text (:func:`okr_analysis.style.alt_text`), which the report sections hand to the image.
"""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, ListedColormap
from matplotlib.patches import Patch

from .formatting import chart_value
from .rules import BAND_COLOURS, BAND_GREEN_FROM, BAND_RED_BELOW
from .style import (
    NEUTRAL,
    PEERS,
    REFERENCE,
    TEAM,
    TEXT_MUTED,
    alt_text,
    band_colour,
    draw_milestone,
    fit_title,
    legend_outside,
    set_alt_text,
)

__all__ = [
    "BAND_COLOURS",
    "plot_kr_progress",
    "plot_kr_scores",
    "plot_score_distribution",
    "plot_team_kr_heatmap",
    "plot_lagged_correlations",
    "plot_peer_comparison",
    "plot_control_charts",
    "plot_peer_comparisons",
]

# BAND_COLOURS (the score bands' Okabe–Ito colours) and the band thresholds are rules the sections, the print
# CSS and docs quote too: defined once, in :mod:`okr_analysis.rules`; the other colours (the team's line, its
# peers, grey for no data) and the legend's place are in :mod:`okr_analysis.style`. Every chart records its
# message as alt text (:func:`okr_analysis.style.set_alt_text`, read by the report sections).
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
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=TEXT_MUTED)
    ax.set_xticks([])
    ax.set_yticks([])
    set_alt_text(ax, f"{title}: {message}")
    return ax


def _shorten(text: Any, width: int = 48) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _axis_label(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def plot_kr_scores(data: pd.DataFrame, *, label: str = "title", ax: Axes | None = None,
                   title: str = "Key-result scores") -> Axes:
    """Horizontal bars of key-result scores coloured by band, with lines at the band thresholds
    (:data:`okr_analysis.rules.BAND_RED_BELOW`, :data:`~okr_analysis.rules.BAND_GREEN_FROM`).

    Each bar is labelled with its score and band in words (colour is never the only cue). The alt text
    (:func:`okr_analysis.style.alt_text`) counts the bands and names the lowest-scoring key result.

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
    colours = [band_colour(b) for b in d["band"]]
    ax.barh(y, scores.fillna(0).clip(0, 1), color=colours, height=0.6)
    for yi, s, b in zip(y, scores, d["band"]):
        text = "no data" if pd.isna(s) else (f"{s:.2f} {b}" if isinstance(b, str) else f"{s:.2f}")
        ax.text(min(s, 1) + 0.02 if pd.notna(s) else 0.02, yi, text, va="center", fontsize=8)
    for line in _BAND_LINES:
        ax.axvline(line, color=REFERENCE, lw=0.8, ls="--")
    ax.set_yticks(y, [_shorten(t) for t in d[label]])
    ax.set_xlim(0, 1.22)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xlabel("score (0 = no progress, 1 = target reached)")
    ax.set_title(title)
    counts = d["band"].value_counts()
    parts = [f"{int(counts[b])} {b}" for b in ("green", "yellow", "red") if b in counts]
    n_missing = int(scores.isna().sum())
    if n_missing:
        parts.append(f"{n_missing} without data")
    alt = f"{title}: {len(d)} key result{'s' if len(d) != 1 else ''}, " + ", ".join(parts)
    if scores.notna().any():
        low = int(scores.idxmin())
        alt += f"; lowest: {d.loc[low, label]} at {scores[low]:.2f}"
    set_alt_text(ax, alt)
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
    sns.boxplot(data=d, x="score", y=by, order=order, ax=ax, color="#E8E8E8", fliersize=0, width=0.5,
                linecolor=NEUTRAL)
    state = np.random.get_state()  # seaborn jitters with NumPy's global generator: same data, same picture
    np.random.seed(0)
    try:
        sns.stripplot(data=d, x="score", y=by, order=order, ax=ax, color=TEAM, size=5, jitter=0.15)
    finally:
        np.random.set_state(state)
    for line in _BAND_LINES:
        ax.axvline(line, color=REFERENCE, lw=0.8, ls="--")
    ax.set_xlim(-0.02, 1.05)
    ax.set_xlabel("team score (mean of objective scores, 0–1)")
    ax.set_ylabel(by.replace("_", " "))
    ax.set_title(title)
    med = d.groupby(by)["score"].median().sort_values()
    alt = (f"{title}: {len(d)} teams; median team score from {med.iloc[0]:.2f} in {med.index[0]}"
           + (f" to {med.iloc[-1]:.2f} in {med.index[-1]}" if len(med) > 1 else ""))
    set_alt_text(ax, alt)
    return ax


def plot_team_kr_heatmap(data: pd.DataFrame, *, team_label: str = "team_id", ax: Axes | None = None,
                         title: str = "Key-result scores by team", width: int = 26) -> Axes:
    """Team × key-result heat map coloured by band: one row per team and objective (labelled "team ·
    objective title", shortened), its key results left to right, each cell labelled with the key result's
    shortened title and its score.

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.score_key_results` (team_id, kr_id, score; objective_id,
        objective_title and title label the rows and cells when present; a True ``suppressed`` cell
        reads "hidden" instead of "no data").
    team_label : str, default ``'team_id'``
        Column naming the team.
    width : int, default 26
        Characters a key-result title keeps in its cell (objective titles keep twice as many).
    """
    _require(data, ["team_id", "kr_id", "score", team_label], "score_key_results")
    ax = _axes(ax)
    if data.empty:
        return _empty(ax, title, "no key results")
    has_obj = "objective_id" in data
    d = data.copy()
    if has_obj:  # a hidden key result's objective may be blank: it joins its team's other key results
        d["objective_id"] = d["objective_id"].astype(object).where(d["objective_id"].notna(), "")
    if "objective_title" in d:
        d["objective_title"] = d["objective_title"].astype(object).where(d["objective_title"].notna(), "")
    d = d.sort_values(["team_id", "objective_id" if has_obj else "kr_id", "kr_id"], kind="stable")
    group = ["team_id", "objective_id"] if has_obj else ["team_id"]
    d = d.assign(slot=d.groupby(group, dropna=False).cumcount(),
                 row=d.groupby(group, sort=False, dropna=False).ngroup())
    rows = d.drop_duplicates("row").set_index("row")
    if "objective_title" in d:
        names = [f"{_shorten(t, 24)} · {_shorten(o, 2 * width)}" if o else _shorten(t, 24) for t, o in
                 zip(rows[team_label], rows["objective_title"])]
    else:
        names = [_shorten(t, 24) for t in rows[team_label]]
    n_rows, n_cols = len(rows), int(d["slot"].max()) + 1
    grid = np.full((n_rows, n_cols), np.nan)
    grid[d["row"].to_numpy(), d["slot"].to_numpy()] = d["score"].astype(float).to_numpy()
    cmap = ListedColormap([BAND_COLOURS["red"], BAND_COLOURS["yellow"], BAND_COLOURS["green"]]).with_extremes(
        bad=BAND_COLOURS["none"])
    norm = BoundaryNorm([0, BAND_RED_BELOW, BAND_GREEN_FROM, 1.0 + 1e-9], cmap.N)
    filled = np.zeros_like(grid, dtype=bool)
    filled[d["row"].to_numpy(), d["slot"].to_numpy()] = True
    shown = np.where(filled, grid, np.nan)
    img = ax.pcolormesh(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, edgecolors="white", linewidth=1.5)
    # empty slots (an objective with fewer key results) are white, not "no data" grey
    ax.pcolormesh(np.ma.masked_where(filled, np.zeros_like(grid)), cmap=ListedColormap(["white"]),
                  edgecolors="white", linewidth=1.5)
    for r in d.itertuples(index=False):
        score = float(r.score) if pd.notna(r.score) else np.nan
        kr = getattr(r, "title", r.kr_id)
        kr = _shorten(kr if isinstance(kr, str) and kr else "(hidden)", width)
        hidden = bool(getattr(r, "suppressed", False)) if "suppressed" in d else False
        text = f"{kr}\n{'hidden' if hidden else 'no data' if np.isnan(score) else f'{score:.1f}'}"
        # black on every band colour: contrast 5:1 on vermillion, 6:1 on green, 10:1 on orange
        ax.text(r.slot + 0.5, r.row + 0.5, text, ha="center", va="center", fontsize=6, color="black")
    ax.set_xlim(0, n_cols)
    ax.set_ylim(n_rows, 0)
    ax.set_yticks(np.arange(n_rows) + 0.5, names, fontsize=7)
    ax.set_xticks(np.arange(n_cols) + 0.5, [f"key result {i + 1}" for i in range(n_cols)], fontsize=7)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    cbar = ax.figure.colorbar(img, ax=ax, ticks=[BAND_RED_BELOW / 2, (BAND_RED_BELOW + BAND_GREEN_FROM) / 2,
                                                 (BAND_GREEN_FROM + 1) / 2], fraction=0.03, pad=0.02)
    cbar.ax.set_yticklabels([f"red\n< {BAND_RED_BELOW:g}", "yellow", f"green\n≥ {BAND_GREEN_FROM:g}"], fontsize=7)
    ax.set_xlabel("")
    ax.set_ylabel("team · objective")
    ax.set_title(title)
    bands = d["band"].value_counts() if "band" in d else pd.Series(dtype=int)
    alt = (f"{title}: {len(d)} key results of {d['team_id'].nunique()} teams; "
           + ", ".join(f"{int(bands[b])} {b}" for b in ("green", "yellow", "red") if b in bands))
    reds = d[d["score"].astype(float) < BAND_RED_BELOW]
    if len(reds):
        teams = list(dict.fromkeys(reds[team_label].astype(str)))
        alt += f"; red key results in {', '.join(teams[:5])}" + (" and others" if len(teams) > 5 else "")
    set_alt_text(ax, alt)
    return ax


#: Diverging map of the correlation heat map: Okabe–Ito vermillion (negative) through white to blue (positive).
_CORRELATION_CMAP = LinearSegmentedColormap.from_list("okabe_ito_diverging", [BAND_COLOURS["red"], "#FFFFFF", TEAM])


def plot_lagged_correlations(data: pd.DataFrame, *, ax: Axes | None = None,
                             title: str = "Lagged correlations (leading metric first)",
                             labels: Mapping[str, str] | None = None) -> Axes:
    """Heat map of correlations by metric pair (rows) and lag (columns).

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.leadlag.lagged_correlations`: metric_x, metric_y, lag, correlation.
        A positive lag means ``metric_x`` moves first.
    labels : mapping, optional
        Names of the metrics to write instead of their ids (e.g. ``{"csat": "customer satisfaction"}``).
    """
    _require(data, ["metric_x", "metric_y", "lag", "correlation"], "lagged_correlations")
    ax = _axes(ax)
    if data.empty:
        return _empty(ax, title, "no metric pairs")
    names = dict(labels or {})
    d = data.assign(pair=data["metric_x"].map(lambda m: names.get(m, m)).astype(str) + " → "
                    + data["metric_y"].map(lambda m: names.get(m, m)).astype(str))
    grid = d.pivot_table(index="pair", columns="lag", values="correlation", aggfunc="first")
    sns.heatmap(grid, ax=ax, cmap=_CORRELATION_CMAP, vmin=-1, vmax=1, center=0, linewidths=0.3,
                cbar_kws={"label": "correlation"})
    ax.set_xlabel("lag in periods (positive: the first metric leads)")
    ax.set_ylabel("")
    ax.set_title(title)
    best = d.loc[d["correlation"].abs().idxmax()] if d["correlation"].notna().any() else None
    alt = f"{title}: {grid.shape[0]} metric pairs at lags {grid.columns.min()} to {grid.columns.max()}"
    if best is not None:
        alt += f"; strongest: {best['pair']} at lag {best['lag']}, correlation {best['correlation']:.2f}"
    set_alt_text(ax, alt)
    return ax


def plot_peer_comparison(data: pd.DataFrame, *, team_id: str, metric: str, ax: Axes | None = None,
                         unit: str = "", title: str | None = None, max_bars: int = 15, label: str | None = None,
                         legend: bool = True) -> Axes:
    """One metric's latest value for a team and each of its peers, with the company median.

    The team is drawn in :data:`okr_analysis.style.TEAM` blue, its peers in :data:`~okr_analysis.style.PEERS`;
    the legend sits right of the axes, outside the bars.

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.benchmark` for the team's peer group (team_id, team_name, metric,
        latest, company_median; optional benchmark_value).
    team_id, metric : str
        The team to highlight and the metric to show.
    unit : str
        The metric's unit, written on the value axis.
    max_bars : int
        Up to this many teams get a named bar each; a larger peer group is drawn as its values in
        rank order (one dot per team, the team's own highlighted and its rank written), which stays
        readable with hundreds of peers.
    label : str, optional
        The metric's name in words (e.g. its description); default: ``metric``.
    legend : bool, default True
        Draw the legend (False in small multiples that share one).
    """
    _require(data, ["team_id", "metric", "latest"], "benchmark")
    ax = _axes(ax)
    unit = unit if isinstance(unit, str) else ""
    name = label or metric
    title = title or f"{name}: the team against its peers"
    d = data[data["metric"] == metric].dropna(subset=["latest"])
    if d.empty:
        return _empty(ax, title, "no peer values")
    handles: list[Any] = []
    if len(d) > max_bars:
        d = d.sort_values("latest", kind="stable").reset_index(drop=True)
        own = d["team_id"] == team_id
        ax.scatter(d.index[~own] + 1, d.loc[~own, "latest"], s=8, color=PEERS, label="peers", zorder=2)
        if own.any():
            rank = int(d.index[own][0]) + 1
            ax.scatter([rank], d.loc[own, "latest"], s=40, color=TEAM, label="this team", zorder=3)
            ax.annotate(f"{rank} of {len(d)}", (rank, float(d.loc[own, "latest"].iloc[0])),
                        textcoords="offset points", xytext=(4, 6), fontsize=8, color=TEAM)
        ax.set_xlabel(f"{len(d)} teams, lowest to highest")
        ax.set_xticks([])
    else:
        names = d["team_name"] if "team_name" in d else d["team_id"]
        colours = [TEAM if t == team_id else PEERS for t in d["team_id"]]
        ax.bar([_shorten(n, 18) for n in names], d["latest"], color=colours)
        handles = [Patch(color=TEAM, label="this team"), Patch(color=PEERS, label="peers")]
        ax.set_xlabel("")
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
    median = d["company_median"].dropna().iloc[0] if "company_median" in d and d["company_median"].notna().any() \
        else np.nan
    if pd.notna(median):
        ax.axhline(median, color=REFERENCE, ls="--", lw=1, label="company median")
    if "benchmark_value" in d and d["benchmark_value"].notna().any():
        ax.axhline(d["benchmark_value"].dropna().iloc[0], color=NEUTRAL, ls=":", lw=1.5, label="external benchmark")
    if legend:
        h, lab = ax.get_legend_handles_labels()
        h = handles + [x for x, n in zip(h, lab) if n not in ("this team", "peers") or not handles]
        lab = [x.get_label() for x in handles] + [n for n in lab if n not in ("this team", "peers") or not handles]
        if h:
            ax.legend(h, lab, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                      borderaxespad=0.0)
    ax.set_ylabel(_axis_label(name, unit))
    ax.set_title(title)
    ranked = d.sort_values("latest", ascending=False, kind="stable").reset_index(drop=True)
    own = ranked.index[ranked["team_id"] == team_id]
    if len(own):
        value, k, n = float(ranked.loc[own[0], "latest"]), int(own[0]) + 1, len(ranked)
        place = ("the highest" if k == 1 else "the lowest" if k == n else f"number {k} from the highest") + f" of {n}"
        alt = f"{name}: the team's {chart_value(value, unit)} is {place} in its peer group"
    else:
        alt = f"{name}: {len(ranked)} peer teams, the team has no value"
    if pd.notna(median):
        alt += f"; company median {chart_value(median, unit)}"
    set_alt_text(ax, alt)
    return ax


def plot_kr_progress(checkins: pd.DataFrame, *, direction: str, baseline: float, target: float,
                     start: Any, end: Any, as_of: Any = None, unit: Any = "", title: str = "",
                     ax: Axes | None = None, label: str | None = None, outcome: str | None = None) -> Axes:
    """A key result's check-ins against its target and the straight-line expected pace; a milestone as a
    progress bar with the date each step was reached (:func:`okr_analysis.style.draw_milestone`).

    After the quarter (``as_of`` at or past ``end``) the title says "final: hit" or "final: missed".

    Parameters
    ----------
    checkins : DataFrame
        The key result's check-ins (date, value) inside the quarter.
    direction : str
        The key result's direction; a milestone (share done, 0–1) is drawn as a progress bar.
    baseline, target : float
        The expected-pace line runs from the baseline at ``start`` to the target at ``end``
        (increase/decrease); maintain key results show the target as a line.
    start, end, as_of : date-like
        The quarter and the data's as-of date (marked).
    unit : str
        The key result's unit (value axis and alt text).
    label : str, optional
        What the values measure, in words (e.g. the metric's description), for the value axis.
    outcome : {'hit', 'missed'}, optional
        The scored outcome of a closed quarter (default: the latest check-in against the target).
    """
    _require(checkins, ["date", "value"], "the checkins table")
    ax = _axes(ax)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    d = checkins.sort_values("date")
    unit = unit if isinstance(unit, str) else ""
    name = str(title) if title else "Key-result progress"
    if direction == "milestone":
        closed = as_of is not None and pd.Timestamp(as_of) >= end
        draw_milestone(ax, d["date"], d["value"], as_of=as_of, title=_shorten(name, 80), final=closed)
        return ax
    if direction in ("increase", "decrease") and pd.notna(baseline):
        ax.plot([start, end], [baseline, target], color=NEUTRAL, ls="--", lw=1, label="expected pace")
    ax.axhline(target, color=BAND_COLOURS["green"], lw=1.2, label="target")
    if len(d):
        ax.plot(d["date"], d["value"], marker="o", ms=3.5, color=TEAM, lw=1.5, label="check-ins")
    else:
        ax.text(0.5, 0.5, "no check-in yet", ha="center", va="center", transform=ax.transAxes, color=TEXT_MUTED)
    closed = as_of is not None and pd.Timestamp(as_of) >= end
    if as_of is not None and start <= pd.Timestamp(as_of) < end:
        ax.axvline(pd.Timestamp(as_of), color=NEUTRAL, lw=1, ls=":", label="as of")
    ax.set_xlim(start, end)
    current = float(d["value"].iloc[-1]) if len(d) else np.nan
    rest = (f"{chart_value(current, unit)} against a target of {chart_value(target, unit)}" if len(d)
            else "no check-in yet")
    if closed and len(d):
        hit = (outcome == "hit") if outcome in ("hit", "missed") else _reached(current, target, direction)
        if hit is not None:
            rest += f" — final: {'hit' if hit else 'missed'}"
    head = _shorten(name, 80)
    message = f"{head}: {rest}"
    fit_title(ax, head, rest)
    ax.set_ylabel(_axis_label(label or "value", unit))
    ax.set_xlabel("")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=5)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    legend_outside(ax)
    set_alt_text(ax, message)
    return ax


def _reached(current: float, target: float, direction: str) -> bool | None:
    """Whether the latest value meets the target, by the key result's direction (None: unknown)."""
    if pd.isna(current) or pd.isna(target):
        return None
    if direction in ("increase", "maintain_at_least"):
        return bool(current >= target)
    if direction in ("decrease", "maintain_at_most"):
        return bool(current <= target)
    return None


def _small_multiples(n: int, *, ncols: int, max_rows: int, panel_height: float,
                     width: float) -> list[tuple[Figure, list[Axes], Axes]]:
    """Figures of up to ``max_rows`` × ``ncols`` panels for ``n`` charts (a last figure of a single row joins the
    one before), each only as tall as its rows, with
    a thin row below the panels for their shared legend (an axes without axis, so a later
    ``tight_layout`` keeps it outside the panels)."""
    out = []
    per = ncols * max_rows
    legend_height = 0.35
    sizes = [min(per, n - first) for first in range(0, n, per)]
    if len(sizes) > 1 and sizes[-1] <= ncols:  # a last single row joins the figure before (no lone-row figure)
        last = sizes.pop()
        sizes[-1] += last
    for k in sizes:
        nrows = int(np.ceil(k / ncols))
        fig = plt.figure(figsize=(width, panel_height * nrows + legend_height + 0.45))
        grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[panel_height] * nrows + [legend_height])
        axes = [fig.add_subplot(grid[i // ncols, i % ncols]) for i in range(k)]
        key = fig.add_subplot(grid[nrows, :])
        key.axis("off")
        out.append((fig, axes, key))
    return out


def _shared_legend(key: Axes, axes: list[Axes], handles: list[Any] | None = None) -> None:
    """One legend for the panels, in the ``key`` row below them (every label drawn in any panel, once)."""
    seen: dict[str, Any] = {h.get_label(): h for h in (handles or [])}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    if seen:
        key.legend(list(seen.values()), list(seen), loc="center", ncol=min(len(seen), 6), fontsize=7,
                   frameon=False, borderaxespad=0.0)


def plot_control_charts(charts: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
                        units: Mapping[str, Any] | None = None, title: str | None = None, ncols: int = 3,
                        max_rows: int = 2, panel_height: float = 1.8, width: float = 10.0) -> list[Figure]:
    """KPI control charts as compact small multiples: short panels, up to ``max_rows`` rows a figure, one
    legend below the panels, so a long list of KPIs flows over pages instead of forcing one tall figure.

    Each panel is :meth:`okr_analysis.monitoring.ControlChartResult.plot` with a two-line title (the metric,
    then its latest value and signals); each figure's alt text (:func:`okr_analysis.style.alt_text`) says how
    many KPIs show signals and repeats each flagged panel's message.

    Parameters
    ----------
    charts : mapping of str to ControlChartResult
        The metric (id) → its control chart (:func:`okr_analysis.monitoring.control_chart`), in display order.
    labels, units : mapping, optional
        The metric's name in words and its unit, by metric id (default: the id in words, no unit).
    title : str, optional
        The figure's title (repeated, with "(continued)", on later figures).
    ncols, max_rows : int, default 3, 2
        Panels per row and rows per figure.
    panel_height, width : float
        Height of one row of panels and the figures' width, in inches.

    Returns
    -------
    list of matplotlib.figure.Figure
        One figure per ``ncols × max_rows`` charts (a last lone row joins the figure before); empty for
        no charts.
    """
    if ncols < 1 or max_rows < 1:
        raise ValueError(f"ncols and max_rows must be at least 1, got ncols={ncols}, max_rows={max_rows}.")
    labels, units = dict(labels or {}), dict(units or {})
    items = list(charts.items())
    figures = []
    done = 0
    for i, (fig, axes, key) in enumerate(_small_multiples(len(items), ncols=ncols, max_rows=max_rows,
                                                          panel_height=panel_height, width=width)):
        flagged = []
        for ax, (metric, result) in zip(axes, items[done:done + len(axes)]):
            name = labels.get(metric) or str(metric).replace("_", " ")
            unit = units.get(metric, "")
            unit = unit if isinstance(unit, str) else ""
            result.plot(ax=ax, label=name, unit=unit, legend=False)
            pts = result.points
            n_sig = int(pts["signal"].sum()) if len(pts) else 0
            latest = chart_value(float(pts["value"].iloc[-1]), unit) if len(pts) else "no values"
            status = "no signal" if not n_sig else (
                f"{n_sig} signal{'s' if n_sig != 1 else ''}, latest {pd.Timestamp(pts.loc[pts['signal'], 'date'].iloc[-1]):%d %b}")
            ax.set_title(f"{_shorten(name, 40)}\n{latest} · {status}", fontsize=8)
            ax.set_ylabel(unit, fontsize=7)
            ax.set_xlabel("")
            ax.tick_params(labelsize=6)
            if n_sig:
                flagged.append(alt_text(ax))
        done += len(axes)
        _shared_legend(key, axes)
        if title:
            fig.suptitle(title if i == 0 else f"{title} (continued)", fontsize=9)
        n = len(axes)
        summary = (f"{title + ': ' if title else ''}control charts of {n} KPI{'s' if n != 1 else ''}; "
                   + (f"{len(flagged)} with signals" if flagged else "none with a signal"))
        set_alt_text(fig, " ".join([summary + "."] + flagged))
        fig.tight_layout()
        figures.append(fig)
    return figures


def plot_peer_comparisons(data: pd.DataFrame, *, team_id: str, metrics: list[str],
                          labels: Mapping[str, str] | None = None, units: Mapping[str, Any] | None = None,
                          title: str | None = None, ncols: int = 3, max_rows: int = 2, panel_height: float = 2.3,
                          width: float = 10.0) -> list[Figure]:
    """The team against its peers for several metrics (:func:`plot_peer_comparison`), as compact small
    multiples with one legend below the panels.

    Parameters
    ----------
    data : DataFrame
        Rows of :func:`okr_analysis.benchmark` for the team and its peers.
    team_id : str
    metrics : list of str
        The metrics to draw, in order.
    labels, units, title, ncols, max_rows, panel_height, width
        As in :func:`plot_control_charts`.

    Returns
    -------
    list of matplotlib.figure.Figure
    """
    labels, units = dict(labels or {}), dict(units or {})
    figures = []
    done = 0
    for i, (fig, axes, key) in enumerate(_small_multiples(len(metrics), ncols=ncols, max_rows=max_rows,
                                                          panel_height=panel_height, width=width)):
        alts = []
        for ax, metric in zip(axes, metrics[done:done + len(axes)]):
            name = labels.get(metric) or str(metric).replace("_", " ")
            unit = units.get(metric, "")
            plot_peer_comparison(data[data["metric"] == metric], team_id=team_id, metric=metric, ax=ax,
                                 unit=unit if isinstance(unit, str) else "", label=name, legend=False,
                                 title=_shorten(name, 40))
            ax.title.set_fontsize(8)
            ax.tick_params(labelsize=6)
            ax.yaxis.label.set_fontsize(7)
            alts.append(alt_text(ax))
        done += len(axes)
        _shared_legend(key, axes, [Patch(color=TEAM, label="this team"), Patch(color=PEERS, label="peers")])
        if title:
            fig.suptitle(title if i == 0 else f"{title} (continued)", fontsize=9)
        set_alt_text(fig, " ".join(a for a in alts if a))
        fig.tight_layout()
        figures.append(fig)
    return figures
