"""Running the batch's report tasks: on local worker processes, or on a Dask distributed cluster.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import shutil
import threading
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Sequence

import nbformat

from ..parallel import dask_client, n_threads
from .cache import cache_folder
from .data import _ChildData, _LocalData
from .manifest import _sha
from .results import TeamOutcome
from .shared import shared_analyses
from .tasks import BuildOptions, ReportTask, SharedSpec, TaskResult
from .worker import (
    _notebook_imports,
    _Worker,
    _worker_init,
    _worker_ready,
    _worker_run,
    _WorkerConfig,
)


def _run_tasks(tasks: list[ReportTask], *, data: "_LocalData | _ChildData", shared: SharedSpec, opts: BuildOptions,
               folder: Path, pkg_hash: str, chromium: str | None,
               finish: Callable[[str, TaskResult | None], TeamOutcome], messages: list[str], header: dict[str, Any],
               warm_early: bool = True) -> bool:
    """Start the workers, write the shared analyses, run the tasks. True if stopped early.

    ``data`` holds the dataset (here or in a child process); it is closed once the shared analyses are
    written. With ``warm_early`` the workers warm up meanwhile; without it (large data), they start after it
    is closed, so the batch's peak memory is the rendering's whatever the size of the data. ``finish``
    records one team's result (None: not attempted) in the manifest and returns its outcome."""
    nb_path = opts.notebook
    nb_meta = nbformat.read(nb_path, as_version=4).metadata
    kernel_name = nb_meta.get("kernelspec", {}).get("name", "python3")
    cache_root = cache_folder(folder)
    shutil.rmtree(folder / ".cache", ignore_errors=True)  # where earlier builds kept it: raw data in a published folder
    shutil.rmtree(cache_root / "logs", ignore_errors=True)  # kernel logs of the previous batch
    cache_key = _sha(shared.input_hash, pkg_hash, shared.quarter.label, shared.as_of.date().isoformat(),
                     shared.min_group_size, sorted(shared_analyses()))[:16]
    shared_dir = cache_root / cache_key
    cfg = _WorkerConfig(
        notebook=str(nb_path), template_dir=str(opts.template_dir), kernel_name=kernel_name, cwd=str(nb_path.parent),
        warm_imports=_notebook_imports(nb_path), chromium=chromium, cell_timeout=opts.cell_timeout,
        log_dir=str(cache_root / "logs"),
    )
    n_workers = max(1, min(opts.jobs or os.cpu_count() or 1, len(tasks)))

    def prepare_shared() -> None:
        """Write the shared analyses (once per input) and point every task at them."""
        if not shared_dir.exists():
            tmp = cache_root / f".{cache_key}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            data.write_shared(tmp, **shared.write_options())
            try:
                os.replace(tmp, shared_dir)
            except OSError:  # pragma: no cover - appeared meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        data.close()  # the notebooks read the shared folder from now on
        for old in cache_root.iterdir():
            if old.is_dir() and old.name not in (cache_key, "logs"):
                shutil.rmtree(old, ignore_errors=True)
        header["shared"] = str(shared_dir)
        for task in tasks:
            task.parameters["shared"] = str(shared_dir)
        tasks[:] = _longest_first(tasks, shared_dir, folder)

    pdf_note: list[bool] = []

    def handle(task: ReportTask, result: TaskResult | None, exc: BaseException | None) -> bool:
        """Record one team's result; True when the batch must stop (``continue_on_error=False``)."""
        if exc is not None or result is None:  # the worker process died (BrokenProcessPool, KilledWorker) or similar
            result = TaskResult.failed(task.team_id, "worker", exc)
        if result.pdf_error and not pdf_note:
            messages.append(f"PDFs were skipped: {result.pdf_error}")
            pdf_note.append(True)
        outcome = finish(task.team_id, result)
        return not outcome.ok and not opts.continue_on_error

    if opts.executor == "dask":
        return _run_tasks_dask(tasks, cfg=cfg, scheduler=opts.scheduler, jobs=opts.jobs, n_workers=n_workers,
                               prepare_shared=prepare_shared, handle=handle, warm_early=warm_early)

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init, initargs=(cfg,))
    stopped = False
    try:
        if not warm_early:
            prepare_shared()
        # Spawn every worker now: with small data, kernels, exporters and browsers warm up while the shared
        # analyses are computed.
        for _ in range(n_workers):
            pool.submit(_worker_ready)
        if warm_early:
            prepare_shared()
        pending = {}
        for task in tasks:
            pending[pool.submit(_worker_run, task)] = task
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                task = pending.pop(fut)
                if fut.cancelled():
                    continue
                try:
                    result, exc = fut.result(), None
                except Exception as err:
                    result, exc = None, err
                if handle(task, result, exc) and not stopped:
                    stopped = True
                    for other in pending:
                        other.cancel()
    except BaseException:  # KeyboardInterrupt and the like: stop now; every output file is atomic
        procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()  # their kernels and browsers exit with them (parent-death watch, closed pipe)
        raise
    pool.shutdown(wait=True, cancel_futures=True)
    return stopped


def _expected_cost(tasks: Sequence[ReportTask], shared_dir: Path, folder: Path) -> dict[str, float]:
    """Each task's expected rendering time, in arbitrary units: the seconds the last batch in ``folder`` took
    for it when it rendered it, else a count of what its notebook draws (its key results and monitored KPIs,
    from the shared analyses: one chart each). Cheap: two columns of two shared tables and the manifest."""
    import json

    import pandas as pd

    counts: dict[str, float] = {}
    for name, weight in (("kr_scores", 1.0), ("monitor", 1.5)):
        with contextlib.suppress(Exception):  # a notebook that needs neither: every task costs the same
            n = pd.read_parquet(shared_dir / f"{name}.parquet", columns=["team_id"])["team_id"].value_counts()
            for team, k in n.items():
                counts[str(team)] = counts.get(str(team), 0.0) + weight * float(k)
    last: dict[str, float] = {}
    with contextlib.suppress(Exception):  # no earlier batch, or an unreadable manifest
        entries = json.loads((folder / "build.json").read_text(encoding="utf-8")).get("teams", [])
        entries = entries.values() if isinstance(entries, dict) else entries
        last = {str(e["team_id"]): float(e["duration_s"]) for e in entries
                if e.get("status") == "rendered" and e.get("duration_s")}
    if len(last) == len({t.team_id for t in tasks}) and all(t.team_id in last for t in tasks):
        return {t.team_id: last[t.team_id] for t in tasks}
    return {t.team_id: 1.0 + counts.get(t.team_id, 0.0) for t in tasks}


def _longest_first(tasks: list[ReportTask], shared_dir: Path, folder: Path) -> list[ReportTask]:
    """The tasks, the most expensive first (ties: in the batch's order).

    Workers take tasks in submission order, so a long report started last keeps one worker busy while the
    others have finished: longest-processing-time-first scheduling leaves the short reports (parents, the
    overview) to fill the end. With 17 sample reports on 2 workers, reports of leaf teams with KPIs take
    about five times as long as a department's.
    """
    cost = _expected_cost(tasks, shared_dir, folder)
    return sorted(tasks, key=lambda t: -cost[t.team_id])  # sorted() is stable


# ==================================================================================
# The Dask executor: the same tasks on a Dask distributed cluster
# ==================================================================================
_DASK_IDLE: dict[_WorkerConfig, list[_Worker]] = {}


_DASK_LOCK = None  # a threading.Lock, made on first use in the Dask worker process


def _dask_lock():
    global _DASK_LOCK
    if _DASK_LOCK is None:
        _DASK_LOCK = threading.Lock()
    return _DASK_LOCK


def _dask_checkout(cfg: _WorkerConfig) -> _Worker:
    """A warm worker of this batch from the process's pool (made on first use; other batches' are closed)."""

    with _dask_lock():
        first = not _DASK_IDLE
        stale = [w for c, ws in _DASK_IDLE.items() if c != cfg for w in ws]
        for c in [c for c in _DASK_IDLE if c != cfg]:
            del _DASK_IDLE[c]
        idle = _DASK_IDLE.setdefault(cfg, [])
        worker = idle.pop() if idle else None
    for w in stale:
        w.close()
    if first and not stale:
        atexit.register(_dask_close)
    return worker if worker is not None else _Worker(cfg)


def _dask_checkin(cfg: _WorkerConfig, worker: _Worker) -> None:
    with _dask_lock():
        _DASK_IDLE.setdefault(cfg, []).append(worker)


def _dask_warm(cfg: _WorkerConfig) -> dict[str, Any]:
    """Dask task: start this worker's kernel, exporter and browser before the first team arrives."""
    _dask_checkin(cfg, _dask_checkout(cfg))
    return {"pid": os.getpid()}


def _dask_run(cfg: _WorkerConfig, task: ReportTask) -> TaskResult:
    """Dask task: one team's report, on a warm worker of the Dask worker process."""
    try:
        worker = _dask_checkout(cfg)
    except Exception as exc:
        return TaskResult.failed(task.team_id, "worker", exc)
    try:
        try:  # each Dask task thread holds its own checked-out worker while it runs
            return worker.run(task)
        except Exception as exc:
            return TaskResult.failed(task.team_id, "worker", exc)
    finally:
        _dask_checkin(cfg, worker)


def _dask_close() -> int:
    """Close every warm worker of this process (their kernels and browsers); run on each Dask worker at the end."""
    with _dask_lock():
        workers = [w for ws in _DASK_IDLE.values() for w in ws]
        _DASK_IDLE.clear()
    for w in workers:
        with contextlib.suppress(Exception):
            w.close()
    return len(workers)


def _dask_missing(paths: Sequence[str]) -> list[str]:
    """Dask task: which of ``paths`` this worker cannot see (or, for the output folder, cannot write)."""
    return [p for p in paths if not os.path.isdir(p) or not os.access(p, os.W_OK | os.X_OK)]


def _dask_check_paths(client: Any, scheduler: str | None, paths: list[str]) -> None:
    """Fail early, with what to do, when a worker cannot see the output folder or the batch's cache."""
    try:
        missing = client.run(_dask_missing, paths)
    except Exception:  # pragma: no cover - a worker left meanwhile: the tasks will report it
        return
    blind = {addr: m for addr, m in missing.items() if m}
    if blind:
        addr, paths_ = next(iter(blind.items()))
        raise OSError(
            f"{len(blind)} worker(s) of the Dask cluster at {scheduler or 'localhost'} cannot use "
            f"{', '.join(paths_)} (e.g. worker {addr}). The workers write the reports into the output folder "
            "and read the shared analyses from the batch cache: put the output folder on a filesystem the "
            "workers share, mounted at the same path, and set OKR_ANALYSIS_CACHE to a folder on it."
        )


def _run_tasks_dask(tasks: list[ReportTask], *, cfg: _WorkerConfig, scheduler: str | None, jobs: int | None,
                    n_workers: int, prepare_shared: Callable[[], None],
                    handle: Callable[[ReportTask, TaskResult | None, BaseException | None], bool],
                    warm_early: bool = True) -> bool:
    """Run the tasks on a Dask cluster (``scheduler``, or a local one); True if stopped early.

    With ``warm_early`` the workers warm up while the shared analyses are computed; without it, the shared
    analyses come first (the cluster is connected to, or a local one started, before them).

    At most one task per worker thread is in flight (``jobs`` lowers that), so stopping after a
    failure lets the running teams finish and starts no other — as the local executor does.
    """

    # lazy import: optional executor: Dask's distributed adds ~0.4 s and is only needed with executor='dask'
    from distributed import as_completed


    token = uuid.uuid4().hex[:8]
    with dask_client(scheduler, n_workers=n_workers) as client:  # first: an unreachable scheduler fails at once
        slots = n_threads(client)
        if jobs:
            slots = min(slots, jobs)
        slots = max(1, min(slots, len(tasks)))
        workers = list(client.scheduler_info().get("workers", {}))[:slots]
        in_flight: dict[Any, dict[str, Any]] = {}
        try:
            if not warm_early:
                prepare_shared()
            # Warm each worker's kernel, exporter and browser (while the shared analyses are computed here).
            warm = [client.submit(_dask_warm, cfg, pure=False, workers=[w], allow_other_workers=True,
                                  key=f"okr-report-warm-{token}-{i}") for i, w in enumerate(workers)]
            if warm_early:
                prepare_shared()
            _dask_check_paths(client, scheduler, [tasks[0].folder, tasks[0].parameters["shared"]])
            queue = list(enumerate(tasks))
            stopped = False
            running = as_completed(loop=client.loop)

            def submit_next() -> None:
                i, task = queue.pop(0)
                fut = client.submit(_dask_run, cfg, task, pure=False, key=f"okr-report-{token}-{i}")
                in_flight[fut] = task
                running.add(fut)

            for _ in range(min(slots, len(queue))):
                submit_next()
            for fut in running:
                task = in_flight.pop(fut)
                try:
                    result, exc = fut.result(), None
                except Exception as err:  # KilledWorker (the worker process died), lost connection …
                    result, exc = None, err
                if handle(task, result, exc):
                    stopped = True
                    queue.clear()  # the teams not started stay cancelled
                if queue and not stopped:
                    submit_next()
            del warm
        except BaseException:  # KeyboardInterrupt and the like: cancel, close the client (and a local cluster)
            with contextlib.suppress(Exception):
                client.cancel(list(in_flight))
            raise
        finally:
            with contextlib.suppress(Exception):  # no kernels or browsers left behind on a shared cluster
                client.run(_dask_close)
    return stopped
