"""Benchmark: ``okr-analysis drivers`` (the whole command, load included) against the naive per-team loop.

Data: an organisation of 1,000 teams × 156 weeks with 5 leading and 3 lagging KPIs in the metrics catalogue,
so the command tests 5 × 3 = 15 pairs (15,000 team series pairs); AR(1) series, three pairs with a planted
lead (lead_j → outcome_j at lag 2 + j). Written as CSV files to a temporary folder (kpis.csv: 1.25 million
rows), then:

* ``okr-analysis drivers DIR --out …`` and ``okr-analysis drivers DIR --by-team --out …``: the whole command
  in a fresh process (imports, load and validation, resampling, transforms, seasonal terms, the primary tests,
  forecasts, FDR, verdicts, writing the CSV), timed by wall clock (and CPU time of the child process); each
  ``--repeat`` times (default 3), the two commands interleaved, the median run reported (one run's wall time
  varies by about ±10% on the 2-core machine, e.g. with the first run on freshly written files).
* naive: the loop a user would write, per pair and team, on a pandas DataFrame of that team::

      grangercausalitytests(df[[lagging, leading]], maxlag=8)          # orders 1..8
      [df[lagging].shift(-k).corr(df[leading]) for k in range(0, 9)]   # lags 0..8

  timed on ``--naive-teams`` teams (default 100) and scaled linearly to all teams (the loop is the same
  work for every team). The naive loop is given the arrays in memory: its time has no load.

The script also checks that the toolkit's vectorised kernel (``okr_analysis._screen.screen``) gives the naive
loop's F, p and correlations on the naive subset (to 1e-8).

Targets (issue 19): the whole command < 15 s and at least 30× faster than the naive loop measured in the
same run; with ``--by-team`` < 30 s. Results: ``benchmarks/results/leadlag.json`` and ``leadlag.md``; with
``--tag TAG``, ``leadlag-TAG.{json,md}`` (targets scaled per team: 15 s and 30 s per 1,000 teams).

Run on demand (``make bench``; not part of the tests)::

    .venv/bin/python benchmarks/bench_leadlag.py
    .venv/bin/python benchmarks/bench_leadlag.py --teams 2000 --naive-teams 100 --tag 2000teams
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
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"

MAX_LAG = 8
N_LEADING, N_LAGGING = 5, 3
TARGET_CLI_PER_1000 = 15.0
TARGET_BY_TEAM_PER_1000 = 30.0
TARGET_SPEEDUP = 30


def make_data(n_teams: int, weeks: int, seed: int = 0) -> dict[str, np.ndarray]:
    """(teams × weeks) arrays per metric: 5 leading AR(1) KPIs, 3 lagging ones; lead_j → outcome_j at lag 2+j."""
    rng = np.random.default_rng(seed)

    def ar1(phi: float) -> np.ndarray:
        e = rng.standard_normal((n_teams, weeks + 20))
        out = np.zeros_like(e)
        for t in range(1, e.shape[1]):
            out[:, t] = phi * out[:, t - 1] + e[:, t]
        return out

    data = {f"lead_{i}": ar1(0.5) for i in range(N_LEADING)}
    for j in range(N_LAGGING):
        data[f"outcome_{j}"] = ar1(0.4) + 0.3 * np.roll(data[f"lead_{j}"], 2 + j, axis=1)
    return {m: np.round(50 + 5 * a[:, 20:], 4) for m, a in data.items()}


def write_dataset(folder: Path, data: dict[str, np.ndarray], weeks: int) -> list[str]:
    """The KPIs, a metrics catalogue (kinds leading / lagging) and a minimal OKR set, as CSV files."""
    n_teams = next(iter(data.values())).shape[0]
    teams = [f"team-{i:04d}" for i in range(n_teams)]
    dates = pd.date_range("2023-10-02", periods=weeks, freq="7D").strftime("%Y-%m-%d")
    pd.concat([pd.DataFrame({"team_id": np.repeat(teams, weeks), "metric": m, "date": np.tile(dates, n_teams),
                             "value": a.ravel()}) for m, a in data.items()]).to_csv(folder / "kpis.csv", index=False)
    pd.DataFrame({"team_id": ["org"] + teams, "team_name": ["Organisation"] + teams,
                  "parent_team_id": [""] + ["org"] * n_teams, "headcount": [12 * n_teams] + [12] * n_teams}
                 ).to_csv(folder / "teams.csv", index=False)
    pd.DataFrame([dict(metric=m, description=m, unit="points", higher_is_better=True,
                       kind="leading" if m.startswith("lead") else "lagging", aggregation="mean",
                       people_metric=False) for m in data]).to_csv(folder / "metrics.csv", index=False)
    pd.DataFrame([dict(objective_id="2025Q4-org-o1", team_id="org", quarter="2025Q4", title="Grow",
                       parent_objective_id="", kind="committed")]).to_csv(folder / "objectives.csv", index=False)
    pd.DataFrame([dict(kr_id="2025Q4-org-o1-kr1", objective_id="2025Q4-org-o1", title="Outcome 0 to 55",
                       direction="increase", baseline=50, target=55, unit="points", weight=1.0, metric="")]
                 ).to_csv(folder / "key_results.csv", index=False)
    pd.DataFrame([dict(kr_id="2025Q4-org-o1-kr1", date="2025-10-06", value=50.5, confidence=7, comment="")]
                 ).to_csv(folder / "checkins.csv", index=False)
    return teams


def run_cli(folder: Path, out: Path, *extra: str) -> dict:
    """``okr-analysis drivers`` in a fresh process: wall and CPU seconds, rows written."""
    exe = Path(sys.executable).with_name("okr-analysis")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from okr_analysis.cli import main; main()"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + ["drivers", str(folder), "--out", str(out), *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"okr-analysis drivers failed:\n{proc.stderr}")
    return dict(wall=wall, cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def naive(data: dict[str, np.ndarray], pairs: list[tuple[str, str]], n_teams: int) -> tuple[float, float, dict]:
    """The naive loop on the first ``n_teams`` teams: (wall seconds, CPU seconds, statistics)."""
    from statsmodels.tsa.stattools import grangercausalitytests

    out = {}
    t0, c0 = time.perf_counter(), time.process_time()
    for lead, lagging in pairs:
        X, Y = data[lead], data[lagging]
        f = np.zeros((n_teams, MAX_LAG))
        p = np.zeros_like(f)
        r = np.zeros((n_teams, MAX_LAG + 1))
        for i in range(n_teams):
            df = pd.DataFrame({lead: X[i], lagging: Y[i]})
            g = grangercausalitytests(df[[lagging, lead]], maxlag=MAX_LAG)
            for o in range(1, MAX_LAG + 1):
                f[i, o - 1], p[i, o - 1] = g[o][0]["ssr_ftest"][:2]
            r[i] = [df[lagging].shift(-k).corr(df[lead]) for k in range(0, MAX_LAG + 1)]
        out[(lead, lagging)] = dict(f=f, p=p, r=r)
    return time.perf_counter() - t0, time.process_time() - c0, out


def kernel_differences(data, pairs, nai, n_teams: int) -> dict:
    from okr_analysis._screen import screen

    worst = {k: dict(max_abs=0.0, max_rel=0.0) for k in ("f", "p", "r")}
    for pq in pairs:
        s = screen(data[pq[1]][:n_teams], data[pq[0]][:n_teams], max_lag=MAX_LAG)
        mine = dict(f=s.granger.f, p=s.granger.p, r=s.r[:, MAX_LAG:])
        for key in worst:
            d = np.abs(mine[key] - nai[pq][key])
            worst[key]["max_abs"] = max(worst[key]["max_abs"], float(d.max()))
            worst[key]["max_rel"] = max(worst[key]["max_rel"],
                                        float((d / np.maximum(np.abs(nai[pq][key]), 1.0)).max()))
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", type=int, default=1000)
    ap.add_argument("--weeks", type=int, default=156)
    ap.add_argument("--naive-teams", type=int, default=100,
                    help="time the naive loop on this many teams and scale linearly (default 100)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="run each command this many times (interleaved) and report the median (default 3)")
    ap.add_argument("--tag", default="",
                    help="write results to leadlag-TAG.{json,md} instead of the default leadlag.{json,md}")
    args = ap.parse_args(argv)

    data = make_data(args.teams, args.weeks)
    pairs = [(f"lead_{i}", f"outcome_{j}") for j in range(N_LAGGING) for i in range(N_LEADING)]
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-leadlag-") as tmp:
        folder = Path(tmp) / "org"
        folder.mkdir()
        write_dataset(folder, data, args.weeks)
        # each command args.repeat times, interleaved; the median run (by wall time) is reported
        runs = {"pooled": [], "by_team": []}
        for _ in range(args.repeat):
            runs["pooled"].append(run_cli(folder, Path(tmp) / "drivers.csv"))
            runs["by_team"].append(run_cli(folder, Path(tmp) / "drivers-by-team.csv", "--by-team"))
        pooled, by_team = (sorted(r, key=lambda d: d["wall"])[len(r) // 2] for r in runs.values())
        table = pd.read_csv(Path(tmp) / "drivers.csv")
        n_rows_by_team = len(pd.read_csv(Path(tmp) / "drivers-by-team.csv"))
    n_naive = min(args.naive_teams, args.teams)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_naive_measured, cpu_naive_measured, nai = naive(data, pairs, n_naive)
    t_naive = t_naive_measured * args.teams / n_naive
    cpu_naive = cpu_naive_measured * args.teams / n_naive
    diffs = kernel_differences(data, pairs, nai, n_naive)
    load_after = os.getloadavg()[0]

    worst = max(max(d["max_abs"], d["max_rel"]) for d in diffs.values())
    speedup = t_naive / pooled["wall"]
    speedup_cpu = cpu_naive / pooled["cpu"]
    scale = args.teams / 1000
    t_cli, t_bt = TARGET_CLI_PER_1000 * scale, TARGET_BY_TEAM_PER_1000 * scale
    met = dict(cli=pooled["wall"] < t_cli, by_team=by_team["wall"] < t_bt, speedup=speedup >= TARGET_SPEEDUP,
               same_statistics=worst <= 1e-8)
    verdicts = {f"{a} → {b}": v for a, b, v in zip(table["leading"], table["lagging"], table["verdict"])}
    planted = {f"lead_{j} → outcome_{j}" for j in range(N_LAGGING)}
    result = {
        "benchmark": "okr-analysis drivers (whole command, load included) vs a naive per-team loop",
        "teams": args.teams, "weeks": args.weeks, "pairs": len(pairs), "max_lag": MAX_LAG,
        "cli_seconds": round(pooled["wall"], 2), "cli_cpu_seconds": round(pooled["cpu"], 2),
        "by_team_seconds": round(by_team["wall"], 2), "by_team_cpu_seconds": round(by_team["cpu"], 2),
        "by_team_rows": n_rows_by_team, "repeats": args.repeat,
        "cli_seconds_all_runs": [round(r["wall"], 2) for r in runs["pooled"]],
        "by_team_seconds_all_runs": [round(r["wall"], 2) for r in runs["by_team"]],
        "naive_seconds": round(t_naive, 1), "naive_measured_seconds": round(t_naive_measured, 2),
        "naive_cpu_seconds": round(cpu_naive, 1), "speedup_cpu": round(speedup_cpu, 1),
        "naive_measured_on_teams": n_naive, "naive_scaled_linearly": n_naive != args.teams,
        "speedup": round(speedup, 1),
        "kernel_max_difference": diffs, "same_statistics_1e-8": bool(worst <= 1e-8),
        "pooled_verdicts": verdicts,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "platform": platform.platform(), "load_average_before": round(load_before, 2),
                    "load_average_after": round(load_after, 2)},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "targets": {"cli_seconds_under": t_cli, "by_team_seconds_under": t_bt, "speedup_at_least": TARGET_SPEEDUP},
        "targets_met": {k: bool(v) for k, v in met.items()},
    }
    stem = f"leadlag-{args.tag}" if args.tag else "leadlag"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    yes = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    names = {"f": "Granger F, leading → lagging, orders 1–8", "p": "its p-value", "r": "correlation, lags 0–8"}
    rows = "\n".join(f"| {names[k]} | {v['max_abs']:.1e} | {v['max_rel']:.1e} |" for k, v in diffs.items())
    found = sorted(k for k, v in verdicts.items() if v == "leads")
    md = f"""# Driver analysis benchmark: `okr-analysis drivers`, whole command

{args.teams:,} teams × {len(pairs)} pairs ({N_LEADING} leading × {N_LAGGING} lagging KPIs) × {args.weeks} weeks,
CSV files ({args.teams * args.weeks * (N_LEADING + N_LAGGING):,} KPI rows), default options (weekly, max lag 8, seasonal
terms, ADF/KPSS transforms, out-of-sample forecasts). {os.cpu_count()} CPUs, {'no other work running' if load_before < 1.2 else 'shared with other work'} (load average
{load_before:.1f} before, {load_after:.1f} after), {result['when']}. Produced by `benchmarks/bench_leadlag.py`.

Each command ran {args.repeat} times (interleaved, fresh processes, the default `--jobs`); the table gives the
median run (all runs' wall seconds: {', '.join(f"{r['wall']:.2f}" for r in runs['pooled'])}; with `--by-team`:
{', '.join(f"{r['wall']:.2f}" for r in runs['by_team'])}).

| run | wall seconds | CPU seconds | target |
|---|---:|---:|---|
| `okr-analysis drivers DIR --out …` (fresh process: imports, load, analysis, CSV) | {pooled['wall']:.2f} | {pooled['cpu']:.1f} | < {t_cli:g} s: **{yes(met['cli'])}** |
| the same with `--by-team` ({n_rows_by_team:,} rows) | {by_team['wall']:.2f} | {by_team['cpu']:.1f} | < {t_bt:g} s: **{yes(met['by_team'])}** |
| naive loop: `grangercausalitytests(maxlag=8)` + `shift().corr()` at lags 0–8 per pair and team | {t_naive:.1f} | {cpu_naive:.1f} | |

The naive loop was timed on {n_naive:,} of the {args.teams:,} teams ({t_naive_measured:.1f} s) and scaled linearly
to all teams{'' if n_naive != args.teams else ' (measured on all)'}; it gets the arrays in memory (no load).
**Speed-up of the whole command over the naive loop: {speedup:.0f}×** (target ≥ {TARGET_SPEEDUP}×: **{yes(met['speedup'])}**).
By CPU time (less sensitive to other work on the machine): {speedup_cpu:.0f}×. The command does much more than
the loop (both directions, lag selection, seasonal terms, forecasts, verdicts).

The toolkit's vectorised kernel against the naive loop on those {n_naive:,} teams (every pair and team):

| statistic | max abs | max rel (to max(1, abs value)) |
|---|---:|---:|
{rows}

Same statistics to 1e-8: **{'yes' if worst <= 1e-8 else 'NO'}**. Pooled `leads`: {', '.join(found) or 'none'}
(planted: {', '.join(sorted(planted))}).
"""
    (RESULTS / f"{stem}.md").write_text(md)
    print(md)
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
