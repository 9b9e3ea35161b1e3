"""Benchmark: initiative impact — the simulation study's targets on many organisations, and the speed at scale.

1. **Simulation study** (``tests/test_impact.py::simulate``, the organisations the test uses, more of them):
   31 teams × 52 weeks, noise SD 1; steps of ±1 SD, a null initiative, an organisation-wide shift of 2 SD in the
   start week and a team already rising by 0.1 SD a week. Targets: steps found in the right direction ≥ 90%,
   intervals covering the step ≥ 90%, null / shift / rising team called improved or worsened ≤ 10%. Also, for
   information: autocorrelated noise (AR(1) 0.5) and gentler or steeper trends.
2. **Speed**: 1,000 initiatives over 2,000 teams (the synthetic sample, ``make_sample(n_teams=2000)``, with
   initiatives on random teams, metrics and start dates). Target: < 60 s.

Results: ``benchmarks/results/impact.md`` (and ``impact.json``). Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_impact.py                   # 400 organisations + the speed (minutes)
    .venv/bin/python benchmarks/bench_impact.py --replicates 100  # quicker
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
RESULTS = REPO / "benchmarks" / "results"

_spec = importlib.util.spec_from_file_location("test_impact_sim", REPO / "tests" / "test_impact.py")
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)

TARGET_SECONDS = 60.0


def simulation(replicates: int) -> tuple[pd.DataFrame, list[dict]]:
    rows = []
    runs = [("main: iid noise, trend 0.1/week", {}),
            ("AR(1) 0.5 noise", {"phi": 0.5}),
            ("gentle trend 0.05/week", {"trend": 0.05}),
            ("steep trend 0.2/week", {"trend": 0.2})]
    detail = []
    for name, kwargs in runs:
        n = replicates if not kwargs else max(replicates // 4, 20)
        t0 = time.perf_counter()
        res = sim.study(n, seed0=10_000, **kwargs)
        seconds = time.perf_counter() - t0
        by = res.groupby("initiative_id")
        steps = res[res["initiative_id"].isin(["up", "down"])]
        detail.append({"run": name, "organisations": n, "seconds": round(seconds, 1),
                       "steps_right": steps["right"].mean(), "steps_cover": steps["covers"].mean(),
                       "null_called": by["called"].mean()["nothing"], "shift_called": by["called"].mean()["shift"],
                       "trend_called": by["called"].mean()["trend"],
                       "trend_adjusted_share": (res.loc[res["initiative_id"] == "trend", "method"]
                                                == sim.impact.DID_TREND).mean()})
        if not kwargs:
            rows = res
    return rows, detail


def speed(n_teams: int, n_initiatives: int, seed: int = 0) -> dict:
    from okr_analysis import from_frames, initiative_impact
    from okr_analysis.sample import make_sample

    tables = make_sample(seed=seed, n_teams=n_teams, weeks=104)
    kpis = tables["kpis"]
    pairs = kpis[["team_id", "metric"]].drop_duplicates().reset_index(drop=True)
    rng = np.random.default_rng(seed)
    pick = pairs.iloc[rng.choice(len(pairs), size=n_initiatives, replace=False)].reset_index(drop=True)
    dates = np.sort(kpis["date"].unique())
    starts = dates[rng.integers(30, len(dates) - 10, size=n_initiatives)]
    tables["initiatives"] = pd.DataFrame({
        "initiative_id": [f"i{i:04d}" for i in range(n_initiatives)], "team_id": pick["team_id"],
        "title": "Initiative", "start": starts, "metric": pick["metric"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        ds = from_frames(tables)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        table = initiative_impact(ds)
        seconds = time.perf_counter() - t0
    return {"teams": n_teams, "initiatives": n_initiatives, "kpi_rows": int(len(kpis)), "load_seconds": round(load_s, 1),
            "seconds": round(seconds, 1), "per_initiative_ms": round(1000 * seconds / n_initiatives, 1),
            "verdicts": table["verdict"].astype(str).value_counts().to_dict(),
            "methods": table["method"].astype(str).value_counts().to_dict()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=400)
    ap.add_argument("--teams", type=int, default=2000)
    ap.add_argument("--initiatives", type=int, default=1000)
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    res, detail = simulation(args.replicates)
    fast = speed(args.teams, args.initiatives)
    load_after = os.getloadavg()[0]
    main_run = detail[0]
    ok = (main_run["steps_right"] >= 0.9 and main_run["steps_cover"] >= 0.9
          and max(main_run["null_called"], main_run["shift_called"], main_run["trend_called"]) <= 0.1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "impact.json").write_text(json.dumps({"simulation": detail, "speed": fast,
                                                     "machine": platform.platform(), "cpus": os.cpu_count(),
                                                     "load": [load_before, load_after]}, indent=2, default=float))
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    lines = [
        "# Initiative impact benchmark", "",
        f"Produced by `benchmarks/bench_impact.py` on {os.cpu_count()} CPUs (load average {load_before:.2f} before, "
        f"{load_after:.2f} after), {time.strftime('%Y-%m-%d %H:%M:%S')}.", "",
        "## Simulation study", "",
        "Organisations of 31 teams × 52 weekly periods (26 before the start), noise SD 1 (`tests/test_impact.py::simulate`).",
        "", "| run | organisations | steps right (≥ 90%) | intervals cover (≥ 90%) | null called (≤ 10%) | "
        "org-wide shift called (≤ 10%) | rising team called (≤ 10%) | rising team trend-adjusted | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for d in detail:
        lines.append(f"| {d['run']} | {d['organisations']} | {pct(d['steps_right'])} | {pct(d['steps_cover'])} | "
                     f"{pct(d['null_called'])} | {pct(d['shift_called'])} | {pct(d['trend_called'])} | "
                     f"{pct(d['trend_adjusted_share'])} | {d['seconds']} |")
    lines += ["", f"Targets met on the main run: **{'yes' if ok else 'no'}**. The other runs are for information "
              "(the targets are stated for the main run).", "",
              "## Speed", "",
              f"{fast['initiatives']:,} initiatives over {fast['teams']:,} teams ({fast['kpi_rows']:,} KPI rows, "
              f"`make_sample(n_teams={fast['teams']}, weeks=104)`): **{fast['seconds']} s** "
              f"({fast['per_initiative_ms']} ms per initiative; target < {TARGET_SECONDS:.0f} s); "
              f"loading and validating the tables took {fast['load_seconds']} s more.", "",
              f"Methods: {fast['methods']}. Verdicts: {fast['verdicts']}.", ""]
    (RESULTS / "impact.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
