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

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .exceptions import DataWarning, Problem, ValidationError

#: Public name -> the module that defines it. The names are imported on first use (PEP 562), so that
#: ``okr-analysis drivers`` does not pay for the forecasting, impact and report modules (about 0.5 s).
_LAZY = {
    "backtest": "forecasting", "forecast_key_result": "forecasting", "forecast_key_results": "forecasting",
    "forecast_kpis": "forecasting",
    "LINT_CODES": "hygiene", "lint": "hygiene",
    "estimate_impact": "impact", "initiative_impact": "impact",
    "Dataset": "io.dataset", "from_frames": "io.loading", "load": "io.loading",
    "Quarter": "io.quarters", "parse_quarter": "io.quarters",
    "LeadLagResult": "leadlag", "granger_test": "leadlag", "lagged_correlations": "leadlag", "lead_lag": "leadlag",
    "lead_lag_frame": "leadlag",
    "benchmark": "monitoring", "candidate_key_results": "monitoring", "control_chart": "monitoring",
    "kpi_trends": "monitoring", "monitor": "monitoring",
    "build_reports": "reports.build",
    "resample_kpis": "resample",
    "make_sample": "sample", "write_sample": "sample",
    "score": "scoring", "score_key_results": "scoring", "score_objectives": "scoring", "score_teams": "scoring",
}


def __getattr__(name: str):
    """A public name, imported from its module on first use (:data:`_LAZY`)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'okr_analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups do not come back here
    return value


def __dir__() -> list[str]:
    """The module's names, the public ones not imported yet included."""
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and the API docs (griffe reads these statically)
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
