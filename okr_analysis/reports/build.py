"""The report batch: :func:`build_reports` renders every team's review (HTML and PDF), an index
and a manifest.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tqdm import tqdm

from .._version import __version__
from ..config import NOTEBOOK, ORG_NOTEBOOK, TEMPLATE_DIR
from ..exceptions import BuildError, ReportWarning, UnknownTeamsError
from ..parallel import check_executor
from .context import _jsonable
from .data import _WARM_EARLY_MAX_ROWS, _ChildData, _LocalData, _open_data
from .executors import _run_tasks
from .manifest import (
    _clean_temporaries,
    _files_hash,
    _folder_lock,
    _Manifest,
    _now,
    _outcome_from_entry,
    _package_hash,
    _read_manifest,
    _sha,
    _template_hash,
    team_file_name,
)
from .render import pdf_support
from .results import BuildResult, TeamOutcome
from .tasks import BuildOptions, ReportTask, SharedSpec, TaskResult

__all__ = ["FORMATS", "RUNNER_PARAMETERS", "build_reports"]



#: Parameters the runner sets itself; a report notebook must declare all of them.
RUNNER_PARAMETERS = ("source", "team_id", "quarter", "as_of", "min_group_size", "shared")


FORMATS = ("html", "pdf")


def _check_parameters(nb_path: Path, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Reject unknown parameters before anything runs (papermill itself only warns)."""
    # lazy import: papermill adds ~0.35 s to every command that renders no report (REPORTING_NOTES.md)
    import papermill as pm

    declared = pm.inspect_notebook(str(nb_path))
    missing = [p for p in RUNNER_PARAMETERS if p not in declared]
    if missing:
        raise ValueError(
            f"notebook {str(nb_path)!r} does not declare the parameter(s) {', '.join(missing)} that the runner "
            f"passes; add them to its cell tagged 'parameters' (it declares: {', '.join(declared) or 'nothing'})."
        )
    clash = [p for p in extra if p in RUNNER_PARAMETERS]
    if clash:
        raise ValueError(f"parameters {', '.join(clash)} are set by build_reports itself; pass them as its "
                         "keyword arguments (source, team ids, quarter, as_of, min_group_size) instead.")
    unknown = [p for p in extra if p not in declared]
    if unknown:
        raise ValueError(
            f"unknown notebook parameter(s) {', '.join(map(repr, unknown))}: {nb_path.name} takes "
            f"{', '.join(declared)}. Fix the name or add the parameter to the notebook's 'parameters' cell."
        )
    return declared


def _normalise_formats(formats: Any) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        fmts = tuple(dict.fromkeys(str(f).lower() for f in formats))
    except TypeError:
        raise TypeError(f"formats must be a list such as ('html', 'pdf') or a string 'html,pdf', got {formats!r}.") \
            from None
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise ValueError(f"formats must be one or more of {', '.join(FORMATS)}, got {formats!r}.")
    return fmts


def build_reports(
    source: Any,
    *,
    quarter: str,
    teams: Sequence[str] | None = None,
    as_of: Any = None,
    formats: "Sequence[str] | str" = ("html", "pdf"),
    out: "str | os.PathLike[str]" = "reports",
    jobs: int | None = None,
    org_overview: bool = True,
    force: bool = False,
    min_group_size: int = 5,
    progress: "bool | Callable[[TeamOutcome, int, int], Any]" = False,
    continue_on_error: bool = True,
    parameters: Mapping[str, Any] | None = None,
    notebook: "str | os.PathLike[str] | None" = None,
    cell_timeout: float | None = 600,
    executor: str = "local",
    scheduler: str | None = None,
    fiscal_year_start: int = 1,
) -> BuildResult:
    """Render the quarterly review report of every team (HTML and PDF), an index and a manifest.

    Parameters
    ----------
    source : path, URL, mapping or Dataset
        The data source, as for :func:`okr_analysis.load`. Loaded once per batch: a path or URL in a
        child process that also computes the shared analyses and exits before the reports render, so
        the batch process never holds the organisation's data (a Dataset or tables passed in are the
        caller's, and are let go of once the shared analyses are written).
    quarter : str
        Fiscal quarter such as ``"2026Q3"`` (or ``"latest"``); it must have objectives in the data.
    teams : list of str, optional
        Team ids to report on; default every team below the root (departments and teams).
    as_of : date, optional
        Data snapshot date shown in the reports; default the quarter end.
    formats : {"html", "pdf"} or "html,pdf"
        HTML is always written (the PDF is printed from it). Without Chromium, PDFs are
        skipped with a :class:`ReportWarning` saying how to get them.
    out : path
        Output root; files go to ``<out>/<quarter>/``.
    jobs : int, optional
        Worker processes (default ``os.cpu_count()``, at most one per report).
    org_overview : bool
        Also render the organisation overview (the root team's report, listed first).
    force : bool
        Re-render reports that are up to date.
    min_group_size : int
        People metrics of groups smaller than this are not shown (passed to the notebook).
    progress : bool or callable
        ``True`` shows a tqdm bar on stderr; a callable is called as
        ``progress(outcome, done, total)`` after each team.
    continue_on_error : bool
        ``True`` (default): a failing team never stops the others. ``False``: stop at the
        first failure, cancel the teams not started and raise :class:`BuildError`.
    parameters : mapping, optional
        Extra notebook parameters; each must be declared by the notebook.
    notebook : path, optional
        Another report notebook (default :data:`NOTEBOOK`); it must declare
        :data:`RUNNER_PARAMETERS`.
    cell_timeout : float or None
        Seconds one cell may run before the team fails (None: no limit).
    executor : {"local", "dask"}
        ``"local"``: worker processes on this machine. ``"dask"``: the workers of a Dask
        distributed cluster, each keeping a warm kernel, exporter and browser; outcomes, files,
        manifest and index are the same (see docs/guide/dask.md).
    scheduler : str, optional
        With ``executor="dask"``, the address of an existing cluster's scheduler
        (``tcp://HOST:PORT``); its workers must see the output folder and the source at the same
        paths (a shared filesystem). Default: a local cluster of ``jobs`` workers, closed afterwards.
    fiscal_year_start : int
        First month of the fiscal year, as for :func:`okr_analysis.load` (a path or URL source).

    Returns
    -------
    BuildResult
        Per-team outcomes (``status``, ``state``, paths, ``error`` with the failing cell's
        ``ename``/``evalue``), the manifest and ``ok``.

    Raises
    ------
    ValueError, TypeError
        Bad arguments, unknown teams (:class:`UnknownTeamsError`), a quarter without objectives
        (:class:`NoObjectivesError`) or notebook parameters — before anything runs.
    okr_analysis.ValidationError
        The source fails validation.
    BuildError
        With ``continue_on_error=False``, after the first failure.
    OSError
        With ``executor="dask"``: the scheduler cannot be reached or has no workers.
    """

    t_start = time.perf_counter()
    if multiprocessing.parent_process() is not None:
        raise RuntimeError(
            "build_reports was called while one of its worker processes was starting, which happens when a "
            "script calls it at top level: put the call under `if __name__ == \"__main__\":`."
        )
    # -- arguments, checked before any work ----------------------------------------
    fmts = _normalise_formats(formats)

    executor, scheduler = check_executor(executor, scheduler)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive whole number (or None for all CPUs), got {jobs!r}.")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size must be a whole number of people, 1 or more, got {min_group_size!r}.")
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be True, False or a callable(outcome, done, total), got {progress!r}.")
    if teams is not None and (isinstance(teams, str) or not all(isinstance(t, str) for t in teams)):
        raise TypeError(f"teams must be a list of team id strings, got {teams!r}.")
    extra = dict(parameters or {})
    nb_path = Path(notebook).resolve() if notebook is not None else NOTEBOOK
    if not nb_path.exists():
        raise FileNotFoundError(f"notebook {str(nb_path)!r} does not exist.")
    _check_parameters(nb_path, extra)
    # the root's report is the organisation overview (unless a single notebook was asked for)
    org_nb_path = ORG_NOTEBOOK.resolve() if notebook is None and ORG_NOTEBOOK.exists() else nb_path
    if org_nb_path != nb_path:
        _check_parameters(org_nb_path, extra)
    opts = BuildOptions(formats=fmts, out=Path(out), jobs=jobs, org_overview=org_overview, force=force,
                        min_group_size=min_group_size, progress=progress, continue_on_error=continue_on_error,
                        parameters=extra, notebook=nb_path, org_notebook=org_nb_path, template_dir=TEMPLATE_DIR,
                        cell_timeout=cell_timeout, executor=executor, scheduler=scheduler)

    # -- data, quarter, teams ------------------------------------------------------------
    # A path or URL is loaded in a child process that also computes the shared analyses and then
    # exits, so this process never holds the organisation's data and its memory does not grow with it.
    src_path = (str(Path(os.fspath(source)).resolve())
                if isinstance(source, (str, os.PathLike)) and "://" not in os.fspath(source) else None)
    data = _open_data(source, fiscal_year_start=fiscal_year_start)
    source = None  # held through `data` only: a Dataset handed over is let go once the shared analyses are written
    try:
        return _build(data, src_path, opts, quarter=quarter, teams=teams, as_of=as_of, t_start=t_start)
    finally:
        data.close()


def _build(data: "_LocalData | _ChildData", src_path: str | None, opts: BuildOptions, *, quarter: Any,
           teams: Sequence[str] | None, as_of: Any, t_start: float) -> BuildResult:
    """:func:`build_reports` once its arguments are checked and its data is open."""
    plan = data.plan(quarter=quarter, as_of=as_of)
    q, as_of_ts, tree, roots, order = plan.quarter, plan.as_of, plan.tree, plan.roots, plan.order
    known_ids = tree["team_id"].tolist()
    if teams is None:
        wanted = [t for t in known_ids if t not in roots]
    else:
        unknown = [t for t in teams if t not in set(known_ids)]
        if unknown:
            raise UnknownTeamsError(unknown, known_ids)
        wanted = list(dict.fromkeys(teams))
    if opts.org_overview:
        wanted = roots + [t for t in wanted if t not in roots]
    wanted.sort(key=lambda t: order.get(t, len(order)))
    files = {t: team_file_name(t) for t in known_ids}
    if len(set(files.values())) != len(files):  # pragma: no cover - a 40-bit hash collision
        raise ValueError("two team ids map to the same file name; rename one of them.")

    # -- PDF support -------------------------------------------------------------------
    messages: list[str] = []
    chromium = None
    if "pdf" in opts.formats:
        chromium, why = pdf_support()
        if chromium is None:
            messages.append(why)
            warnings.warn(why, ReportWarning, stacklevel=2)
    want_pdf = chromium is not None

    # -- keys: what a report depends on -------------------------------------------------
    input_hash = plan.input_hash
    nb_hash = _files_hash(sorted({opts.notebook, opts.org_notebook}))
    tpl_hash = _template_hash(opts.template_dir)
    pkg_hash = _package_hash()
    version = __version__
    base_key = _sha(input_hash, nb_hash, tpl_hash, pkg_hash, version, q.label, as_of_ts.date().isoformat(),
                    opts.min_group_size, opts.parameters)

    def key_of(tid: str) -> str:
        return _sha(base_key, tid, "org" if tid in roots else "team")

    src_label = src_path if src_path is not None else plan.source

    folder = Path(opts.out) / q.label
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    with _folder_lock(folder):
        _clean_temporaries(folder)
        previous = _read_manifest(folder / "build.json")
        prev_entries = {e["team_id"]: e for e in previous.get("teams", []) if isinstance(e, dict) and "team_id" in e}
        names = dict(zip(tree["team_id"], tree["team_name"]))
        dept_names = {tid: names.get(d) for tid, d in zip(tree["team_id"], tree["department_id"])}

        def base_entry(tid: str) -> dict[str, Any]:
            return {"team_id": tid, "team_name": names[tid], "kind": "org" if tid in roots else "team",
                    "department": dept_names.get(tid) if tid not in roots else None, "order": order.get(tid, 0),
                    "file": files[tid]}

        # Carry over teams of earlier batches that are still in the data; mark them stale if inputs changed.
        entries: dict[str, dict] = {}
        for tid, e in prev_entries.items():
            if tid in names and tid not in wanted:
                e = {**e, **base_entry(tid)}
                if e.get("state") == "ok" and e.get("key") != key_of(tid):
                    e["state"] = "stale"
                entries[tid] = e

        # Plan: skip what is up to date.
        tasks: list[dict[str, Any]] = []
        outcomes: dict[str, TeamOutcome] = {}
        for tid in wanted:
            prev = prev_entries.get(tid, {})
            stem = files[tid]
            needed = [folder / f"{stem}.html", folder / f"{stem}.ipynb"] + ([folder / f"{stem}.pdf"] if want_pdf else [])
            if (not opts.force and prev.get("key") == key_of(tid) and prev.get("state") == "ok"
                    and all(p.exists() for p in needed)):
                entry = {**prev, **base_entry(tid), "status": "skipped", "duration_s": 0.0,
                         "pdf": f"{stem}.pdf" if (folder / f"{stem}.pdf").exists() else None}
                entries[tid] = entry
                outcomes[tid] = _outcome_from_entry(entry, folder)
                continue
            if prev:  # until it is re-rendered, the index keeps listing the last good report (even if killed)
                entries[tid] = {**prev, **base_entry(tid)}
                if prev.get("state") == "ok" and prev.get("key") != key_of(tid):
                    entries[tid]["state"] = "stale"
            identity = {"title": f"{names[tid]} — {q.label} quarterly review", "team_id": tid,
                        "team_name": names[tid], "quarter": q.label, "as_of": as_of_ts.date().isoformat(),
                        "organisation": names[roots[0]] if roots else "", "version": version}
            tasks.append(ReportTask(
                team_id=tid, file=stem, folder=str(folder), pdf=want_pdf, identity=identity,
                notebook=str(opts.org_notebook if tid in roots else opts.notebook),
                footer=f"{names[tid]} · {q.label} quarterly review",
                parameters={"source": src_label, "team_id": tid, "quarter": q.label,
                            "as_of": as_of_ts.date().isoformat(), "min_group_size": opts.min_group_size,
                            "shared": "", **opts.parameters},
            ))

        header = {
            "tool": "okr-analysis", "version": version, "manifest_format": 1, "generated_at": _now(),
            "duration_s": None, "quarter": q.label, "organisation": names[roots[0]] if roots else "",
            "source": src_label, "input_hash": input_hash,
            "parameters": {"as_of": as_of_ts.date().isoformat(), "min_group_size": opts.min_group_size,
                           "formats": list(opts.formats), "jobs": opts.jobs, "executor": opts.executor,
                           "scheduler": opts.scheduler, "org_overview": opts.org_overview, "force": opts.force,
                           "teams": list(teams) if teams is not None else None, "extra": _jsonable(opts.parameters)},
            "notebook": {"path": str(opts.notebook), "org_path": str(opts.org_notebook), "sha256": nb_hash},
            "template": {"path": str(opts.template_dir), "sha256": tpl_hash},
            "package_sha256": pkg_hash,
            "pdf": {"requested": "pdf" in opts.formats, "available": want_pdf, "chromium": chromium},
            "shared": None, "messages": messages,
        }
        manifest = _Manifest(folder, header, entries, sorted(set(entries) | set(wanted),
                                                             key=lambda t: order.get(t, len(order))))

        done = len(outcomes)
        total = len(wanted)
        bar = None
        if opts.progress is True:
            bar = tqdm(total=total, initial=done, unit="report", desc=f"{q.label} reports", leave=True)

        def finish(tid: str, result: TaskResult | None, status: str | None = None,
                   write: bool = True) -> TeamOutcome:
            nonlocal done
            prev = prev_entries.get(tid, {})
            stem = files[tid]
            entry = {**base_entry(tid), "attempted_at": _now()}
            if status == "cancelled" or result is None:
                entry.update(status="cancelled", error=None, duration_s=0.0)
            elif result.error is not None:
                entry.update(status="failed", error=result.error_entry(), duration_s=result.duration_s)
            else:
                entry.update(status="rendered", error=None, duration_s=result.duration_s,
                             key=key_of(tid), rendered_at=_now(), summary=result.summary)
            if entry["status"] != "rendered":  # keep what the last good run published
                for k in ("key", "rendered_at", "summary"):
                    if k in prev:
                        entry[k] = prev[k]
            entry["html"] = f"{stem}.html" if (folder / f"{stem}.html").exists() else None
            entry["notebook"] = f"{stem}.ipynb" if (folder / f"{stem}.ipynb").exists() else None
            entry["pdf"] = f"{stem}.pdf" if (folder / f"{stem}.pdf").exists() else None
            entry["failed_html"] = f"{stem}.failed.html" if (folder / f"{stem}.failed.html").exists() else None
            entry["failed_notebook"] = (f"{stem}.failed.ipynb"
                                        if (folder / f"{stem}.failed.ipynb").exists() else None)
            if entry["status"] == "rendered":
                entry["state"] = "ok"
            elif entry["html"] and (entry["status"] == "failed" or prev.get("state") in ("ok", "stale")):
                entry["state"] = "stale"
            else:
                entry["state"] = "failed" if entry["status"] == "failed" else "missing"
            entries[tid] = entry
            outcome = _outcome_from_entry(entry, folder)
            outcomes[tid] = outcome
            done += 1
            if write:  # at once when files the last manifest named are gone (a failed report now rendered)
                manifest.write(force=bool(prev.get("failed_html") or prev.get("failed_notebook")))
            if bar is not None:
                bar.update(1)
                if not outcome.ok:
                    bar.set_postfix(failed=sum(1 for o in outcomes.values() if not o.ok))
            elif callable(opts.progress):
                opts.progress(outcome, done, total)
            return outcome

        stopped = False
        try:
            if tasks:
                shared = SharedSpec(quarter=q, as_of=as_of_ts, min_group_size=opts.min_group_size,
                                    input_hash=input_hash, source_label=src_label)
                stopped = _run_tasks(tasks, data=data, shared=shared, opts=opts, folder=folder, pkg_hash=pkg_hash,
                                     chromium=chromium, finish=finish, messages=messages, header=header,
                                     warm_early=plan.kpi_rows <= _WARM_EARLY_MAX_ROWS)
        finally:
            if bar is not None:
                bar.close()
            # Teams never attempted (interrupted or stopped) keep their previous entry or show as missing.
            for task in tasks:
                if task.team_id not in outcomes:
                    finish(task.team_id, None, status="cancelled", write=False)
            written = manifest.write(duration_s=round(time.perf_counter() - t_start, 3), messages=messages)

    result = BuildResult(
        quarter=q.label, folder=folder, teams=tuple(outcomes[t] for t in wanted if t in outcomes), manifest=written,
        manifest_path=folder / "build.json", index_path=folder / "index.html", messages=tuple(messages),
        duration_s=round(time.perf_counter() - t_start, 3),
    )
    if stopped:
        first = result.failures[0]
        raise BuildError(f"report of team {first.team_id!r} failed: {first.error}; stopped the batch "
                         "(continue_on_error=False).", result)
    return result
