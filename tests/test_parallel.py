"""This machine's worker processes (``okr_analysis.parallel``): real spawned processes, nothing mocked.

``map_local`` refills a worker as soon as its item ends (not when this process has finished its own),
sends a shared object to each worker once, keeps the results and the warnings in the items' order and
raises an item's error; ``lead_lag`` with the caller's workers (each holding a copy of the frame and
building its pairs' series from it) gives the in-process result.
"""

from __future__ import annotations

import os
import time
import warnings
from concurrent.futures import wait
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from okr_analysis.parallel import local_workers, map_local

pytestmark = pytest.mark.timeout(300)

# ----------------------------------------------------------------------------------
# Items (module level: the workers import this module to run them)
# ----------------------------------------------------------------------------------
def _wait_for_two_worker_items(parent: int, folder: str, i: int) -> tuple[int, bool, int]:
    """In the ``parent`` process: wait until the worker has finished two items, which it can only do if it
    got its second while the parent was still busy here. In the worker: leave a mark."""
    if os.getpid() != parent:
        Path(folder, f"worker-{i}").touch()
        return i, False, 0
    deadline = time.monotonic() + 60  # a guard against a hang, not a timing: the worker needs milliseconds
    while len(list(Path(folder).glob("worker-*"))) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the worker did not get a second item while this process was busy")
        time.sleep(0.01)
    return i, True, len(list(Path(folder).glob("worker-*")))


def _scaled(shared: dict, i: int) -> tuple[int, float, int, int]:
    """An item reading the shared object: its value, this process and the copy of the object it sees."""
    warnings.warn(f"item {i}", UserWarning)
    return i, float(shared["values"][i] * shared["factor"]), os.getpid(), id(shared)


def _fails_on(bad: int, i: int) -> int:
    if i == bad:
        raise ValueError(f"item {i} is bad")
    return i


def _write_unfinished_line(i: int) -> int:
    """A worker writing to its standard streams without ending the line (nothing flushes it but the exit)."""
    import sys

    if i:
        print(f"worker says {i}", end="", flush=False)
        print(f"worker warns {i}", end="", file=sys.stderr, flush=False)
    return i


def test_a_closing_worker_flushes_what_it_wrote():
    """Workers leave without the interpreter's teardown (``_exit_quickly``), after their streams are flushed:
    a line a worker did not end still arrives."""
    import subprocess
    import sys

    code = ("from okr_analysis.parallel import local_workers, map_local\n"
            "from concurrent.futures import wait\n"
            "import test_parallel as T\n"
            "if __name__ == '__main__':\n"
            "    with local_workers(1) as w:\n"
            "        wait(w.warming)\n"
            "        print(map_local(T._write_unfinished_line, [(0,), (1,)], workers=w))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    assert proc.returncode == 0, proc.stderr
    assert "worker says 1" in proc.stdout and "worker warns 1" in proc.stderr and "[0, 1]" in proc.stdout


@pytest.fixture(scope="module")
def workers():
    """One worker process, ready (its imports done): each map_local call gives it an item at once."""
    with local_workers(1, warm=("okr_analysis.leadlag",)) as w:
        wait(w.warming)
        yield w


# ----------------------------------------------------------------------------------
# map_local
# ----------------------------------------------------------------------------------
def test_a_worker_gets_its_next_item_while_this_process_is_busy(workers, tmp_path):
    # this process takes item 0 and waits in it for the worker to finish two items (3, then 2)
    out = map_local(_wait_for_two_worker_items, [(os.getpid(), str(tmp_path), i) for i in range(4)], workers=workers)
    assert [o[0] for o in out] == [0, 1, 2, 3]
    assert out[0][1] and out[0][2] >= 2
    assert not out[3][1] and not out[2][1]  # the workers take items from the back


def test_the_shared_object_reaches_each_worker_once_and_keeps_results_and_warnings_in_order(workers):
    shared = {"values": np.arange(12.0), "factor": 2.5}
    items = [(i,) for i in range(12)]
    order = [5, 0, 11, 3, 1, 2, 4, 6, 7, 8, 9, 10]
    runs = {}
    for name, w in (("workers", workers), ("here", None)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs[name] = map_local(_scaled, items, workers=w, shared=shared, order=order)
        assert [str(c.message) for c in caught] == [f"item {i}" for i in range(12)]
    for name, out in runs.items():
        assert [o[:2] for o in out] == [(i, i * 2.5) for i in range(12)], name
    copies = {(pid, ident) for _, _, pid, ident in runs["workers"] if pid != os.getpid()}
    assert len(copies) == 1  # the worker did items, all with one copy: the object was read once
    assert {(pid, ident) for _, _, pid, ident in runs["here"]} == {(os.getpid(), id(shared))}  # this process: as is
    path = workers._shared[2]
    assert Path(path).exists()
    with local_workers(1) as other, pytest.warns(UserWarning, match="item"):
        map_local(_scaled, items[:2], workers=other, shared=shared)
        other_path = other._shared[2]
    assert not Path(other_path).exists()  # removed when the workers close


def test_an_error_in_a_workers_item_is_raised_here(workers):
    with pytest.raises(ValueError, match="item 5 is bad"):
        map_local(_fails_on, [(5, i) for i in range(6)], workers=workers)  # the worker takes item 5 first
    assert map_local(_fails_on, [(-1, i) for i in range(6)], workers=workers) == list(range(6))  # still usable


def test_order_must_list_every_item_once(workers):
    with pytest.raises(ValueError, match="order must list"):
        map_local(divmod, [(1, 1), (2, 1)], workers=workers, order=[0, 0])


# ----------------------------------------------------------------------------------
# lead_lag with the caller's workers
# ----------------------------------------------------------------------------------
def _panel(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    G, T = 8, 110
    e = rng.standard_normal((4, G, T))
    x = np.cumsum(e[0], axis=1) * 0.3 + e[1]  # a trend: its pairs are differenced (and tested in levels)
    y = 0.5 * np.roll(x, 2, axis=1) + e[2]
    z = e[3]
    frame = pd.DataFrame({"team": np.repeat([f"t{i}" for i in range(G)], T), "t": np.tile(np.arange(T), G),
                          "lead": x.ravel(), "lag": y.ravel(), "other": z.ravel()})
    frame.loc[(frame["team"] == "t1") & (frame["t"] > 20), "other"] = np.nan  # a team too short: a warning
    return frame


def test_lead_lag_with_the_callers_workers_gives_the_in_process_result(workers):
    from okr_analysis.leadlag import lead_lag_frame

    frame = _panel()
    kw = dict(leading=["lead", "other"], lagging=["lag", "other", "lead"], time="t", team="team", by_team=True)
    with warnings.catch_warnings(record=True) as w1:
        warnings.simplefilter("always")
        one = lead_lag_frame(frame, **kw)
    with warnings.catch_warnings(record=True) as w2:
        warnings.simplefilter("always")
        two = lead_lag_frame(frame, workers=workers, **kw)
    assert (one.transforms["transform"] == "diff").any()
    for name in ("table", "lags", "granger", "forecasts", "transforms"):
        assert getattr(two, name).to_csv() == getattr(one, name).to_csv(), name
    assert two.options == one.options
    assert [str(w.message) for w in w2 if "lead_lag" in str(w.message)] == \
        [str(w.message) for w in w1 if "lead_lag" in str(w.message)]


def test_workers_and_jobs_together_are_an_error(workers):
    from okr_analysis.leadlag import lead_lag_frame

    with pytest.raises(ValueError, match="not both"):
        lead_lag_frame(_panel(), pairs=[("lead", "lag")], time="t", team="team", jobs=2, workers=workers)
    with pytest.raises(TypeError, match="local_workers"):
        lead_lag_frame(_panel(), pairs=[("lead", "lag")], time="t", team="team", workers=2)


def test_drivers_command_with_two_processes_writes_the_same_file(sample_dir, tmp_path):
    from okr_analysis.cli import cli

    for by_team in ([], ["--by-team"]):
        outs = []
        for jobs in ("1", "2"):
            out = tmp_path / f"d{jobs}{len(by_team)}.csv"
            res = CliRunner().invoke(cli, ["drivers", str(sample_dir), "--out", str(out), "-j", jobs, *by_team])
            assert res.exit_code == 0, res.output
            outs.append(out.read_bytes())
        assert outs[0] == outs[1]


def test_the_frame_sent_to_the_workers_comes_back_whole():
    """``_Frame`` pickles each table of per-team arrays as one array: every team's arrays come back equal,
    deseasoned values and raw ones alike."""
    import pickle

    from okr_analysis.leadlag import _Frame

    panel = _panel()
    panel["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(panel["t"] * 7, unit="D")
    frame = _Frame(panel.iloc[5:], time="t", team="team", metrics=["lead", "lag", "other"])  # one team shorter
    assert frame.deseason("W", None) > 0
    copy = pickle.loads(pickle.dumps(frame))
    assert copy.teams == frame.teams and copy.metrics == frame.metrics and copy.season == frame.season
    for table in ("values", "raw"):
        for m in frame.metrics:
            for t in frame.teams:
                a, b = getattr(frame, table)[m][t], getattr(copy, table)[m][t]
                assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), (table, m, t)
    for table in ("periods", "pcodes"):
        for t in frame.teams:
            assert np.array_equal(getattr(frame, table)[t], getattr(copy, table)[t])
    empty = pickle.loads(pickle.dumps(_Frame(panel.iloc[:0], time="t", team="team", metrics=["lead"])))
    assert empty.teams == [] and empty.values == {"lead": {}}
