"""The data format: the tables a data source holds, their columns, types and rules.

This module is the single description of the public data contract documented in
docs/guide/data-format.md. Loaders read raw text into these types; validation
checks these rules; every analysis relies on the resulting dtypes:

* id and text columns: pandas ``str`` dtype (ids stay text: ``"007"`` is not 7);
* numbers: ``float64`` (``Int64`` for headcount);
* dates: ``datetime64[ns]``, normalised to midnight;
* booleans: ``bool``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ColumnSpec",
    "TableSpec",
    "TABLES",
    "REQUIRED_TABLES",
    "OPTIONAL_TABLES",
    "DIRECTIONS",
    "OBJECTIVE_KINDS",
    "METRIC_KINDS",
    "AGGREGATIONS",
]

DIRECTIONS = ("increase", "decrease", "maintain_at_least", "maintain_at_most", "milestone")
OBJECTIVE_KINDS = ("committed", "aspirational")
METRIC_KINDS = ("leading", "lagging", "other")
AGGREGATIONS = ("mean", "sum", "last")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a table.

    ``kind`` is one of ``id``, ``text``, ``float``, ``int``, ``date``, ``bool``,
    ``quarter`` or ``enum`` (with ``choices``).
    """

    name: str
    kind: str
    required: bool = False
    default: object = None
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    fix: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One table: its columns and its key."""

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()
    required: bool = True
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


TABLES: dict[str, TableSpec] = {
    "teams": TableSpec(
        "teams",
        (
            ColumnSpec("team_id", "id", required=True),
            ColumnSpec("team_name", "text", required=True),
            ColumnSpec("parent_team_id", "id", fix="leave it empty for the company (root) team"),
            ColumnSpec("headcount", "int", min=0, fix="give the number of people in the team, 0 or more"),
        ),
        key=("team_id",),
        description="The organisation: company → departments → teams.",
    ),
    "objectives": TableSpec(
        "objectives",
        (
            ColumnSpec("objective_id", "id", required=True),
            ColumnSpec("team_id", "id", required=True),
            ColumnSpec("quarter", "quarter", required=True),
            ColumnSpec("title", "text", required=True),
            ColumnSpec("parent_objective_id", "id"),
            ColumnSpec("kind", "enum", default="aspirational", choices=OBJECTIVE_KINDS),
        ),
        key=("objective_id",),
        description="Objectives, per team and quarter.",
    ),
    "key_results": TableSpec(
        "key_results",
        (
            ColumnSpec("kr_id", "id", required=True),
            ColumnSpec("objective_id", "id", required=True),
            ColumnSpec("title", "text", required=True),
            ColumnSpec("direction", "enum", required=True, choices=DIRECTIONS),
            ColumnSpec("baseline", "float", fix="give the starting value (required for increase/decrease)"),
            ColumnSpec("target", "float", required=True),
            ColumnSpec("unit", "text"),
            ColumnSpec("weight", "float", default=1.0, min=0, min_exclusive=True,
                       fix="use a positive weight (default 1)"),
            ColumnSpec("metric", "id"),
        ),
        key=("kr_id",),
        description="Key results of each objective.",
    ),
    "checkins": TableSpec(
        "checkins",
        (
            ColumnSpec("kr_id", "id", required=True),
            ColumnSpec("date", "date", required=True),
            ColumnSpec("value", "float", required=True),
            ColumnSpec("confidence", "float", min=0, max=10, fix="use a confidence from 0 to 10"),
            ColumnSpec("comment", "text"),
        ),
        key=(),
        description="Weekly check-ins: the KR's measured value on a date.",
    ),
    "kpis": TableSpec(
        "kpis",
        (
            ColumnSpec("team_id", "id", required=True),
            ColumnSpec("metric", "id", required=True),
            ColumnSpec("date", "date", required=True),
            ColumnSpec("value", "float", required=True),
        ),
        key=("team_id", "metric", "date"),
        description="KPI values in long format, one row per team, metric and date.",
    ),
    "metrics": TableSpec(
        "metrics",
        (
            ColumnSpec("metric", "id", required=True),
            ColumnSpec("description", "text"),
            ColumnSpec("unit", "text"),
            ColumnSpec("higher_is_better", "bool", default=True),
            ColumnSpec("kind", "enum", default="other", choices=METRIC_KINDS),
            ColumnSpec("aggregation", "enum", default="mean", choices=AGGREGATIONS),
            ColumnSpec("people_metric", "bool", default=False),
        ),
        key=("metric",),
        description="The KPI catalogue.",
    ),
    "benchmarks": TableSpec(
        "benchmarks",
        (
            ColumnSpec("metric", "id", required=True),
            ColumnSpec("value", "float", required=True),
            ColumnSpec("source", "text"),
        ),
        key=(),
        required=False,
        description="Optional external benchmarks for metrics.",
    ),
    "initiatives": TableSpec(
        "initiatives",
        (
            ColumnSpec("initiative_id", "id", required=True),
            ColumnSpec("team_id", "id", required=True),
            ColumnSpec("title", "text", required=True),
            ColumnSpec("start", "date", required=True),
            ColumnSpec("metric", "id", required=True),
            ColumnSpec("end", "date", fix="give the date the initiative ended, or leave it empty while it runs"),
            ColumnSpec("kr_id", "id", fix="use the kr_id of the milestone key result that tracks it, or leave it empty"),
        ),
        key=("initiative_id",),
        required=False,
        description="Optional initiatives: what a team launched, when, and the KPI it should move.",
    ),
}

REQUIRED_TABLES = tuple(name for name, spec in TABLES.items() if spec.required)
OPTIONAL_TABLES = tuple(name for name, spec in TABLES.items() if not spec.required)
