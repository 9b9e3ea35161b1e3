"""Every exception and warning class the package raises or issues, in one module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = [
    "BuildError",
    "DataWarning",
    "NoObjectivesError",
    "Problem",
    "ReportWarning",
    "UnknownTeamsError",
    "ValidationError",
]

class DataWarning(UserWarning):
    """A non-fatal problem in a data source (the data loaded, but look at this)."""


@dataclass(frozen=True)
class Problem:
    """One validation problem, located as precisely as the source allows."""

    table: str
    file: str
    row: int | None
    column: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = self.file if self.table == "*" else f"{self.table}({self.file})"
        if self.row is not None:
            where += f":{self.row}"
        col = f" {self.column}:" if self.column else ""
        fix = f" — {self.fix}" if self.fix else ""
        return f"{where}:{col} {self.message}{fix}"


class ValidationError(ValueError):
    """A data source failed validation; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} in {source}:"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))

    def __reduce__(self):  # pickled with its problems (a batch loads its data in a child process)
        return (type(self), (self.source, self.problems))


class ReportWarning(UserWarning):
    """Something about a report batch worth knowing (e.g. PDFs skipped: no Chromium)."""


class UnknownTeamsError(ValueError):
    """``teams`` names teams that are not in the data; ``.teams`` lists them, ``.known`` the data's teams."""

    def __init__(self, teams: Sequence[str], known: Sequence[str]):
        self.teams, self.known = list(teams), list(known)
        super().__init__(f"teams {', '.join(map(repr, self.teams))} are not in the teams table; known teams "
                         f"include {', '.join(map(repr, self.known[:10]))}.")

    def __reduce__(self):  # raised in the batch's data process, which pickles it
        return (type(self), (self.teams, self.known))


class NoObjectivesError(ValueError):
    """The quarter asked for has no objectives (or ``'latest'`` and the data has none); ``.quarter`` is the
    quarter asked for, ``.known`` the quarters that have objectives."""

    def __init__(self, quarter: str, known: Sequence[str]):
        self.quarter, self.known = str(quarter), list(known)
        if self.quarter.strip().lower() == "latest":
            text = "quarter='latest' but the data has no objectives, so no quarter to report on."
        else:
            text = (f"quarter {self.quarter} has no objectives in the data; quarters with objectives: "
                    f"{', '.join(self.known) or 'none'}.")
        super().__init__(text)

    def __reduce__(self):
        return (type(self), (self.quarter, self.known))


class BuildError(RuntimeError):
    """A batch stopped at its first failure (``continue_on_error=False``); ``.result`` has what was built
    (an :class:`okr_analysis.reports.BuildResult`)."""

    def __init__(self, message: str, result: Any):
        super().__init__(message)
        self.result = result
