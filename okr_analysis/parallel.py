"""Where batch work runs: this machine's worker processes, or a Dask distributed cluster.

``executor="local"`` (the default everywhere) keeps the work in this machine's processes.
``executor="dask"`` sends it to a Dask distributed cluster: the one at ``scheduler``
(``tcp://HOST:PORT``, as printed by ``dask scheduler``), or a local cluster started for the
run and closed after it. See docs/guide/dask.md.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import inspect
import logging
import multiprocessing
import os
import pickle
import queue
import signal
import tempfile
import threading
import uuid
import warnings
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
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


#: No ``shared`` object (None is one).
_NOTHING = object()


def _call_with(func: Callable, shared: Any, args: tuple) -> tuple[Any, list[tuple[type, str]]]:
    """:func:`_call_recording_warnings` of ``func(shared, *args)`` (``shared``: a Dask future, resolved by Dask)."""
    return _call_recording_warnings(func, (shared,) + args)


def map_ordered(func: Callable, items: Sequence[tuple], *, scheduler: str | None = None,
                n_workers: int | None = None, shared: Any = _NOTHING, progress: Callable[[int], Any] | None = None,
                stacklevel: int = 2) -> list[Any]:
    """``[func(*args) for args in items]`` computed on a Dask cluster, results in the order of ``items``;
    with ``shared``, ``[func(shared, *args) for args in items]``, ``shared`` sent to each worker once.

    Warnings raised on the workers are raised again here, in order; an exception raised by
    ``func`` is raised here. ``progress(1)`` is called as each item finishes.
    """
    # lazy import: optional executor: Dask's distributed adds ~0.4 s and is only needed with executor='dask'
    from distributed import as_completed

    if not items:
        return []
    with dask_client(scheduler, n_workers=min(n_workers or os.cpu_count() or 1, len(items))) as client:
        if shared is _NOTHING:
            futures = [client.submit(_call_recording_warnings, func, tuple(args), pure=False) for args in items]
        else:
            data = client.scatter(shared, broadcast=True, hash=False)
            futures = [client.submit(_call_with, func, data, tuple(args), pure=False) for args in items]
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


#: In a worker process: the object shared with the items of the current batch (:meth:`LocalWorkers.share`),
#: by its token. One at a time: a new token replaces the old object.
_SHARED: dict[str, Any] = {}


def _call_shared(path: str, token: str, func: Callable, args: tuple) -> tuple[Any, list[tuple[type, str]]]:
    """Run ``func(shared, *args)`` on a worker, ``shared`` read from ``path`` on the first item that needs it
    (then kept), as :func:`_call_recording_warnings`."""
    if token not in _SHARED:
        with open(path, "rb") as fh:
            shared = pickle.load(fh)
        _SHARED.clear()
        _SHARED[token] = shared
    return _call_recording_warnings(func, (_SHARED[token],) + args)


def _exit_quickly() -> None:
    """A worker's last act: leave without tearing the interpreter down. Registered when the worker starts
    (atexit runs the handlers registered after it first: those of the modules its tasks import); by then
    multiprocessing has flushed the standard streams (``BaseProcess._bootstrap``). A spawned worker
    otherwise exits as a whole Python program does, freeing every module and array one by one: 0.15 s of
    the parent's wall time at 1,000 teams (closing the pool waits for its workers), for nothing — its
    results were sent, and the parent removes the shared file."""
    os._exit(0)


def _init_worker() -> None:
    atexit.register(_exit_quickly)


class LocalWorkers:
    """``n`` worker processes of this machine (``spawn``: fresh interpreters), each importing ``warm`` as
    its first task. Made by :func:`local_workers`; used by :func:`map_local`. A worker leaves without the
    interpreter's teardown once the pool closes (:func:`_exit_quickly`).

    The workers ignore SIGINT: a Ctrl-C in the terminal (sent to the whole process group) reaches only
    the parent, which stops the work, instead of every worker printing its own KeyboardInterrupt
    traceback (as the Dask executor's local cluster does).
    """

    def __init__(self, n: int, warm: tuple[str, ...] = ()) -> None:
        self.n = int(n)
        self.pool = ProcessPoolExecutor(max_workers=self.n, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker)
        # the pool starts a process for each task submitted while none is idle (here, in this thread): the
        # spawned interpreters inherit the ignored SIGINT and keep it (Python installs its handler only when
        # SIGINT is at its default)
        restore = None
        if threading.current_thread() is threading.main_thread():
            restore = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            # one task per worker: the pool starts a process for each
            self.warming: list[Future] = [self.pool.submit(_warm, warm) for _ in range(self.n)]
        finally:
            if restore is not None:
                signal.signal(signal.SIGINT, restore)
        self._shared: tuple[Any, str, str] | None = None  # (object, token, file) of share()

    def share(self, obj: Any) -> tuple[str, str]:
        """Make ``obj`` available to the workers' items: pickled once into a temporary file, which each
        worker reads on its first item that needs it (the pool cannot address a given worker, a file can
        be read by any). Returns (file, token); sharing the same object again reuses them (the object
        must not have changed in between). The file is removed when another object is shared or the
        workers close."""
        if self._shared is not None and self._shared[0] is obj:
            return self._shared[2], self._shared[1]
        self._unshare()
        fd, path = tempfile.mkstemp(prefix="okr-analysis-shared-", suffix=".pickle")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(path)
            raise
        self._shared = (obj, uuid.uuid4().hex, path)
        return path, self._shared[1]

    def _unshare(self) -> None:
        if self._shared is not None:
            with contextlib.suppress(OSError):
                os.remove(self._shared[2])
            self._shared = None

    def close(self) -> None:
        try:
            self.pool.shutdown(wait=True, cancel_futures=True)
        finally:
            self._unshare()


@contextlib.contextmanager
def local_workers(n_workers: int, *, warm: Sequence[str] = ()) -> Iterator[LocalWorkers | None]:
    """``n_workers`` worker processes started now and stopped when the block ends (None when
    ``n_workers < 1``: :func:`map_local` then runs everything in this process).

    Started before the data are loaded, the workers import ``warm`` while this process loads: pass
    them to the analysis (``lead_lag(..., workers=)``).
    """
    if n_workers < 1:
        yield None
        return
    workers = LocalWorkers(n_workers, tuple(warm))
    try:
        yield workers
    finally:
        workers.close()


class _Deal:
    """The items of a :func:`map_local` call not yet started: this process takes them from the front, the
    workers from the back (so that each process gets runs of neighbouring items). Thread-safe: the
    workers' next items are taken in the pool's thread, as their previous ones finish."""

    def __init__(self, n: int) -> None:
        self.lock = threading.Lock()
        self.lo, self.hi, self.n = 0, n, n
        self.closed = False

    def take(self, front: bool) -> int | None:
        with self.lock:
            if self.closed or self.lo >= self.hi:
                return None
            if front:
                self.lo += 1
                return self.lo - 1
            self.hi -= 1
            return self.hi

    def close(self) -> int:
        """Stop dealing; returns the number of items the workers took."""
        with self.lock:
            self.closed = True
            return self.n - self.hi


def _succeeded(f: Future) -> bool:
    return not f.cancelled() and f.exception() is None


def map_local(func: Callable, items: Sequence[tuple], *, workers: LocalWorkers | None, shared: Any = _NOTHING,
              order: Sequence[int] | None = None, progress: Callable[[int], Any] | None = None,
              stacklevel: int = 2) -> list[Any]:
    """``[func(*args) for args in items]`` on this process and ``workers``, results in the order of
    ``items``; with ``shared``, ``[func(shared, *args) for args in items]``.

    The scheduling is dynamic: this process computes items from the front of ``order`` (the positions
    of the items, default in turn), each worker gets one from the back as soon as it is ready (its first,
    import task done: a spawned interpreter takes ~1.3 s to start) and its next one as soon as it has
    finished the previous, whatever this process is doing. Items neighbouring in ``order`` thus tend to
    run in the same process: put together those that share work a process can cache.

    ``shared`` (say, the data all items read) is sent to each worker once (:meth:`LocalWorkers.share`),
    not with every item; this process uses it as it is. Warnings raised by the items are raised again
    here in the order of ``items``; an exception raised by ``func`` is raised here, and no new item is
    started after it. ``progress(1)`` is called, in this thread, as each item finishes (a worker's item
    when this process next looks). Without workers, everything runs here. ``func``, ``shared`` and the
    items must be picklable (module-level functions, plain data).
    """
    items = [tuple(args) for args in items]
    seq = list(range(len(items))) if order is None else [int(i) for i in order]
    if sorted(seq) != list(range(len(items))):
        raise ValueError(f"order must list each position of the {len(items)} items once, got {order!r}.")
    pre = () if shared is _NOTHING else (shared,)
    if workers is None:
        done: list[Any] = [None] * len(items)
        for k in seq:
            done[k] = _call_recording_warnings(func, pre + items[k])
            if progress is not None:
                progress(1)
        return _replay_warnings(done, stacklevel=stacklevel + 1)
    if shared is not _NOTHING and items:
        path, token = workers.share(shared)
    results: list[Any] = [None] * len(items)
    finished: queue.SimpleQueue = queue.SimpleQueue()  # (index, Future) of the workers' items, as they end
    deal = _Deal(len(items))

    def submit(k: int) -> None:
        try:
            if shared is _NOTHING:
                f = workers.pool.submit(_call_recording_warnings, func, items[k])
            else:
                f = workers.pool.submit(_call_shared, path, token, func, items[k])
        except BaseException as exc:  # the pool is broken or shut down: the error is the item's
            f = Future()
            f.set_exception(exc)
        f.add_done_callback(lambda f: ended(k, f))

    def ended(k: int, f: Future) -> None:
        # runs in the pool's thread: refill the worker now, not when this process next looks
        finished.put((k, f))
        if _succeeded(f):
            feed()

    def feed() -> None:
        k = deal.take(front=False)
        if k is not None:
            submit(seq[k])

    for w in workers.warming:
        if w.done():
            if _succeeded(w):
                feed()
        else:
            w.add_done_callback(lambda w: feed() if _succeeded(w) else None)
    errors: dict[int, BaseException] = {}
    seen = 0

    def collect(block: bool) -> None:
        nonlocal seen
        while True:
            try:
                k, f = finished.get(block=block)
            except queue.Empty:
                return
            seen += 1
            exc = CancelledError() if f.cancelled() else f.exception()
            if exc is not None:
                errors[k] = exc
                deal.close()
            else:
                results[k] = f.result()
                if progress is not None:
                    progress(1)
            if block:
                return

    try:
        while not errors and (k := deal.take(front=True)) is not None:
            results[seq[k]] = _call_recording_warnings(func, pre + items[seq[k]])
            if progress is not None:
                progress(1)
            collect(block=False)
        taken = deal.close()
        while seen < taken:
            collect(block=True)
    except BaseException:
        deal.close()
        raise
    for w in workers.warming:  # a worker that could not import its modules (a broken installation)
        if w.done() and not w.cancelled() and w.exception() is not None:
            raise w.exception()
    if errors:
        raise errors[min(errors)]
    return _replay_warnings(results, stacklevel=stacklevel + 1)
