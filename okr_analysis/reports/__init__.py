"""Reports out: the notebook API, the report sections, and the batch that renders every team's review.

Modules, from the bottom up (each imports only those above it in this list):

- :mod:`~okr_analysis.reports.display`: escaped HTML tables, sentences and figures in a notebook;
  :mod:`~okr_analysis.reports.results`: what a batch returns; :mod:`~okr_analysis.reports.render`: HTML, PDF
  and the index page; :mod:`~okr_analysis.reports.processes`: process housekeeping.
- :mod:`~okr_analysis.reports.shared`: the org-wide analyses a batch computes once (:data:`SHARED_ANALYSES`);
  :mod:`~okr_analysis.reports.cache`: where it writes them; :mod:`~okr_analysis.reports.manifest`: names,
  hashes, the lock, ``build.json`` and ``index.html``.
- :mod:`~okr_analysis.reports.context`: :func:`open_report` and :class:`ReportContext`.
- :mod:`~okr_analysis.reports.common`, :mod:`~okr_analysis.reports.team`, :mod:`~okr_analysis.reports.org`:
  the sections the notebooks call (``team.scorecard(ctx)``), imported on demand (they load matplotlib).
- :mod:`~okr_analysis.reports.worker`: a warm kernel, exporter and browser per process;
  :mod:`~okr_analysis.reports.data`: the batch's data process; :mod:`~okr_analysis.reports.executors`:
  local and Dask executors.
- :mod:`~okr_analysis.reports.build`: :func:`build_reports`.
"""

from __future__ import annotations

from ..config import NOTEBOOK, ORG_NOTEBOOK, TEMPLATE_DIR
from ..exceptions import BuildError, NoObjectivesError, ReportWarning, UnknownTeamsError
from .build import FORMATS, RUNNER_PARAMETERS, build_reports
from .cache import cache_folder
from .context import ReportContext, open_report
from .display import show_sentences, show_table, table_html
from .manifest import dataset_hash, team_file_name
from .render import (
    CHROMIUM_ARGS,
    HtmlRenderer,
    PdfPrinter,
    find_chromium,
    iter_external_references,
    pdf_support,
    render_index,
)
from .results import BuildResult, TeamError, TeamOutcome
from .shared import SHARED_ANALYSES, shared_analyses

__all__ = [
    "BuildError",
    "BuildResult",
    "CHROMIUM_ARGS",
    "FORMATS",
    "HtmlRenderer",
    "NOTEBOOK",
    "NoObjectivesError",
    "ORG_NOTEBOOK",
    "PdfPrinter",
    "RUNNER_PARAMETERS",
    "ReportContext",
    "ReportWarning",
    "SHARED_ANALYSES",
    "TEMPLATE_DIR",
    "TeamError",
    "TeamOutcome",
    "UnknownTeamsError",
    "build_reports",
    "cache_folder",
    "dataset_hash",
    "find_chromium",
    "iter_external_references",
    "open_report",
    "pdf_support",
    "render_index",
    "shared_analyses",
    "show_sentences",
    "show_table",
    "table_html",
    "team_file_name",
]
