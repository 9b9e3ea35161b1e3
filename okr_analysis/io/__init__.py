"""Data in: the data format, the fiscal calendar, the :class:`Dataset`, and loading a source.

Modules, from the bottom up (each imports only those above it in this list):

- :mod:`~okr_analysis.io.schemas`: the data format (tables, columns, kinds, enums);
  :mod:`~okr_analysis.io.quarters`: fiscal quarters.
- :mod:`~okr_analysis.io.raw`: raw tables as read; :mod:`~okr_analysis.io.coercion`: typing them;
  :mod:`~okr_analysis.io.scope`: the part of the organisation a filtered load keeps.
- :mod:`~okr_analysis.io.readers`: CSV/Parquet folders, Excel, DuckDB and SQL sources.
- :mod:`~okr_analysis.io.validation`: every rule of the format, every problem at once.
- :mod:`~okr_analysis.io.dataset`: :class:`Dataset`; :mod:`~okr_analysis.io.loading`: :func:`load`, :func:`from_frames`.
"""

from __future__ import annotations

from ..exceptions import DataWarning, Problem, ValidationError
from .dataset import Dataset, check_dataset
from .loading import from_frames, load
from .quarters import Quarter, parse_quarter, quarter_of, to_day
from .schemas import OPTIONAL_TABLES, REQUIRED_TABLES, TABLES
from .validation import iter_problems

__all__ = [
    "DataWarning",
    "Dataset",
    "OPTIONAL_TABLES",
    "Problem",
    "Quarter",
    "REQUIRED_TABLES",
    "TABLES",
    "ValidationError",
    "check_dataset",
    "from_frames",
    "iter_problems",
    "load",
    "parse_quarter",
    "quarter_of",
    "to_day",
]
