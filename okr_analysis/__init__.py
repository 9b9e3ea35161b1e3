"""okr-analysis: what drives your KPIs, which leading indicators predict key results, and quarterly OKR reviews.

The public API, by topic (each module documents every output column):

- loading: :func:`load`, :func:`from_frames`, :class:`Dataset`, :class:`Quarter`
- sample data: :func:`make_sample`, :func:`write_sample`
- KPIs by period: :func:`resample_kpis`
- scoring: :func:`score_key_results`, :func:`score_objectives`, :func:`score_teams`, :func:`lint`
- KPI monitoring: :func:`kpi_trends`, :func:`control_chart`, :func:`benchmark`, :func:`candidate_key_results`,
  :func:`monitor`
- leading vs lagging: :func:`lead_lag`, :func:`lead_lag_frame`, :func:`lagged_correlations`, :func:`granger_test`
- did the initiative work: :func:`initiative_impact`, :func:`estimate_impact`
- forecasts: :func:`forecast_key_results`, :func:`forecast_key_result`, :func:`forecast_kpis`, :func:`backtest`
- reports: :func:`build_reports`
"""

from ._version import __version__
from .exceptions import DataWarning, Problem, ValidationError
from .forecasting import (
    backtest,
    forecast_key_result,
    forecast_key_results,
    forecast_kpis,
)
from .hygiene import LINT_CODES, lint
from .impact import estimate_impact, initiative_impact
from .io.dataset import Dataset
from .io.loading import from_frames, load
from .io.quarters import Quarter, parse_quarter
from .leadlag import (
    LeadLagResult,
    granger_test,
    lagged_correlations,
    lead_lag,
    lead_lag_frame,
)
from .monitoring import (
    benchmark,
    candidate_key_results,
    control_chart,
    kpi_trends,
    monitor,
)
from .reports.build import build_reports
from .resample import resample_kpis
from .sample import make_sample, write_sample
from .scoring import score, score_key_results, score_objectives, score_teams

__all__ = [
    "Dataset",
    "LeadLagResult",
    "backtest",
    "build_reports",
    "forecast_key_result",
    "forecast_key_results",
    "forecast_kpis",
    "granger_test",
    "estimate_impact",
    "initiative_impact",
    "lagged_correlations",
    "lead_lag",
    "lead_lag_frame",
    "DataWarning",
    "LINT_CODES",
    "Problem",
    "Quarter",
    "ValidationError",
    "benchmark",
    "candidate_key_results",
    "control_chart",
    "from_frames",
    "kpi_trends",
    "lint",
    "load",
    "make_sample",
    "monitor",
    "parse_quarter",
    "resample_kpis",
    "score",
    "score_key_results",
    "score_objectives",
    "score_teams",
    "write_sample",
    "__version__",
]
