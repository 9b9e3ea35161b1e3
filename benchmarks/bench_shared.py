"""Benchmark: the report batch's shared analyses at 100, 500 and 2,000 teams — time and memory peak.

Issue 9 asks the report batch to stream, its memory flat as the organisation grows. The per-team
rendering is measured by ``bench_scale.py``; what grows with the organisation is the batch process's
one-off *shared-analysis phase*: loading the data and computing the org-wide tables every report reads
(``okr_analysis.reports.SHARED_ANALYSES``: scores, monitoring, peer benchmarks, the driver screen,
lagged correlations, forecasts). This script measures that phase alone.

For each size a synthetic organisation is written with ``okr-analysis sample DIR --teams N --format
parquet`` (seed 0, 156 weeks). Then, each in a fresh child process (so a peak is that step's own):

* ``load``: ``okr_analysis.load(DIR)``;
* every shared analysis: load, release the loading's scratch memory (``malloc_trim``), then the
  analysis; its figure is the peak resident set size (RSS) above the loaded dataset, sampled every
  10 ms, and its wall time;

once with the current package and once with the package of ``--baseline`` (default ``ce25867``, the
code before the memory work; unpacked with ``git archive`` and put first on ``PYTHONPATH``), in the same
run, on the same files. Two more steps time the weekly KPI panel every driver analysis starts from:
``kpi_panel`` and the plain pandas way a user would write it (string groupby, pivot, each team reindexed
to its range of weeks; ``tests/test_resample.py`` checks the two agree).

Results: ``benchmarks/results/shared.json`` and ``shared.md``.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_shared.py                  # 100, 500, 2,000 teams (~15 min)
    .venv/bin/python benchmarks/bench_shared.py --sizes 100 --no-baseline
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BIN = Path(sys.executable).parent
QUARTER = "2026Q3"


def child(source: str, name: str) -> None:
    """Run one step in this (fresh) process and print its figures as JSON."""
    import ctypes
    import gc
    import threading
    import warnings

    import psutil
    import pyarrow as pa

    pa.set_memory_pool(pa.system_memory_pool())  # as the CLI does
    proc = psutil.Process()
    peak = [0]

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    import okr_analysis
    from okr_analysis.io import Quarter
    from okr_analysis.reports import SHARED_ANALYSES

    warnings.simplefilter("ignore")
    gc.collect()
    before = proc.memory_info().rss
    peak[0] = before
    t0 = time.perf_counter()
    ds = okr_analysis.load(source)
    out = {"rows": len(ds.kpis)}
    if name == "load":
        out.update(seconds=time.perf_counter() - t0, base_mb=before / 2**20, peak_mb=peak[0] / 2**20)
    else:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        time.sleep(0.05)
        base = proc.memory_info().rss
        peak[0] = base
        q = Quarter.parse(QUARTER)
        t0 = time.perf_counter()
        if name == "kpi_panel":  # the wide panel every driver analysis starts from
            from okr_analysis.resample import kpi_panel

            table = kpi_panel(ds, "W")
        elif name == "kpi_panel (plain pandas)":
            table = naive_panel(ds)
        else:
            table = SHARED_ANALYSES[name](ds, quarter=q, as_of=q.end, min_group_size=5)
        out.update(seconds=time.perf_counter() - t0, base_mb=base / 2**20, peak_mb=peak[0] / 2**20,
                   table_rows=len(table))
    time.sleep(0.05)
    out["peak_mb"] = max(out["peak_mb"], peak[0] / 2**20)
    out["extra_mb"] = out["peak_mb"] - out["base_mb"]
    print(json.dumps(out))


def naive_panel(ds):
    """The weekly panel the plain pandas way: group the KPI rows by their strings, pivot, then reindex each
    team to its full range of weeks (what okr_analysis.resample did before it worked on integer codes)."""
    import pandas as pd

    from okr_analysis.resample import period_start

    k = ds.kpis.dropna(subset=["value"])
    k = k.assign(period_start=period_start(k["date"], "W", fiscal_year_start=ds.fiscal_year_start).to_numpy())
    agg = ds.metrics.set_index("metric")["aggregation"]
    parts = []
    for how, sub in k.groupby(k["metric"].map(agg).fillna("mean")):
        g = sub.sort_values("date").groupby(["team_id", "metric", "period_start"])["value"]
        parts.append(getattr(g, how)().reset_index())
    long = pd.concat(parts)
    wide = long.pivot_table(index=["team_id", "period_start"], columns="metric", values="value", aggfunc="first")
    pieces = []
    for team, sub in wide.groupby(level="team_id"):
        idx = sub.index.get_level_values("period_start")
        pieces.append(sub.droplevel("team_id").reindex(pd.date_range(idx.min(), idx.max(), freq="7D"))
                      .assign(team_id=team).set_index("team_id", append=True).swaplevel())
    return pd.concat(pieces)


def measure(source: Path, name: str, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run([sys.executable, __file__, "--child", str(source), name], check=True,
                          capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def package_at(commit: str, into: Path) -> str:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "okr_analysis"], check=True,
                             capture_output=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into)


def names() -> list[str]:
    out = subprocess.run([sys.executable, "-c", "from okr_analysis.reports import SHARED_ANALYSES as S; "
                          "print(' '.join(S))"], check=True, capture_output=True, text=True)
    return ["load"] + out.stdout.split() + ["kpi_panel", "kpi_panel (plain pandas)"]


def commit_of(ref: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], check=True,
                          capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,500,2000")
    ap.add_argument("--baseline", default="ce25867", help="commit to compare with, in the same run")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    steps = names()
    with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
        tmp = Path(tmp)
        codes = {"current": None}
        if not args.no_baseline:
            codes[f"baseline {commit_of(args.baseline)}"] = package_at(args.baseline, tmp / "baseline")
        results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "platform": platform.platform()},
                   "code": {"current": commit_of("HEAD") + (" + uncommitted changes" if subprocess.run(
                       ["git", "-C", str(REPO), "status", "--porcelain", "okr_analysis"], capture_output=True,
                       text=True).stdout.strip() else "")},
                   "baseline": None if args.no_baseline else commit_of(args.baseline),
                   "when": time.strftime("%Y-%m-%d %H:%M:%S"), "sizes": {}}
        for n in sizes:
            data = tmp / f"org{n}"
            subprocess.run([str(BIN / "okr-analysis"), "sample", str(data), "--teams", str(n), "--format",
                            "parquet"], check=True, capture_output=True)
            per = {}
            for label, path in codes.items():
                per[label] = {}
                for step in steps:
                    if step == "kpi_panel (plain pandas)" and path:  # the same code either way
                        continue
                    per[label][step] = measure(data, step, path)
                    print(f"{n:>5} teams  {label:<18} {step:<20} {per[label][step]['seconds']:7.1f} s  "
                          f"+{per[label][step]['extra_mb']:6.0f} MB (peak {per[label][step]['peak_mb']:.0f})",
                          flush=True)
            results["sizes"][str(n)] = per
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shared.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "shared.md").write_text(markdown(results))
    print((RESULTS / "shared.md").read_text())


def markdown(res: dict) -> str:
    sizes = list(res["sizes"])
    labels = list(res["sizes"][sizes[0]])
    steps = list(res["sizes"][sizes[0]][labels[0]])
    lines = ["# The report batch's shared analyses at scale: time and memory peak", "",
             "Produced by `benchmarks/bench_shared.py` (see its docstring). Each step runs in a fresh process "
             "on a synthetic organisation (`okr-analysis sample --teams N --format parquet`, seed 0, 156 weeks). "
             "*load*: peak RSS of the process loading the data (interpreter and libraries included). "
             "Each analysis: its peak RSS **above** the loaded dataset (MB) and its wall time (s).", "",
             f"{res['when']}, {res['machine']['cpus']} CPUs, Python {res['machine']['python']}. Code: current = "
             f"{res['code']['current']}" + (f"; baseline = {res['baseline']} (before the memory work)"
                                           if res["baseline"] else "") + ".", ""]
    head = "| step | " + " | ".join(f"{n} teams: {lab}" for n in sizes for lab in labels) + " |"
    lines += [head, "|---|" + "---:|" * (len(sizes) * len(labels))]
    for step in steps:
        cells = []
        for n in sizes:
            for lab in labels:
                r = res["sizes"][n][lab].get(step)
                if r is None:
                    cells.append("")
                    continue
                mb = r["peak_mb"] if step == "load" else r["extra_mb"]
                cells.append(f"{r['seconds']:.1f} s, {'' if step == 'load' else '+'}{mb:,.0f} MB")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines.append("")
    for lab in labels:
        analyses = [s for s in steps if s not in ("load", "kpi_panel", "kpi_panel (plain pandas)")]
        worst = {n: max(res["sizes"][n][lab][s]["peak_mb"] for s in ["load"] + analyses) for n in sizes}
        total = {n: sum(res["sizes"][n][lab][s]["seconds"] for s in analyses) for n in sizes}
        lines.append(f"- {lab}: largest peak RSS of the load and the shared analyses " + ", ".join(
            f"{worst[n]:,.0f} MB at {n} teams" for n in sizes) + "; analyses' time " + ", ".join(
            f"{total[n]:.0f} s" for n in sizes) + ".")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
