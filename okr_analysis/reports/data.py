"""The batch's data: loaded in this process, or in a child process that plans the batch, writes the
shared analyses and exits, so the batch process never holds the organisation's data.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Sequence

from ..exceptions import NoObjectivesError
from ..io.dataset import Dataset
from ..io.loading import load
from .cache import _write_shared
from .context import _resolve_as_of
from .manifest import dataset_hash
from .processes import _exit_with_parent, _release
from .tasks import DataPlan


# ==================================================================================
# The batch's data: loaded here, or in a child process that exits once the shared analyses are written
# ==================================================================================
def _plan_data(ds: Dataset, *, quarter: Any, as_of: Any) -> DataPlan:
    """What the batch needs to know of the data to plan its reports (small: the team tree, not the KPIs)."""
    if isinstance(quarter, str) and quarter.strip().lower() == "latest":
        if ds.latest_quarter is None:
            raise NoObjectivesError("latest", [])
        quarter = ds.latest_quarter
    q = ds.quarter(quarter)
    if q.label not in ds.quarters:
        raise NoObjectivesError(q.label, ds.quarters)
    tree = ds.team_tree
    roots = tree.loc[tree["depth"] == 0, "team_id"].tolist()
    return DataPlan(quarter=q, as_of=_resolve_as_of(as_of, q), tree=tree, roots=roots,
                    order={tid: i for i, tid in enumerate(t for r in roots for t in ds.subtree(r))},
                    input_hash=dataset_hash(ds), source=ds.source, kpi_rows=len(ds.kpis))


#: Up to this many KPI rows the workers warm up (kernels, exporters, browsers: ~2 GB for two) while the shared
#: analyses are computed, which saves the warm-up time (~10 s). Above it they start once the data is let go:
#: the data process's memory grows with the organisation (~0.35 GB and ~0.3 GB per million KPI rows; 1.2 GB at
#: 2,000 teams of three years), and overlapping it with the warm-up would make the batch's peak grow with it too
#: (benchmarks/results/scale.md).
_WARM_EARLY_MAX_ROWS = 1_000_000


class _LocalData:
    """A batch's data held in this process (a Dataset or tables passed in: the caller holds them anyway)."""

    def __init__(self, source: Any, *, fiscal_year_start: int = 1):
        self._ds: Dataset | None = load(source, fiscal_year_start=fiscal_year_start)

    def plan(self, *, quarter: Any, as_of: Any) -> DataPlan:
        return _plan_data(self._ds, quarter=quarter, as_of=as_of)

    def write_shared(self, folder: Path, **options: Any) -> None:
        _write_shared(self._ds, folder, **options)

    def close(self) -> None:
        """Drop the dataset (the notebooks read the shared folder) and give its memory back."""
        if self._ds is not None:
            self._ds = None
            _release()


def _send(conn: Any, message: tuple) -> None:
    """Send to the batch process; an exception that cannot be pickled goes as a RuntimeError with its text."""
    try:
        conn.send(message)
    except Exception:
        err = message[1]
        conn.send(("error", RuntimeError(f"{type(err).__name__}: {err}"), message[2]))


def _caught(records: list[warnings.WarningMessage]) -> list[tuple[type[Warning], str]]:
    return [(w.category, str(w.message)) for w in records]


def _use_filters(filters: Sequence[tuple]) -> None:
    """Make ``filters`` (another process's ``warnings.filters``) this process's warning filters."""
    warnings.resetwarnings()
    for action, message, category, module, lineno in filters:
        if message is None and module is None:
            warnings.simplefilter(action, category, lineno, append=True)
        else:
            warnings.filterwarnings(action, getattr(message, "pattern", message or ""), category,
                                    getattr(module, "pattern", module or ""), lineno, append=True)


def _data_process(conn: Any, source: Any, fiscal_year_start: int, quarter: Any, as_of: Any, ppid: int,
                  filters: Sequence[tuple]) -> None:
    """The child of :class:`_ChildData`: load and plan, then write the shared analyses when asked, then exit.

    The batch process's warning filters apply here; the warnings they let through are sent to the batch
    process, which issues them again (its caller sees them as if the data had been loaded there), and so
    are exceptions."""


    threading.Thread(target=_exit_with_parent, args=(ppid,), daemon=True).start()
    with contextlib.suppress(Exception):  # "okr-data" in ps and top (Linux); the workers stay "python"

        ctypes.CDLL("libc.so.6").prctl(15, b"okr-data", 0, 0, 0)  # PR_SET_NAME
    with warnings.catch_warnings(record=True) as records:
        _use_filters(filters)
        try:
            ds = load(source, fiscal_year_start=fiscal_year_start)
            plan = _plan_data(ds, quarter=quarter, as_of=as_of)
        except BaseException as err:  # noqa: BLE001 - every failure goes to the batch process
            _send(conn, ("error", err, _caught(records)))
            return
        _send(conn, ("plan", plan, _caught(records)))
        del records[:]
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "write":
            return
        try:
            _write_shared(ds, Path(message[1]), **message[2])
        except BaseException as err:  # noqa: BLE001
            _send(conn, ("error", err, _caught(records)))
            return
        _send(conn, ("written", None, _caught(records)))


class _ChildData:
    """A batch's data loaded from a path or URL in a child process (spawned), which plans, writes the shared
    analyses and exits: the batch process never holds the organisation's data, so its memory stays the
    same whatever the size of the organisation; the child's peak ends with it."""

    def __init__(self, source: Any, *, fiscal_year_start: int = 1):
        self._source = source
        self._fiscal_year_start = fiscal_year_start
        self._proc: Any = None
        self._conn: Any = None
        self._busy = False  # a request is outstanding: the child is loading or computing

    def _receive(self, doing: str) -> Any:
        self._busy = True
        try:
            kind, value, caught = self._conn.recv()
        except EOFError:
            self._proc.join(10)
            raise RuntimeError(
                f"the process {doing} ended unexpectedly (exit code {self._proc.exitcode}); if the machine ran "
                "out of memory, free some or run the batch on a larger one.") from None
        self._busy = False
        for category, text in caught:
            warnings.warn(text, category, stacklevel=4)
        if kind == "error":
            raise value
        return value

    def plan(self, *, quarter: Any, as_of: Any) -> dict[str, Any]:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe()
        self._proc = ctx.Process(target=_data_process, name="okr-analysis data", daemon=True,
                                 args=(child_end, self._source, self._fiscal_year_start, quarter, as_of,
                                       os.getpid(), list(warnings.filters)))
        self._proc.start()
        child_end.close()
        return self._receive("loading the data")

    def write_shared(self, folder: Path, **options: Any) -> None:
        self._conn.send(("write", str(folder), options))
        self._receive("computing the shared analyses")

    def close(self) -> None:
        """Let the child exit (it may wait for a write that is not needed); stop it at once if it is still
        working (the batch was interrupted or failed)."""
        if self._proc is None:
            return
        if self._busy:
            self._proc.terminate()
        else:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(("stop",))
        self._proc.join(10)
        if self._proc.is_alive():  # pragma: no cover - a child that ignores the stop
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()
        self._proc = None


def _open_data(source: Any, *, fiscal_year_start: int = 1) -> "_LocalData | _ChildData":
    """A path or URL: loaded in a child process (:class:`_ChildData`); anything else here."""
    if isinstance(source, (str, os.PathLike)):
        return _ChildData(source, fiscal_year_start=fiscal_year_start)
    return _LocalData(source, fiscal_year_start=fiscal_year_start)
