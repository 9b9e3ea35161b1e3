"""The typed objects a report batch passes between its parts and its processes.

:class:`BuildOptions` holds :func:`~okr_analysis.reports.build_reports`' arguments once checked;
:class:`SharedSpec` says what the batch's shared analyses are computed for; a :class:`ReportTask` is one
team's notebook run, sent to a worker process (or a Dask worker), which answers with a :class:`TaskResult`.
All of them pickle, so they cross process boundaries as they are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from ..io.quarters import Quarter
from .results import TeamError, TeamOutcome

__all__ = ["BuildOptions", "DataPlan", "ReportTask", "SharedSpec", "TaskResult"]


@dataclass(frozen=True)
class DataPlan:
    """What a batch needs to know of its data to plan the reports (small: the team tree, not the KPIs); made
    where the data is (the data process) and sent to the batch process."""

    quarter: Quarter
    as_of: pd.Timestamp
    tree: pd.DataFrame  #: ``Dataset.team_tree``
    roots: list[str]
    order: dict[str, int]  #: team id -> position in tree order (roots first, each subtree depth-first)
    input_hash: str  #: ``dataset_hash`` of the data
    source: str
    kpi_rows: int


@dataclass(frozen=True)
class BuildOptions:
    """:func:`~okr_analysis.reports.build_reports`' arguments, checked (see it for each)."""

    formats: tuple[str, ...]
    out: Path
    jobs: int | None
    org_overview: bool
    force: bool
    min_group_size: int
    progress: bool | Callable[[TeamOutcome, int, int], Any]
    continue_on_error: bool
    parameters: Mapping[str, Any]
    notebook: Path
    org_notebook: Path
    template_dir: Path
    cell_timeout: float | None
    executor: str
    scheduler: str | None


@dataclass(frozen=True)
class SharedSpec:
    """What a batch's shared analyses are computed for: it keys their cache folder and is what the data
    process is asked to write."""

    quarter: Quarter
    as_of: pd.Timestamp
    min_group_size: int
    input_hash: str
    source_label: str

    def write_options(self) -> dict[str, Any]:
        """Keyword arguments of ``cache._write_shared`` (after the dataset and the folder)."""
        return {"quarter": self.quarter, "as_of": self.as_of, "min_group_size": self.min_group_size,
                "input_hash": self.input_hash, "source_label": self.source_label}


@dataclass
class ReportTask:
    """One team's report: the notebook to run with its parameters, and where its files go.

    ``parameters["shared"]`` is filled in once the shared analyses are written.
    """

    team_id: str
    file: str  #: the file stem inside ``folder`` (``team_file_name``)
    folder: str
    pdf: bool
    identity: dict[str, Any]  #: what the index and the page header say about the report
    notebook: str
    footer: str
    parameters: dict[str, Any]


@dataclass
class TaskResult:
    """What a worker reports back for one :class:`ReportTask`."""

    team_id: str
    error: TeamError | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    pdf_error: str = ""  #: why PDFs could not be printed in this worker ('' when they could)
    duration_s: float = 0.0
    failed_notebook: str | None = None
    failed_html: str | None = None

    @classmethod
    def failed(cls, team_id: str, stage: str, exc: BaseException) -> "TaskResult":
        """The result of a task whose worker failed (``stage``: what was going on)."""
        return cls(team_id=team_id, error=TeamError(stage, type(exc).__name__, str(exc)[:2000]))

    def error_entry(self) -> dict[str, Any] | None:
        """The error as ``build.json`` stores it."""
        return asdict(self.error) if self.error is not None else None
