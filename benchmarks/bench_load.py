"""Benchmark: loading and validating 10 million KPI rows from Parquet and from CSV, with the memory peak.

Data: a synthetic organisation of 2,000 leaf teams (company → 20 departments → 2,000 teams), 25 metrics
and 200 weeks of weekly KPIs per team and metric: 10,000,000 ``kpis`` rows, plus one quarter of OKRs
(an objective with two key results per team, 13 weekly check-ins per KR). The KPI table is built directly
with NumPy (the sample generator has 16 metrics and is not made for this size) and written once as
Parquet (pyarrow, 1M-row row groups) and once as CSV (ISO dates).

Each measurement runs in a fresh child process, so the memory figure is that load's own peak resident
set size (``ru_maxrss`` of the child, which includes the Python interpreter and the imported libraries):

* ``load(parquet folder)`` and ``load(csv folder)`` — the full validated ``Dataset``;
* ``load(parquet folder, teams=[one department], start=…)`` — a pushed-down subset (pyarrow filters);
* naive: what a user would write without the package — ``pd.read_csv`` of every table with default
  settings and a row-by-row validation loop over the KPI rows (types, required values, references, the
  team/metric/date key) — on the same CSV files, in the same run.

Targets (issue 9, on a 2-core machine): Parquet < 60 s and < 6 GB; CSV < 3× the Parquet time.

Results: ``benchmarks/results/load.json`` and ``load.md``.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_load.py                 # full run, 10M rows (a few minutes)
    .venv/bin/python benchmarks/bench_load.py --teams 200     # 1M rows
    .venv/bin/python benchmarks/bench_load.py --naive-rows 0  # without the naive loop
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def make_tables(n_teams: int, n_metrics: int, weeks: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The synthetic organisation: ``n_teams × n_metrics × weeks`` KPI rows and small other tables."""
    rng = np.random.default_rng(seed)
    n_dept = max(1, n_teams // 100)
    dept = [f"dept-{d:03d}" for d in range(n_dept)]
    team = np.array([f"team-{i:05d}" for i in range(n_teams)], dtype=object)
    teams = pd.DataFrame({
        "team_id": ["company"] + dept + list(team),
        "team_name": ["Company"] + [f"Department {d}" for d in range(n_dept)] + [f"Team {i}" for i in range(n_teams)],
        "parent_team_id": [None] + ["company"] * n_dept + [dept[i % n_dept] for i in range(n_teams)],
        "headcount": [n_teams * 8] + [800] * n_dept + list(rng.integers(3, 15, n_teams)),
    })
    metric = np.array([f"metric_{m:02d}" for m in range(n_metrics)], dtype=object)
    metrics = pd.DataFrame({"metric": metric, "description": [f"Metric {m}" for m in range(n_metrics)],
                            "unit": "points", "higher_is_better": True, "kind": "other",
                            "aggregation": "mean", "people_metric": False})
    dates = pd.date_range("2022-11-07", periods=weeks, freq="W-MON")
    n = n_teams * n_metrics * weeks
    kpis = pd.DataFrame({
        "team_id": pd.Categorical.from_codes(np.repeat(np.arange(n_teams), n_metrics * weeks), team).astype(str),
        "metric": pd.Categorical.from_codes(np.tile(np.repeat(np.arange(n_metrics), weeks), n_teams),
                                            metric).astype(str),
        "date": np.tile(dates.to_numpy(), n_teams * n_metrics),
        "value": np.round(50 + rng.standard_normal(n).cumsum() % 50, 2),
    })
    q_start = dates[-13]
    quarter = f"{q_start.year}Q{(q_start.month - 1) // 3 + 1}"
    objectives = pd.DataFrame({"objective_id": [f"o-{t}" for t in team], "team_id": team, "quarter": quarter,
                               "title": "Improve the service", "parent_objective_id": None,
                               "kind": "committed"})
    kr_team = np.repeat(team, 2)
    key_results = pd.DataFrame({"kr_id": [f"kr-{t}-{j}" for t in team for j in (1, 2)],
                                "objective_id": [f"o-{t}" for t in kr_team], "title": "Raise the metric",
                                "direction": "increase", "baseline": 40.0, "target": 60.0, "unit": "points",
                                "weight": 1.0, "metric": metric[0]})
    qdates = pd.date_range(pd.Timestamp(q_start) - pd.Timedelta(days=q_start.day_of_week), periods=13, freq="W-MON")
    qdates = qdates[(qdates >= pd.Timestamp(q_start.year, 3 * ((q_start.month - 1) // 3) + 1, 1))][:11]
    checkins = pd.DataFrame({"kr_id": np.repeat(key_results["kr_id"].to_numpy(), len(qdates)),
                             "date": np.tile(qdates.to_numpy(), len(key_results)),
                             "value": 45.0, "confidence": 6.0, "comment": ""})
    benchmarks = pd.DataFrame({"metric": metric[:3], "value": 55.0, "source": "survey"})
    return {"teams": teams, "objectives": objectives, "key_results": key_results, "checkins": checkins,
            "kpis": kpis, "metrics": metrics, "benchmarks": benchmarks}


def write_tables(tables: dict[str, pd.DataFrame], folder: Path, fmt: str) -> Path:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if fmt == "parquet":
            pq.write_table(table, folder / f"{name}.parquet", row_group_size=1_000_000)
        else:
            if "date" in frame.columns:
                table = table.set_column(table.schema.get_field_index("date"), "date",
                                         pa.compute.strftime(table["date"], format="%Y-%m-%d"))
            pacsv.write_csv(table, folder / f"{name}.csv",
                            pacsv.WriteOptions(quoting_style="needed"))
    return folder


# ----------------------------------------------------------------------------------
# One measurement per child process: wall time and the child's peak resident set size
# ----------------------------------------------------------------------------------
def naive_load(folder: Path) -> int:
    """What a user would write without the package: default ``pd.read_csv`` and a row-by-row check."""
    import datetime
    import math

    t = {name: pd.read_csv(folder / f"{name}.csv") for name in
         ("teams", "objectives", "key_results", "checkins", "kpis", "metrics", "benchmarks")}
    teams, metrics = set(t["teams"]["team_id"].astype(str)), set(t["metrics"]["metric"].astype(str))
    seen, problems = set(), []
    for i, (team, metric, date, value) in enumerate(t["kpis"][["team_id", "metric", "date", "value"]]
                                                    .itertuples(index=False, name=None)):
        if team not in teams:
            problems.append((i + 2, "team_id"))
        if metric not in metrics:
            problems.append((i + 2, "metric"))
        try:
            day = datetime.date.fromisoformat(str(date))
        except ValueError:
            problems.append((i + 2, "date"))
            day = None
        try:
            if not math.isfinite(float(value)):
                problems.append((i + 2, "value"))
        except ValueError:
            problems.append((i + 2, "value"))
        key = (team, metric, day)
        if key in seen:
            problems.append((i + 2, "duplicate"))
        seen.add(key)
    t["kpis"]["date"] = pd.to_datetime(t["kpis"]["date"])
    return len(t["kpis"])


def child(kind: str, path: str, filters: str) -> None:
    import warnings

    t0 = time.perf_counter()
    if kind == "naive":
        rows = naive_load(Path(path))
    else:
        import okr_analysis

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = okr_analysis.load(path, **json.loads(filters))
        rows = len(ds.kpis)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "kpi_rows": rows, "peak_rss_mb": peak_kb / 1024}))


def measure(kind: str, path: Path, filters: dict | None = None, pythonpath: str | None = None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(path), json.dumps(filters or {})],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def previous_package(commit: str, into: Path) -> str | None:
    """The loaders as of ``commit`` (before this work), unpacked into a folder for PYTHONPATH."""
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "okr_analysis"],
                                 check=True, capture_output=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return str(into)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", type=int, default=2000)
    ap.add_argument("--metrics", type=int, default=25)
    ap.add_argument("--weeks", type=int, default=200)
    ap.add_argument("--naive", type=int, default=1, help="run the naive read_csv + row loop (1) or not (0)")
    ap.add_argument("--before", default="1ccca66", help="commit of the previous loaders to time ('' to skip)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "FILTERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    n_rows = args.teams * args.metrics * args.weeks
    print(f"building {n_rows:,} KPI rows ({args.teams} teams × {args.metrics} metrics × {args.weeks} weeks)")
    results: dict = {"kpi_rows": n_rows, "teams": args.teams, "metrics": args.metrics, "weeks": args.weeks,
                     "cpus": os.cpu_count(), "python": platform.python_version(),
                     "pandas": pd.__version__, "platform": platform.platform(), "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        tables = make_tables(args.teams, args.metrics, args.weeks)
        pq_dir, csv_dir = write_tables(tables, tmp / "parquet", "parquet"), write_tables(tables, tmp / "csv", "csv")
        del tables
        results["prepare_seconds"] = time.perf_counter() - t0
        results["parquet_mb"] = sum(p.stat().st_size for p in pq_dir.iterdir()) / 2**20
        results["csv_mb"] = sum(p.stat().st_size for p in csv_dir.iterdir()) / 2**20
        dept = {"teams": ["dept-000"], "start": "2025-01-01"}
        plan = [("parquet", "load", pq_dir, None, None), ("csv", "load", csv_dir, None, None),
                ("parquet, one department since 2025", "load", pq_dir, dept, None)]
        if args.before:
            old = previous_package(args.before, tmp)
            if old:
                plan += [(f"parquet, previous loaders ({args.before})", "load", pq_dir, None, old),
                         (f"csv, previous loaders ({args.before})", "load", csv_dir, None, old)]
        if args.naive:
            plan.append(("csv, naive (pd.read_csv + row loop)", "naive", csv_dir, None, None))
        for label, kind, path, filters, pythonpath in plan:
            r = measure(kind, path, filters, pythonpath)
            results["runs"][label] = {**r, "filters": filters}
            print(f"{label:45s} {r['seconds']:8.1f} s  {r['peak_rss_mb'] / 1024:6.2f} GB  {r['kpi_rows']:,} rows")
    runs = results["runs"]
    results["csv_over_parquet"] = runs["csv"]["seconds"] / runs["parquet"]["seconds"]
    results["targets_met"] = {
        "parquet_under_60s": runs["parquet"]["seconds"] < 60,
        "parquet_under_6GB": runs["parquet"]["peak_rss_mb"] < 6 * 1024,
        "csv_under_3x_parquet": results["csv_over_parquet"] < 3,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# Loading {n_rows:,} KPI rows ({args.teams:,} teams × {args.metrics} metrics × {args.weeks} weeks)",
        "",
        f"{results['cpus']} CPUs, Python {results['python']}, pandas {results['pandas']}; "
        f"Parquet {results['parquet_mb']:.0f} MB, CSV {results['csv_mb']:.0f} MB on disk. "
        "Each run is a fresh process; memory is its peak resident set size (interpreter and libraries included).",
        "",
        "| run | seconds | peak memory (GB) | KPI rows loaded |",
        "|---|---:|---:|---:|",
    ]
    for label, r in runs.items():
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['peak_rss_mb'] / 1024:.2f} | {r['kpi_rows']:,} |")
    lines += ["", f"CSV / Parquet time: {results['csv_over_parquet']:.2f}× (target < 3×). "
              f"Targets met: {', '.join(k for k, v in results['targets_met'].items() if v) or 'none'}"
              + ("" if all(results["targets_met"].values()) else
                 f"; missed: {', '.join(k for k, v in results['targets_met'].items() if not v)}") + ".", ""]
    (RESULTS / "load.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
