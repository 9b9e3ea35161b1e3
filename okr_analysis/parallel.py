"""Where batch work runs: this machine's worker processes, or a Dask distributed cluster.

``executor="local"`` (the default everywhere) keeps the work in this machine's processes.
``executor="dask"`` sends it to a Dask distributed cluster: the one at ``scheduler``
(``tcp://HOST:PORT``, as printed by ``dask scheduler``), or a local cluster started for the
run and closed after it. See docs/guide/dask.md.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import multiprocessing
import os
import signal
import threading
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

__all__ = ["EXECUTORS", "check_executor", "dask_client", "LocalWorkers", "local_workers", "map_local", "map_ordered"]

#: The executors a batch can use.
EXECUTORS = ("local", "dask")
#: Seconds to wait for a scheduler to answer (and for a worker to join it).
CONNECT_TIMEOUT = 10


def check_executor(executor: Any, scheduler: Any) -> tuple[str, str | None]:
    """Validate ``executor`` and ``scheduler``; returns them normalised."""
    if executor is None:
        executor = "local"
    if not isinstance(executor, str) or executor.lower() not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(map(repr, EXECUTORS))}, got {executor!r}.")
    executor = executor.lower()
    if scheduler is not None and not (isinstance(scheduler, str) and scheduler.strip()):
        raise TypeError(f"scheduler must be an address such as 'tcp://10.0.0.5:8786', got {scheduler!r}.")
    if scheduler is not None:
        scheduler = scheduler.strip()
        if executor != "dask":
            raise ValueError(f"scheduler={scheduler!r} needs executor='dask' (the local executor has no scheduler).")
        if "://" not in scheduler:
            raise ValueError(f"scheduler must be an address such as 'tcp://10.0.0.5:8786' (the address "
                             f"`dask scheduler` prints), got {scheduler!r}.")
    return executor, scheduler


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of the cluster at ``scheduler``, or of a local cluster started for the block.

    The local cluster has ``n_workers`` single-threaded worker processes on 127.0.0.1 and no
    dashboard. Both are closed when the block ends (an existing cluster keeps running).

    Raises
    ------
    ImportError
        The ``distributed`` package is not installed.
    OSError
        The scheduler cannot be reached, or has no workers.
    """
    try:
        # lazy import: optional executor: Dask's distributed adds ~0.4 s and is only needed with executor='dask'
        import distributed
    except ImportError:  # pragma: no cover - a dependency of the package
        raise ImportError("executor='dask' needs the distributed package: pip install 'dask[distributed]'.") from None
    # distributed logs every connection at INFO (its own default level): keep that out of a run whose
    # caller did not ask for INFO logs (the CLI without -v), as the local executor is quiet.
    dlog = logging.getLogger("distributed")
    old_level = dlog.level
    if logging.getLogger().getEffectiveLevel() > logging.INFO and dlog.getEffectiveLevel() < logging.WARNING:
        dlog.setLevel(logging.WARNING)
    try:
        yield from _client(distributed, scheduler, n_workers)
    finally:
        dlog.setLevel(old_level)


def _client(distributed: Any, scheduler: str | None, n_workers: int | None) -> Iterator[Any]:
    cluster = None
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except Exception as exc:  # OSError, TimeoutError, ValueError of a bad address …
            raise OSError(
                f"could not connect to the Dask scheduler at {scheduler} ({type(exc).__name__}: {_first_line(exc)}). "
                "Check the address (tcp://HOST:PORT, as printed by `dask scheduler`) and that the scheduler "
                "is running and reachable from this machine; or leave out --scheduler to use a local cluster."
            ) from None
    else:
        # The worker processes inherit an ignored SIGINT: a Ctrl-C in the terminal (sent to the whole process
        # group) then reaches only this process, which cancels the work and closes the cluster, instead of
        # every worker printing its own KeyboardInterrupt traceback.

        restore = None
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cluster = distributed.LocalCluster(
                n_workers=max(1, n_workers or os.cpu_count() or 1), threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
            )
        finally:
            if restore is not None:
                signal.signal(signal.SIGINT, restore)
        client = distributed.Client(cluster, set_as_default=False)
    try:
        if scheduler is not None:
            try:
                client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
            except Exception:
                raise OSError(f"the Dask scheduler at {scheduler} has no workers; start some with "
                              f"`dask worker {scheduler}` on machines with okr-analysis installed.") from None
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def n_threads(client: Any) -> int:
    """Task slots of the cluster (the sum of its workers' threads)."""
    info = client.scheduler_info(n_workers=-1) if _takes_n_workers(client) else client.scheduler_info()
    return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))


def _takes_n_workers(client: Any) -> bool:
    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def _call_recording_warnings(func: Callable, args: tuple) -> tuple[Any, list[tuple[type, str]]]:
    """Run ``func(*args)`` on a worker; return its result and the warnings it raised (replayed by the caller)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args)
    return result, [(w.category, str(w.message)) for w in caught]


def _replay_warnings(done: Sequence[tuple[Any, list[tuple[type, str]]]], *, stacklevel: int) -> list[Any]:
    """The results of :func:`_call_recording_warnings` calls, their warnings raised again here in order
    (``stacklevel`` counted from the caller of this function)."""
    results = []
    for result, caught in done:
        for category, message in caught:
            warnings.warn(message, category, stacklevel=stacklevel + 1)
        results.append(result)
    return results


def map_ordered(func: Callable, items: Sequence[tuple], *, scheduler: str | None = None,
                n_workers: int | None = None, progress: Callable[[int], Any] | None = None,
                stacklevel: int = 2) -> list[Any]:
    """``[func(*args) for args in items]`` computed on a Dask cluster, results in the order of ``items``.

    Warnings raised on the workers are raised again here, in order; an exception raised by
    ``func`` is raised here. ``progress(1)`` is called as each item finishes.
    """
    # lazy import: optional executor: Dask's distributed adds ~0.4 s and is only needed with executor='dask'
    from distributed import as_completed

    if not items:
        return []
    with dask_client(scheduler, n_workers=min(n_workers or os.cpu_count() or 1, len(items))) as client:
        futures = [client.submit(_call_recording_warnings, func, tuple(args), pure=False) for args in items]
        try:
            if progress is not None:
                for _ in as_completed(futures, loop=client.loop):
                    progress(1)
            done = client.gather(futures)
        except BaseException:
            with contextlib.suppress(Exception):
                client.cancel(futures)
            raise
    return _replay_warnings(done, stacklevel=stacklevel + 1)


def _warm(modules: tuple[str, ...]) -> None:
    """A worker's first task: import ``modules`` (by name: this module sits below the analyses that use
    it), so that the import cost is paid while the parent process is still busy."""
    for name in modules:
        importlib.import_module(name)


class LocalWorkers:
    """``n`` worker processes of this machine (``spawn``: fresh interpreters), each importing ``warm`` as
    its first task. Made by :func:`local_workers`; used by :func:`map_local`."""

    def __init__(self, n: int, warm: tuple[str, ...] = ()) -> None:
        self.n = int(n)
        self.pool = ProcessPoolExecutor(max_workers=self.n, mp_context=multiprocessing.get_context("spawn"))
        # one task per worker: the pool starts a process for each (it starts them on demand)
        self.warming: list[Future] = [self.pool.submit(_warm, warm) for _ in range(self.n)]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def local_workers(n_workers: int, *, warm: Sequence[str] = ()) -> Iterator[LocalWorkers | None]:
    """``n_workers`` worker processes started now and stopped when the block ends (None when
    ``n_workers < 1``: :func:`map_local` then runs everything in this process)."""
    if n_workers < 1:
        yield None
        return
    workers = LocalWorkers(n_workers, tuple(warm))
    try:
        yield workers
    finally:
        workers.close()


def map_local(func: Callable, items: Sequence[tuple], *, workers: LocalWorkers | None,
              progress: Callable[[int], Any] | None = None, stacklevel: int = 2) -> list[Any]:
    """``[func(*args) for args in items]`` on this process and ``workers``, results in the order of
    ``items``.

    The scheduling is dynamic: each idle worker gets the next item while this process computes the
    next one itself, so a worker still starting (a spawned interpreter importing its modules, ~1.3 s)
    delays nothing: it gets items only once it has finished its first task. Warnings raised by the
    items are raised again here in the order of ``items``; an exception raised by ``func`` is raised
    here. ``progress(1)`` is called as each item finishes. Without workers, everything runs here.
    ``func`` and the items must be picklable (module-level functions, plain data).
    """
    items = [tuple(args) for args in items]
    done: list[Any] = [None] * len(items)
    # the futures of the workers' tasks: item index, or -1 for a worker's first (import) task
    inflight: dict[Future, int] = {} if workers is None else {f: -1 for f in workers.warming if not f.done()}
    n = 0 if workers is None else workers.n
    nxt = 0
    while nxt < len(items) or any(i >= 0 for i in inflight.values()):
        while nxt < len(items) and len(inflight) < n:  # an idle worker: give it the next item
            inflight[workers.pool.submit(_call_recording_warnings, func, items[nxt])] = nxt
            nxt += 1
        if nxt < len(items):  # this process takes the next item itself
            done[nxt] = _call_recording_warnings(func, items[nxt])
            nxt += 1
            if progress is not None:
                progress(1)
            finished = [f for f in inflight if f.done()]
        else:
            finished = list(wait([f for f, i in inflight.items() if i >= 0], return_when=FIRST_COMPLETED).done)
        for f in finished:
            i = inflight.pop(f)
            result = f.result()  # raises the item's exception (or the worker's import error)
            if i >= 0:
                done[i] = result
                if progress is not None:
                    progress(1)
    return _replay_warnings(done, stacklevel=stacklevel + 1)
