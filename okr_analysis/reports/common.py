"""Helpers the team and organisation sections share (suppression lookups, the methods note, the
summary the index lists).
"""

from __future__ import annotations

import html
import re
from typing import Any

import matplotlib.figure
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from ..formatting import date as _date
from ..hygiene import LINT_CODES
from ..leadlag import POOLED, verdict_sentence
from ..privacy import Hidden, gate, hidden_values, small_teams, suppressed_label
from ..rules import (
    EXPECTATION,
    PACE_AT_RISK,
    PACE_ON_TRACK,
    STATUS_ORDER,
    VERDICT_ORDER,
    band_rule,
)
from ..style import figure_alt_text as _style_alt_text
from .display import _ACRONYMS, _display_html, metric_name
from .render import EMPTY_SECTION_METADATA
from .shared import SHARED_ANALYSES

__all__ = ["methods", "record_summary"]



_ARROWS = {"improving": "▲ improving", "worsening": "▼ worsening", "stable": "► stable"}


_STATUS_ORDER = STATUS_ORDER



def empty_section_note(text: str) -> None:
    """Show a one-line note saying a section has nothing to show, marked so that a rendered report leaves
    the section out when its heading cell is tagged ``optional-section`` (JupyterLab still shows the note)."""
    display({"text/html": f'<p class="okr-note">{html.escape(text)}</p>', "text/plain": text}, raw=True,
            metadata={EMPTY_SECTION_METADATA: True})


def _small_team(ctx: Any) -> bool:
    """Whether the report's team has fewer people than the minimum group size."""
    return ctx.team_id in small_teams(ctx.ds, min_group_size=ctx.min_group_size)


#: Kinds of table whose suppression needs only the teams' sizes and the metric catalogue.
_SIZE_ONLY_KINDS = ("drivers",)  # the other kinds also hide the people metrics of complement teams


def _hidden(ctx: Any, *, teams: Any = None) -> Hidden:
    """What suppression hides in this report's batch: the shared ``kr_suppression`` and ``team_suppression``
    tables (computed over the whole organisation once), read for ``teams`` only (None: every team)."""
    if teams is None:
        krs, supp = ctx.table("kr_suppression"), ctx.table("team_suppression")
    else:
        wanted = sorted({str(t) for t in teams})
        if not wanted:
            return hidden_values(ctx.ds, min_group_size=ctx.min_group_size)  # no team: nothing to hide
        krs = ctx.team_table("kr_suppression", teams=wanted)
        supp = ctx.team_table("team_suppression", teams=wanted)
    return hidden_values(ctx.ds, min_group_size=ctx.min_group_size, hidden_krs=krs.loc[krs["hidden"], "kr_id"],
                         hidden_teams=supp.loc[supp["suppressed"], "team_id"])


def _gate(ctx: Any, table: pd.DataFrame, *, kind: str, blank: Any = ()) -> pd.DataFrame:
    """:func:`okr_analysis.privacy.gate` for a report section: ``table`` as the report may show it.

    What is hidden comes from the batch's shared suppression tables, read for the table's teams only.
    """
    if kind in _SIZE_ONLY_KINDS:
        hidden = hidden_values(ctx.ds, min_group_size=ctx.min_group_size)
    else:
        hidden = _hidden(ctx, teams=table["team_id"].dropna().unique() if "team_id" in table.columns else None)
    return gate(table, ctx.ds, kind=kind, hidden=hidden, blank=blank)


def _hidden_krs(ctx: Any, krs: pd.DataFrame) -> pd.Series:
    """Key results whose values describe people of a team below the minimum group size, or would let a
    reader work such values out from a roll-up (the gate's verdict on ``krs``, a table with ``kr_id``)."""
    if krs.empty:
        return pd.Series(False, index=krs.index)
    return pd.Series(_gate(ctx, krs, kind="kr_scores")["suppressed"].to_numpy(), index=krs.index)


def _hidden_reason(ctx: Any) -> str:
    if _small_team(ctx):
        return f"the team has fewer than {ctx.min_group_size} people"
    return "they would let a reader work out the figures of a smaller team in the same department"


#: What a hidden cell reads, by the reason it is hidden (the privacy gate's label says only the rule).
COMPLEMENT_WORDS = "hidden so that a smaller team's figures cannot be worked out"


def _small_words(min_group_size: int) -> str:
    return f"fewer than {min_group_size} people"


def _suppressed_words(ctx: Any) -> str:
    """What a hidden cell of this report's team reads: the reason that applies to the team."""
    return _small_words(ctx.min_group_size) if _small_team(ctx) else COMPLEMENT_WORDS


def _relabel(ctx: Any) -> dict[str, str]:
    """The renderer's ``replace`` mapping for this report's own team: the gate's label → the reason."""
    return {suppressed_label(ctx.min_group_size): _suppressed_words(ctx)}


def _team_reasons(ctx: Any, team_ids: Any) -> list[str]:
    """Per team, what its hidden cells read: "fewer than N people" for a small team, the complement wording
    for a team hidden so that a smaller one cannot be worked out (or a roll-up hiding one)."""
    small = small_teams(ctx.ds, min_group_size=ctx.min_group_size)
    return [_small_words(ctx.min_group_size) if t in small else COMPLEMENT_WORDS for t in team_ids]


#: Each hygiene finding in a few words (the rule itself is in :data:`okr_analysis.hygiene.LINT_CODES`).
FINDING_LABELS = {
    "TEAM_OBJECTIVE_COUNT": "Number of objectives",
    "OBJECTIVE_KR_COUNT": "Number of key results",
    "KR_UNMEASURABLE": "Key result cannot be measured",
    "KR_STALE": "No recent check-in",
    "OBJECTIVE_NOT_ALIGNED": "Objective not aligned",
    "OBJECTIVE_ONLY_MILESTONES": "Only milestones",
    "TEAM_TOO_MANY_KPIS": "Too many KPIs",
    "CONFIDENCE_DROP": "Confidence dropped",
}


def finding_label(code: Any) -> str:
    """A hygiene finding's code in words (``OBJECTIVE_NOT_ALIGNED`` → "Objective not aligned")."""
    if code in FINDING_LABELS:
        return FINDING_LABELS[code]
    return str(code).replace("_", " ").capitalize()


def finding_rule(code: Any) -> str:
    """The rule behind a finding, as :data:`okr_analysis.hygiene.LINT_CODES` states it."""
    return LINT_CODES.get(code, ("", ""))[1]


def plain_message(ctx: Any, row: Any) -> str:
    """A hygiene finding's message with ids replaced by the titles and names a reader knows (and dates as
    "31 Aug 2026")."""
    text = str(row["message"])
    text = re.sub(r" \((?:objective [^,()]+, )?team [^()]+\)", "", text)
    for team_id, team_name in zip(ctx.ds.teams["team_id"], ctx.ds.teams["team_name"]):
        text = text.replace(f"{team_id} ({team_name})", team_name)
    ids = set(ctx.ds.objectives["objective_id"]) | set(ctx.ds.key_results["kr_id"])
    found = sorted((i for i in ids if isinstance(i, str) and i in text), key=len, reverse=True)
    for raw in found:
        text = text.replace(f" ({raw})", "").replace(f"{raw} ", "").replace(raw, "")
    for metric in ctx.ds.metrics["metric"]:
        text = re.sub(rf"\b{re.escape(metric)}\b", metric_name(metric).lower() if "_" in metric else metric, text)
    text = re.sub(r"\b(\d{4}-\d{2}-\d{2})\b", lambda m: _date(m.group(1)), text)
    text = text.replace("set parent_objective_id to", "link it to")
    text = text.replace(suppressed_label(ctx.min_group_size), _suppressed_words(ctx))
    return " ".join(text.split())


def _forecasts(ctx: Any) -> pd.DataFrame | None:
    """This team's KR forecasts when the forecasting analysis is part of the shared set."""
    if "forecasts" not in SHARED_ANALYSES:
        return None
    return ctx.team_table("forecasts")


def _band_cell(band: Any) -> str:
    if not isinstance(band, str):
        return '<span class="okr-band okr-band-none">—</span>'
    return f'<span class="okr-band okr-band-{html.escape(band)}">{html.escape(band)}</span>'


_METHODS = [
    ("Scores", "Increase/decrease key results: progress = (current − baseline) / (target − baseline), score = "
               "progress clipped to [0, 1]. Maintain key results: the share of the quarter's check-ins that meet "
               "the line. Milestones: the latest check-in (1 = done). Objective score = weighted mean of its key "
               f"results; team score = mean of its objectives. Bands: {band_rule()}; committed "
               f"objectives need {EXPECTATION['committed']:.1f}, aspirational ones {EXPECTATION['aspirational']:.1f}."),
    ("Status", f"Pace = progress / elapsed share of the quarter: on track from {PACE_ON_TRACK:g} (or target "
               f"reached), at risk from {PACE_AT_RISK:g}, off track below. Maintain key results are on track while "
               "the latest check-in meets the line. An objective's status is its weakest key result's."),
    ("KPI trends", "Mann–Kendall test with the Yue–Wang correction for autocorrelation, Theil–Sen slope; "
                   "assessment uses whether higher is better."),
    ("Control charts", "Individuals (XmR) chart: centre and limits from a baseline window; signals by the "
                       "Western Electric rules."),
    ("Forecasts", "Where each key result will land: a model chosen by information criterion, simulated future "
                  "paths; the probability of reaching the target is the share of paths that reach it, "
                  "recalibrated on the key results of past quarters, and the intervals are widened or narrowed so "
                  "that past quarters' outcomes fell inside them as often as stated."),
    ("Drivers", "One test per pair of KPIs: does the leading KPI's past improve the forecast of the lagging one "
                "beyond its own past (a Granger test pooled over teams, after removing each team's annual cycle "
                "and company-wide movements, combining lags 1 to the frequency's maximum by Simes' rule; with two or more teams corrected for the "
                "small-sample bias of pooled own-lag fits by the half-panel jackknife), with "
                "Benjamini–Hochberg false-discovery control over the pairs; "
                "team rows only for pairs the pooled test selects. 'Leads' means significant in that direction "
                "and not the other way round; the reverse test, cross-correlations and out-of-sample skill "
                "(Clark–West) are evidence shown beside the verdict."),
    ("Privacy", "People metrics (engagement, turnover …) are not shown for groups smaller than the minimum group "
                "size; individual-level rows never reach a report."),
]


def methods(ctx: Any) -> None:
    """The methods note and data-quality warnings."""
    items = "".join(f"<p><strong>{html.escape(k)}.</strong> {html.escape(v)}</p>" for k, v in _METHODS)
    prov = ctx.provenance()
    facts = "; ".join(f"{k.lower() if k != 'okr-analysis version' else k}: {v}"
                      for k, v in zip(prov["item"], prov["value"]) if k != "Data warning")
    warns = prov.loc[prov["item"] == "Data warning", "value"].tolist()
    # one block: printed in two columns on the appendix's landscape pages, provenance included
    _display_html(f'<div class="okr-methods appendix">{items}'
                  f'<p class="okr-provenance"><strong>Data and method.</strong> {html.escape(facts)}.</p>'
                  + ("<ul class=\"okr-warnings\">" + "".join(f"<li>{html.escape(str(w))}</li>" for w in warns)
                     + "</ul>" if warns else "") + "</div>")


def record_summary(ctx: Any) -> None:
    """Hand the index page this report's headline numbers (score, band, status counts); not shown.

    Numbers that suppression hides in the report (a small team's key results on people metrics) are
    not handed on either, so the index cannot reveal them.
    """
    krs = ctx.team_table("kr_scores")
    hidden = _hidden_krs(ctx, krs)
    teams = _scored_teams(ctx, teams=[ctx.team_id])  # roll-ups that complementary suppression hides are None
    score = band = None
    if len(teams) and not hidden.any() and not bool(teams["suppressed"].iloc[0]):
        row = teams.iloc[0]
        col = "score" if bool(row["is_leaf"]) else "rollup_score"  # departments and the company: their subtree
        if pd.notna(row[col]):
            score, band = float(row[col]), str(row["band" if col == "score" else "rollup_band"])
    counts = krs.loc[~hidden, "status"].value_counts()
    status_counts = {s: int(counts.get(s, 0)) for s in ("on track", "at risk", "off track", "no data")}
    if hidden.any():
        status_counts["suppressed"] = int(hidden.sum())
    ctx.record_summary(score=score, band=band, status_counts=status_counts)


# ==================================================================================
# The organisation overview
# ==================================================================================
_TEAM_SHOWN = ("score", "band", "rollup_score", "rollup_band", "n_on_track", "n_at_risk", "n_off_track",
               "n_no_data", "n_unmeasurable")


def _scored_teams(ctx: Any, *, teams: list[str] | None = None, label: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every team's scores (or those of ``teams``: only their rows are read) with its department name,
    through the privacy gate: a score that would reveal a small team's people key results is empty
    (or reads the suppression label, for the columns in ``label``) with ``suppressed`` True.

    A suppressed leaf team's status counts are those of its visible key results (a suppressed parent's: none).
    """
    wanted = teams

    def rows(name: str) -> pd.DataFrame:
        return ctx.table(name) if wanted is None else ctx.team_table(name, teams=wanted)

    krs = rows("kr_scores")
    hidden_kr = _hidden_krs(ctx, krs)
    tree = ctx.ds.team_tree.set_index("team_id")
    names = tree["team_name"]
    teams = rows("team_scores").copy()
    teams["department"] = teams["team_id"].map(tree["department_id"]).map(names).fillna("(company)")
    teams = _gate(ctx, teams, kind="team_scores", blank=[c for c in _TEAM_SHOWN if c not in label])
    mask = teams["suppressed"]
    # status counts of a suppressed team: its visible key results only (none for a suppressed parent)
    visible = krs[~hidden_kr]
    counts = visible.groupby("team_id")["status"].value_counts().unstack(fill_value=0)
    for col, status in (("n_on_track", "on track"), ("n_at_risk", "at risk"), ("n_off_track", "off track"),
                        ("n_no_data", "no data")):
        own = teams["team_id"].map(counts[status] if status in counts else pd.Series(dtype=float)).fillna(0)
        teams[col] = teams[col].astype(float)
        teams.loc[mask & teams["is_leaf"], col] = own[mask & teams["is_leaf"]]
        teams.loc[mask & ~teams["is_leaf"], col] = np.nan
    # the gate puts its ``suppressed`` column last; the department name stays beside the team's columns
    return teams[[c for c in teams.columns if c != "suppressed"] + ["suppressed"]]


def figure_alt_text(fig: matplotlib.figure.Figure) -> str:
    """The chart's alt text: the message its chart functions recorded (:func:`okr_analysis.style.figure_alt_text`:
    the figure's own, else its title and each panel's message or title), "Chart" when there is none."""
    return _style_alt_text(fig)


def _show_figure(fig: matplotlib.figure.Figure, *, alt: str | None = None) -> None:
    """Display a chart with its alt text (``alt``: what the reader should understand from it; default: its
    titles, see :func:`figure_alt_text`), then close it."""
    fig.tight_layout()
    display(fig, metadata={"image/png": {"alt": alt or figure_alt_text(fig)}})
    plt.close(fig)


#: Driver verdicts a report states in words (the others are listed in the table or named in a note).
_STATED_VERDICTS = ("leads", "feedback", "reverse", "contemporaneous")


def driver_sentences(rows: pd.DataFrame) -> list[str]:
    """The plain-language sentence (:func:`okr_analysis.leadlag.verdict_sentence`) of each pooled driver row
    with evidence, strongest verdict first."""
    if rows.empty:
        return []
    pooled = rows[(rows["team_id"] == POOLED) & rows["verdict"].isin(_STATED_VERDICTS)]
    pooled = pooled.assign(_o=pooled["verdict"].map(VERDICT_ORDER)).sort_values(["_o", "lagging", "leading"])
    metrics = set(pooled["leading"]) | set(pooled["lagging"])
    names = {m: " ".join(_ACRONYMS.get(w, w) for w in str(m).split("_")) for m in metrics}  # csat → CSAT
    return [verdict_sentence(r, metric_names=names) for _, r in pooled.iterrows()]
