"""Displaying tables and figures in a report notebook: one table renderer, sentences, sparklines.

Every table of a report goes through :func:`table_html`: a pandas ``Styler`` with the one label table
(:data:`LABELS`: column name → the header a reader sees) and the number formats of
:mod:`okr_analysis.formatting` (whole numbers as whole numbers, shares as percentages, dates as
"31 Dec 2025"). Values and headers are escaped.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ..formatting import MISSING, date, number, p_value, share, whole

__all__ = ["LABELS", "label", "metric_name", "show_sentences", "show_table", "sparkline_svg", "table_html"]


_ACRONYMS = {"kr": "KR", "krs": "KRs", "kpi": "KPI", "kpis": "KPIs", "okr": "OKR", "okrs": "OKRs", "id": "ID",
             "nps": "NPS", "csat": "CSAT", "pdp": "PDP"}

#: The one label table: column name → the header every section shows.
LABELS: dict[str, str] = {
    # key results, objectives, teams
    "objective_title": "Objective", "objective_kind": "Kind", "objective_score": "Objective score",
    "objective_band": "Objective band", "objective_status": "Objective status", "met_expectation": "Expectation met",
    "kr_id": "Key result ID", "title": "Key result", "metric": "KPI", "direction": "Direction",
    "baseline": "Baseline", "target": "Target", "current": "Current", "unit": "Unit", "progress": "Progress",
    "score": "Score", "band": "Band", "status": "Status", "p_hit": "Chance of reaching the target",
    "final": "Quarter over", "suppressed": "Hidden",
    "team_name": "Team", "team": "Team", "department": "Department", "rollup_n_teams": "Teams",
    "rollup_n_objectives": "Objectives", "rollup_score": "Score", "rollup_band": "Band",
    "n_on_track": "On track", "n_at_risk": "At risk", "n_off_track": "Off track", "n_no_data": "No data",
    "n_unmeasurable": "Not measurable", "n_krs": "Key results", "n_objectives": "Objectives",
    "reasons": "Why", "worst": "Furthest behind",
    # KPIs
    "kpi": "KPI", "description": "What it measures", "latest": "Latest", "trend": "Trend",
    "assessment": "Assessment", "slope": "Change per period", "slope_low": "Change, low",
    "slope_high": "Change, high", "p_value": "p-value", "n_points": "Periods", "peer_rank": "Rank among peers",
    "n_peers": "Peers", "peer_percentile": "Peer percentile", "vs_benchmark": "Against the benchmark",
    "benchmark": "Benchmark", "n_signals": "Unusual points", "signals": "Control-chart signals",
    "window_start": "From", "window_end": "To", "peers": "Against peers",
    # drivers
    "leading": "Leading KPI", "lagging": "Lagging KPI", "scope": "Scope", "lag": "Lag (periods)",
    "correlation": "Correlation", "ci_low": "95% interval, low", "ci_high": "95% interval, high",
    "q_value": "q-value (false discoveries)", "oos_skill": "Forecast skill", "verdict": "Verdict",
    "reason": "Reason", "sentence": "In words", "teams_where_it_leads": "Teams where it leads",
    "teams_tested": "Teams tested", "granger_p": "Granger p", "effect": "Effect",
    # forecasts
    "forecast": "Forecast", "forecast_date": "Forecast date", "lower_80": "80% range, low",
    "upper_80": "80% range, high", "outcome": "Outcome", "method": "Method", "n_obs": "Observations",
    "calibration": "Calibration", "pace_status": "Status by pace",
    # hygiene and candidates
    "severity": "Severity", "code": "Finding", "message": "What to change", "suggested_baseline": "Baseline",
    "suggested_target": "Suggested target", "evidence": "Evidence",
    # initiatives
    "initiative": "Initiative", "start": "Started", "relative_effect": "Relative effect",
    "placebo_p": "Placebo p", "pretrend_p": "Pre-trend p", "n_controls": "Comparison teams",
    # provenance
    "item": "Item", "value": "Value",
}

#: Columns read as whole numbers, shares of 1 (as percentages), p-values and dates.
WHOLE = {"lag", "peer_rank", "n_peers", "n_points", "n_signals", "teams_where_it_leads", "teams_tested",
         "n_pre", "n_post", "n_controls", "n_obs", "horizon", "peer_percentile"}
SHARES = {"p_hit", "p_model", "progress", "relative_effect"}
P_VALUES = {"p_value", "q_value", "placebo_p", "pretrend_p", "granger_p", "ccf_p", "ccf_q", "effect_p", "cw_p",
            "reverse_p", "reverse_q", "lag0_q"}


def _words(name: str) -> str:
    words = [_ACRONYMS.get(w.lower(), w) for w in str(name).replace("_", " ").split(" ")]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else text


def _pretty_header(name: Any) -> Any:
    if not isinstance(name, str):
        return name
    return _words(name)


def label(column: Any) -> str:
    """The header a reader sees for ``column``: :data:`LABELS`, else its words (``n_teams`` → "N teams")."""
    if isinstance(column, str) and column in LABELS:
        return LABELS[column]
    if isinstance(column, str) and column.startswith("n_"):
        return _words(column[2:])
    return str(_pretty_header(column))


def metric_name(metric: Any) -> str:
    """A metric id in words (``first_response_time`` → "First response time", ``csat`` → "CSAT")."""
    if not isinstance(metric, str):
        return MISSING
    return _words(metric)


def _formatter(column: Any, series: pd.Series, replace: Mapping[str, str]) -> Callable[[Any], str]:
    """How one column's cells read (before escaping)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        kind = date
    elif pd.api.types.is_bool_dtype(series):
        def kind(v: Any) -> str:
            return MISSING if pd.isna(v) else ("yes" if bool(v) else "no")
    elif column in WHOLE or (isinstance(column, str) and column.startswith("n_")):
        kind = whole
    elif column in SHARES:
        kind = share
    elif column in P_VALUES:
        kind = p_value
    elif pd.api.types.is_integer_dtype(series):
        kind = whole
    else:
        def kind(v: Any) -> str:
            if isinstance(v, pd.Timestamp):
                return date(v)
            if isinstance(v, (bool, np.bool_)):
                return "yes" if v else "no"
            if isinstance(v, (int, np.integer)):
                return whole(v)
            return number(v)

    def cell(v: Any) -> str:
        if isinstance(v, str):
            return replace.get(v, v)
        try:
            return kind(v)
        except (TypeError, ValueError):
            return str(v)
    return cell


def table_html(data: "pd.DataFrame | pd.Series", *, caption: str | None = None, index: bool = False,
               precision: int = 2, max_rows: int = 500, empty: str = "No rows.", headers: str = "pretty",
               labels: Mapping[str, str] | None = None, html_columns: Iterable[str] = (),
               replace: Mapping[str, str] | None = None, classes: str = "",
               row_classes: "pd.Series | None" = None) -> str:
    """A DataFrame as an HTML table: the one renderer of every report table (a pandas ``Styler``).

    Parameters
    ----------
    data : DataFrame or Series
        The rows to show.
    caption : str, optional
        The table's caption (escaped).
    index : bool
        Show the index (default: no).
    precision : int
        Kept for callers; numbers read as :func:`okr_analysis.formatting.number` (at most two decimals).
    max_rows : int
        At most this many rows; a note says how many were left out.
    empty : str
        The note shown instead of a table without rows.
    headers : {"pretty", "raw"}
        ``"pretty"``: headers from :data:`LABELS` (then the column's words); ``"raw"``: the names as they are.
    labels : mapping, optional
        Headers for this table only, over :data:`LABELS`.
    html_columns : iterable of str
        Columns whose cells are already safe HTML (built from escaped text): not escaped again.
    replace : mapping, optional
        Text cells to reword (a suppression label → the reason it applies).
    classes : str
        Extra CSS classes of the ``<table>`` (``"wide"``, ``"appendix"``).
    row_classes : Series, optional
        A CSS class for each row's cells (aligned with ``data``'s rows).

    Returns
    -------
    str
        The table (or the note), escaped; numeric columns carry the class ``num`` (right-aligned).
    """
    if headers not in ("pretty", "raw"):
        raise ValueError(f"headers must be 'pretty' or 'raw', got {headers!r}.")
    df = data.to_frame() if isinstance(data, pd.Series) else data
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame or Series, got {type(data).__name__}.")
    if df.empty:  # a caption over an empty table would wrap word by word: caption as a paragraph
        title = f'<p class="okr-caption">{html.escape(str(caption))}</p>' if caption else ""
        return f'{title}<p class="okr-note">{html.escape(empty)}</p>'
    shown = df.head(max_rows)
    if not index:
        shown = shown.reset_index(drop=True)
    replace = dict(replace or {})
    safe = set(html_columns)
    names = {**LABELS, **(labels or {})}
    head = [str(c) if headers == "raw" else (names.get(c) if isinstance(c, str) and c in names else label(c))
            for c in shown.columns]
    # formatted text, escaped (safe HTML columns as they are), in a frame of strings for the Styler
    cells = pd.DataFrame(index=shown.index)
    numeric = []
    for pos, col in enumerate(shown.columns):
        s = shown.iloc[:, pos]
        fmt = _formatter(col, s, replace)
        text = [fmt(v) if not (isinstance(v, str) and col in safe)
                else (html.escape(replace[v]) if v in replace else v) for v in s]
        cells[pos] = text if col in safe else [html.escape(t) for t in text]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            numeric.append(pos)
    cells.columns = range(len(shown.columns))
    digest = hashlib.sha1(pd.util.hash_pandas_object(cells.astype(str), index=True).to_numpy().tobytes()
                          + "|".join(head).encode())
    styler = cells.style.set_uuid(digest.hexdigest()[:10])  # deterministic: same table, same page
    styler = styler.format(escape=None)  # cells are escaped above
    # relabel_index treats labels as format strings: braces in a (hostile) name are doubled
    styler = styler.relabel_index([html.escape(h).replace("{", "{{").replace("}", "}}") for h in head],
                                  axis="columns")
    if not index:
        styler = styler.hide(axis="index")
    klass = pd.DataFrame("", index=cells.index, columns=cells.columns)
    for pos in numeric:
        klass[pos] = "num"
    if row_classes is not None:
        rc = pd.Series(list(row_classes)[:len(cells)], index=cells.index).fillna("").astype(str)
        klass = klass.apply(lambda c: (c + " " + rc).str.strip())
    styler = styler.set_td_classes(klass)
    styler = styler.set_table_attributes(f'class="okr-table {html.escape(classes)}"'.replace(' "', '"'))
    if caption:
        styler = styler.set_caption(html.escape(str(caption)))
    if numeric:
        styler = styler.set_table_styles({pos: [{"selector": "th", "props": "text-align: right;"}] for pos in numeric},
                                         overwrite=False)
    body = styler.to_html(exclude_styles=False, doctype_html=False, sparse_index=False)
    note = ""
    if len(df) > max_rows:
        note = f'<p class="okr-note">Showing the first {max_rows} of {len(df)} rows.</p>'
    return body + note


def show_table(data: "pd.DataFrame | pd.Series", *, caption: str | None = None, index: bool = False,
               precision: int = 2, max_rows: int = 500, empty: str = "No rows.", headers: str = "pretty",
               **kwargs: Any) -> None:
    """Display a DataFrame in a notebook as an escaped HTML table (see :func:`table_html`)."""
    _display_html(table_html(data, caption=caption, index=index, precision=precision, max_rows=max_rows,
                             empty=empty, headers=headers, **kwargs))


def sparkline_svg(values: Iterable[float], *, target: float | None = None, label: str = "",
                  width: int = 84, height: int = 18) -> str:
    """A tiny inline SVG line of ``values`` (a key result's check-ins), with the target as a dotted line.

    ``label`` is its accessible name (what the line shows). Fewer than two finite values give an empty string.
    """
    y = np.asarray([v for v in values if v is not None], dtype=float)
    y = y[np.isfinite(y)]
    if len(y) < 2:
        return ""
    lo, hi = float(np.min(y)), float(np.max(y))
    if target is not None and np.isfinite(target):
        lo, hi = min(lo, float(target)), max(hi, float(target))
    span = (hi - lo) or 1.0
    pad = 2.0

    def py(v: float) -> float:
        return round(height - pad - (v - lo) / span * (height - 2 * pad), 1)

    xs = np.linspace(pad, width - pad, len(y))
    points = " ".join(f"{x:.1f},{py(v)}" for x, v in zip(xs, y))
    tline = ""
    if target is not None and np.isfinite(target):
        ty = py(float(target))
        tline = (f'<line x1="{pad}" x2="{width - pad}" y1="{ty}" y2="{ty}" stroke="#6b6b6b" stroke-width="1" '
                 'stroke-dasharray="2,2"/>')
    last = f'<circle cx="{xs[-1]:.1f}" cy="{py(y[-1])}" r="1.8" fill="#12436d"/>'
    return (f'<svg class="okr-spark" role="img" aria-label="{html.escape(label)}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{html.escape(label)}</title>{tline}'
            f'<polyline points="{points}" fill="none" stroke="#12436d" stroke-width="1.4"/>{last}</svg>')


# ==================================================================================
# Display helpers
# ==================================================================================
def _display_html(markup: str) -> None:
    # lazy import: notebook display, needed only inside a kernel
    from IPython.display import HTML, display

    display(HTML(markup))


def _show(frame: pd.DataFrame, **kwargs: Any) -> None:
    _display_html(table_html(frame, **kwargs))


def _para(text: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<p{klass}>{html.escape(text)}</p>"


def show_sentences(sentences: list[str], *, title: str | None = None) -> None:
    """Display sentences as the summary block (``title``: a short bold lead-in, e.g. "Worth discussing")."""
    head = f'<p class="okr-lead"><strong>{html.escape(title)}</strong></p>' if title else ""
    _display_html('<div class="okr-summary">' + head + "".join(_para(s) for s in sentences) + "</div>")
