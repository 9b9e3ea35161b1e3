"""What a batch returns: :class:`BuildResult`, one :class:`TeamOutcome` per team, :class:`TeamError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BuildResult", "TeamError", "TeamOutcome"]



# ==================================================================================
# Results
# ==================================================================================
@dataclass(frozen=True)
class TeamError:
    """Why a team's report failed.

    ``stage`` is ``"execute"`` (a notebook cell raised: ``ename``/``evalue`` of that error,
    ``cell_index``, ``exec_count``), ``"render"`` (HTML), ``"pdf"`` (printing) or ``"worker"``.
    """

    stage: str
    ename: str
    evalue: str
    cell_index: int | None = None
    exec_count: int | None = None
    traceback: str = ""

    def __str__(self) -> str:
        where = f" in cell {self.cell_index}" if self.cell_index is not None else ""
        return f"{self.ename}: {self.evalue} ({self.stage}{where})"


@dataclass(frozen=True)
class TeamOutcome:
    """What happened to one team's report in a batch.

    Attributes
    ----------
    team_id, team_name : str
    kind : str
        ``"org"`` for the organisation overview, ``"team"`` otherwise.
    file : str
        The file stem inside the quarter folder (:func:`team_file_name`).
    status : str
        ``"rendered"``, ``"skipped"`` (up to date), ``"failed"`` or ``"cancelled"``.
    state : str
        What the published report is now: ``"ok"``, ``"stale"`` (an older good report is kept:
        the last attempt failed or the inputs changed), ``"failed"`` (no good report) or ``"missing"``.
    html, pdf, notebook : pathlib.Path or None
        The published (last good) files.
    failed_html, failed_notebook : pathlib.Path or None
        The executed notebook of a failed run, with its error, and its HTML page.
    error : TeamError or None
    duration_s : float
    summary : dict
        What the notebook recorded (team, score, band, status counts …).
    """

    team_id: str
    team_name: str
    kind: str
    file: str
    status: str
    state: str
    html: Path | None = None
    pdf: Path | None = None
    notebook: Path | None = None
    failed_html: Path | None = None
    failed_notebook: Path | None = None
    error: TeamError | None = None
    duration_s: float = 0.0
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("rendered", "skipped")

    @property
    def stale(self) -> bool:
        return self.state == "stale"


@dataclass(frozen=True)
class BuildResult:
    """The outcome of :func:`build_reports`.

    Attributes
    ----------
    quarter : str
    folder : pathlib.Path
        ``<out>/<quarter>``.
    teams : tuple of TeamOutcome
        One per team of this batch, in tree order (the organisation overview first).
    manifest : dict
        The contents of ``build.json``.
    manifest_path, index_path : pathlib.Path
    messages : tuple of str
        Things to tell the user (e.g. how to get PDFs when Chromium is missing).
    duration_s : float
    """

    quarter: str
    folder: Path
    teams: tuple[TeamOutcome, ...]
    manifest: dict
    manifest_path: Path
    index_path: Path
    messages: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no team of this batch failed or was cancelled."""
        return all(t.ok for t in self.teams)

    @property
    def failures(self) -> list[TeamOutcome]:
        return [t for t in self.teams if not t.ok]

    @property
    def rendered(self) -> list[TeamOutcome]:
        return [t for t in self.teams if t.status == "rendered"]

    @property
    def skipped(self) -> list[TeamOutcome]:
        return [t for t in self.teams if t.status == "skipped"]

    def __getitem__(self, team_id: str) -> TeamOutcome:
        for t in self.teams:
            if t.team_id == team_id:
                return t
        raise KeyError(team_id)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"{self.quarter}: {len(self.rendered)} rendered, {len(self.skipped)} up to date, "
                 f"{len(self.failures)} failed in {self.duration_s:.1f} s → {self.index_path}"]
        for t in self.failures:
            kept = " (last good report kept, marked stale)" if t.stale else ""
            lines.append(f"  FAILED {t.team_id}: {t.error}{kept}")
            if t.failed_notebook:
                lines.append(f"         executed notebook: {t.failed_notebook}")
        lines += [f"  note: {m}" for m in self.messages]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<BuildResult {self.quarter}: {len(self.rendered)} rendered, {len(self.skipped)} skipped, "
                f"{len(self.failures)} failed, ok={self.ok}>")
