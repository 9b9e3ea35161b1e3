"""Displaying tables and figures in a report notebook: escaped HTML tables, sentences, figures.
"""

from __future__ import annotations

import hashlib
import html
from typing import Any

import pandas as pd

__all__ = ["show_sentences", "show_table", "table_html"]



_ACRONYMS = {"kr": "KR", "krs": "KRs", "kpi": "KPI", "kpis": "KPIs", "okr": "OKR", "okrs": "OKRs", "id": "ID",
             "nps": "NPS", "csat": "CSAT"}


def _pretty_header(name: Any) -> Any:
    if not isinstance(name, str):
        return name
    words = [_ACRONYMS.get(w.lower(), w) for w in name.replace("_", " ").split(" ")]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else text


def table_html(data: "pd.DataFrame | pd.Series", *, caption: str | None = None, index: bool = False,
               precision: int = 2, max_rows: int = 500, empty: str = "No rows.", headers: str = "pretty") -> str:
    """A DataFrame as an HTML table with every value and header escaped.

    Numbers are right-aligned and rounded to ``precision`` decimals, dates shown as
    ``YYYY-MM-DD``, missing values as "—". Column names are shown as words
    (``objective_title`` → "Objective title", ``kr_id`` → "KR ID") unless ``headers="raw"``.
    At most ``max_rows`` rows are shown (a note says how many were left out). An empty
    frame gives ``empty`` as a note.
    """
    if headers not in ("pretty", "raw"):
        raise ValueError(f"headers must be 'pretty' or 'raw', got {headers!r}.")
    df = data.to_frame() if isinstance(data, pd.Series) else data
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame or Series, got {type(data).__name__}.")
    cap = f"<caption>{html.escape(str(caption))}</caption>" if caption else ""
    if df.empty:  # a caption over an empty table would wrap word by word: caption as a paragraph
        title = f'<p class="okr-caption">{html.escape(str(caption))}</p>' if caption else ""
        return f'{title}<p class="okr-note">{html.escape(empty)}</p>'
    shown = df.head(max_rows).copy()
    numeric = []
    for pos, col in enumerate(shown.columns):
        s = shown[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            shown[col] = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(s):
            shown[col] = s.map({True: "yes", False: "no"})
        elif pd.api.types.is_numeric_dtype(s):
            numeric.append(pos)
    if headers == "pretty":
        shown.columns = [_pretty_header(c) for c in shown.columns]
    digest = hashlib.sha1(pd.util.hash_pandas_object(shown.astype(str), index=True).to_numpy().tobytes())
    table_id = f"okr-t{digest.hexdigest()[:10]}"  # deterministic: same table, same page
    body = shown.to_html(escape=True, index=index, na_rep="—", border=0, table_id=table_id,
                         classes="okr-table", float_format=lambda x: f"{x:,.{precision}f}")
    if cap:
        body = body.replace(">", ">" + cap, 1)
    offset = shown.index.nlevels if index else 0
    style = ""
    if numeric:
        sel = ", ".join(f"#{table_id} td:nth-child({p + 1 + offset}), #{table_id} th:nth-child({p + 1 + offset})"
                        for p in numeric)
        style = f"<style>{sel} {{ text-align: right; }}</style>"
    note = ""
    if len(df) > max_rows:
        note = f'<p class="okr-note">Showing the first {max_rows} of {len(df)} rows.</p>'
    return style + body + note


def show_table(data: "pd.DataFrame | pd.Series", *, caption: str | None = None, index: bool = False,
               precision: int = 2, max_rows: int = 500, empty: str = "No rows.", headers: str = "pretty") -> None:
    """Display a DataFrame in a notebook as an escaped HTML table (see :func:`table_html`)."""
    # lazy import: notebook display, needed only inside a kernel
    from IPython.display import HTML, display

    display(HTML(table_html(data, caption=caption, index=index, precision=precision, max_rows=max_rows,
                            empty=empty, headers=headers)))


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


def show_sentences(sentences: list[str]) -> None:
    """Display sentences as the summary block."""
    _display_html('<div class="okr-summary">' + "".join(_para(s) for s in sentences) + "</div>")
