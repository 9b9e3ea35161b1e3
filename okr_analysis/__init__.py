"""okr-analysis: what drives your KPIs, which leading indicators predict key results, and quarterly OKR reviews."""

from .dataset import Dataset
from .loaders import DataWarning, Problem, ValidationError, from_frames, load
from .quarters import Quarter, parse_quarter

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "DataWarning",
    "Problem",
    "Quarter",
    "ValidationError",
    "from_frames",
    "load",
    "parse_quarter",
    "__version__",
]
