"""okr-analysis: what drives your KPIs, which leading indicators predict key results, and quarterly OKR reviews."""

from .dataset import Dataset
from .quarters import Quarter, parse_quarter

__version__ = "0.1.0"

__all__ = ["Dataset", "Quarter", "parse_quarter", "__version__"]
