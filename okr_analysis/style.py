"""One visual language for every chart: the palette, the legend's place and the chart's alt text.

The palette is Okabe & Ito's colour-blind-safe set ("Color Universal Design", 2008): the score bands
(:data:`okr_analysis.rules.BAND_COLOURS`: green ``#009E73``, yellow ``#E69F00``, red ``#D55E00``, no data
``#999999``), the team's own line (:data:`TEAM`, ``#0072B2``) and what it is compared with (:data:`PEERS`,
``#56B4E9``, or :data:`NEUTRAL` grey). The report's print CSS uses the same hex values.

Charts put their legend outside the data (:func:`legend_outside`: below the axes) and state their message as
alt text (:func:`set_alt_text`), which :func:`figure_alt_text` reads back for a whole figure: the report
sections hand it to the notebook output as the image's description.

This module imports matplotlib only inside functions that receive a matplotlib object, and from the package
only :mod:`okr_analysis.rules`, so analyses (monitoring, forecasting, impact), :mod:`okr_analysis.plots` and
the report sections may all import it.
"""

from __future__ import annotations

from typing import Any, Iterable

from .rules import BAND_COLOURS

__all__ = [
    "BAND_COLOURS",
    "TEAM",
    "PEERS",
    "NEUTRAL",
    "REFERENCE",
    "TEXT_MUTED",
    "FAN",
    "ALT_ATTR",
    "band_colour",
    "legend_outside",
    "set_alt_text",
    "alt_text",
    "figure_alt_text",
    "draw_milestone",
    "fit_title",
]

#: The team's own line, points and bar (Okabe–Ito blue).
TEAM = "#0072B2"
#: What the team is compared with: peers, comparison teams, a counterfactual (Okabe–Ito sky blue).
PEERS = "#56B4E9"
#: No data, the expected pace, a past history (Okabe–Ito grey; the ``none`` band's colour).
NEUTRAL = BAND_COLOURS["none"]
#: Reference lines: a centre line, a company median, the as-of date.
REFERENCE = "#555555"
#: Notes written on an empty chart.
TEXT_MUTED = "#666666"
#: The forecast fan (the team's blue, drawn translucent).
FAN = TEAM

#: The attribute of an axes (or figure) that holds the chart's alt text (:func:`set_alt_text`).
ALT_ATTR = "okr_alt"


def band_colour(band: Any) -> str:
    """The colour of a score band (``'red'``, ``'yellow'``, ``'green'``); the ``none`` colour for anything else."""
    return BAND_COLOURS.get(band if isinstance(band, str) else "none", BAND_COLOURS["none"])


def legend_outside(ax: Any, *, where: str = "right", ncol: int | None = None, fontsize: float = 7,
                   handles: Iterable[Any] | None = None, labels: Iterable[str] | None = None,
                   offset: float = 0.16) -> Any:
    """Put the axes' legend outside the data, without a frame: right of the axes (one column, top-aligned)
    or below the figure's tick labels.

    Parameters
    ----------
    ax : matplotlib Axes
    where : {'right', 'below'}, default 'right'
        ``'right'`` is safe with any tick labels; ``'below'`` puts the legend ``offset`` (a share of the
        axes' height) under the x axis, clear of one line of tick labels.
    ncol : int, optional
        Columns of the legend (default: 1 on the right, up to four below).
    fontsize : float, default 7
    handles, labels : optional
        As :meth:`matplotlib.axes.Axes.legend` takes them (default: the axes' labelled artists).
    offset : float, default 0.16
        How far below the axes the legend starts (``where='below'``).

    Returns
    -------
    matplotlib.legend.Legend or None
        None when nothing is labelled.
    """
    if where not in ("right", "below"):
        raise ValueError(f"where must be 'right' or 'below', got {where!r}.")
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    handles, labels = list(handles), list(labels)
    if not handles:
        return None
    if where == "right":
        return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncol=ncol or 1,
                         fontsize=fontsize, frameon=False, borderaxespad=0.0, handlelength=1.8)
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -offset), ncol=ncol or min(len(handles), 4),
                     fontsize=fontsize, frameon=False, borderaxespad=0.0, handlelength=1.8)


def fit_title(ax: Any, head: str, rest: str = "", *, fontsize: float = 10) -> str:
    """Set ``ax``'s title to ``head`` and ``rest`` in as many lines as the axes' width needs.

    One line when it fits, else ``head`` and ``rest`` on lines of their own, each wrapped at the width of
    the axes (about 12 characters an inch at 10 pt), so titles of side-by-side charts never run into each
    other. Returns the title as set.
    """
    import textwrap

    fig = ax.figure
    inches = ax.get_position().width * fig.get_figwidth()
    width = max(28, int(inches * 12.5 * 10 / fontsize))
    message = f"{head}: {rest}" if rest else head
    if len(message) <= width:
        text = message
    else:
        text = "\n".join(textwrap.fill(part, width) for part in (head, rest) if part)
    ax.set_title(text, fontsize=fontsize)
    return text


def set_alt_text(artist: Any, text: str) -> str:
    """Record the chart's message on an axes (or a figure) as its alt text and return it.

    Parameters
    ----------
    artist : matplotlib Axes or Figure
    text : str
        What the reader should understand from the chart, as a sentence
        ("Engagement 73.3 against a target of 75.7, off track; 4% likely to reach it by 31 Dec 2025.").
    """
    text = " ".join(str(text).split())
    if text and not text.endswith((".", "!", "?")):
        text += "."
    setattr(artist, ALT_ATTR, text)
    return text


def alt_text(artist: Any) -> str:
    """The alt text :func:`set_alt_text` recorded on ``artist`` ("" when none)."""
    return str(getattr(artist, ALT_ATTR, "") or "")


def figure_alt_text(fig: Any) -> str:
    """A figure's alt text: the figure's own (:func:`set_alt_text` on the figure) or, else, its title
    followed by each panel's alt text (or title, for a panel that has none). "Chart" when there is nothing.
    """
    own = alt_text(fig)
    if own:
        return own
    parts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        parts.append(alt_text(ax) or ax.get_title() or ax.get_title(loc="left"))
    text = " ".join(dict.fromkeys(_sentence(p) for p in parts if p and p.strip()))
    return text or "Chart"


def _sentence(text: str) -> str:
    text = " ".join(str(text).split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _day(date: Any) -> str:
    import pandas as pd

    return f"{pd.Timestamp(date):%d %b %Y}".lstrip("0")


def draw_milestone(ax: Any, dates: Any, values: Any, *, as_of: Any = None, title: str = "",
                   final: bool = False) -> str:
    """Draw a milestone key result as a progress bar (share done, 0–1) with the dates each step was reached.

    Parameters
    ----------
    ax : matplotlib Axes
    dates, values : sequences
        The check-ins (date, share done 0–1), in any order.
    as_of : date-like, optional
        The data's as-of date, for "not done as of …".
    title : str
        The key result's title.
    final : bool, default False
        The quarter is over: the message ends "— final: hit" (done) or "— final: missed".

    A figure holding only this axes is made short (at most 1.9 inches tall): a bar needs no more.

    Returns
    -------
    str
        The alt text (also recorded on ``ax``): "<title>: done on 12 Aug 2026." or "<title>: not done, 50% done
        as of …", with "— final: hit/missed" after the quarter.
    """
    import numpy as np
    import pandas as pd

    d = pd.DataFrame({"date": pd.to_datetime(pd.Series(list(dates), dtype=object)),
                      "value": pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")})
    d = d.dropna().sort_values("date", kind="stable")
    ax.barh([0], [1.0], height=0.5, color="#EEEEEE", edgecolor=NEUTRAL, linewidth=0.8, zorder=1)
    name = title or "Milestone"
    if d.empty:
        ax.text(0.5, 0, "no check-in yet", ha="center", va="center", color=TEXT_MUTED, fontsize=9, zorder=3)
        message = f"{name}: no check-in yet" + (" — final: missed" if final else "")
    else:
        share = float(np.clip(d["value"].iloc[-1], 0, 1))
        done = share >= 1.0
        ax.barh([0], [share], height=0.5, color=BAND_COLOURS["green"] if done else TEAM, zorder=2,
                label="done" if done else "share done")
        # each step up: its share and the date it was first reached
        steps = d[d["value"].diff().fillna(d["value"]) > 0]
        for i, r in enumerate(steps.itertuples(index=False)):
            x = float(np.clip(r.value, 0, 1))
            ax.plot([x, x], [-0.3, 0.3], color=REFERENCE, lw=0.8, zorder=3)
            ax.annotate(f"{x:.0%}\n{pd.Timestamp(r.date):%d %b}".lstrip("0"), (x, 0.3 if i % 2 == 0 else -0.3),
                        textcoords="offset points", xytext=(0, 3 if i % 2 == 0 else -3),
                        va="bottom" if i % 2 == 0 else "top", ha="center", fontsize=7, color=REFERENCE)
        if done:
            reached = steps["date"].iloc[-1] if len(steps) else d["date"].iloc[-1]
            message = f"{name}: done on {_day(reached)}" + (" — final: hit" if final else "")
        else:
            when = f" as of {_day(as_of)}" if as_of is not None else ""
            message = f"{name}: not done, {share:.0%} done{when}" + (" — final: missed" if final else "")
    ax.set_xlim(0, 1.0)
    ax.set_ylim(-1.4, 1.4)
    ax.set_yticks([])
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0%", "25%", "50%", "75%", "done"])
    ax.set_xlabel("share of the milestone done (steps: share reached and date)")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fit_title(ax, message)
    fig = ax.figure
    if len(fig.axes) == 1 and fig.get_size_inches()[1] > 1.9:
        fig.set_size_inches(fig.get_size_inches()[0], 1.9)
    return set_alt_text(ax, message)
