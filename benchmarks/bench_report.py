"""Benchmark: quarterly review reports, the naive way vs ``build_reports``, in the same run.

The naive way, per team: the ``papermill`` CLI, then ``jupyter nbconvert --to html`` (with the
same ``okr_report`` template), then Chromium's own ``--headless --print-to-pdf`` (nbconvert's
``webpdf`` exporter cannot be used here: it has no browser-path option and ``playwright install``
cannot download one). Measured once sequentially (a shell loop) and once with two teams at a
time (``xargs -P 2``). Then :func:`okr_analysis.reports.build_reports` with ``force=True`` (warm
kernels, one exporter and one Chromium per worker), and a second ``build_reports`` run with
nothing changed.

Data: the sample organisation (``okr_analysis.sample``) when it is available, else the tiny
test organisation. Results: ``benchmarks/results/report.json`` and ``report.md``.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_report.py            # all teams of the sample
    .venv/bin/python benchmarks/bench_report.py --teams 6  # the first 6 teams (quicker)
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
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"


def _data(folder: Path) -> tuple[Path, str]:
    try:
        from okr_analysis.sample import write_sample
    except ImportError:
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import tiny_tables

        folder.mkdir(parents=True, exist_ok=True)
        for name, df in tiny_tables().items():
            df.to_csv(folder / f"{name}.csv", index=False)
        return folder, "tiny test organisation (tests/conftest.py)"
    return write_sample(folder, seed=0), "sample organisation (okr_analysis.sample, seed 0)"


def _run(cmd: list[str], **kw) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t0


def _naive_team(team: str, *, source: Path, quarter: str, work: Path, chromium: str | None) -> dict[str, float]:
    from okr_analysis.reports import CHROMIUM_ARGS, TEMPLATE_DIR
    from okr_analysis.reports import NOTEBOOK, team_file_name

    stem = team_file_name(team)
    nb, html, pdf = work / f"{stem}.ipynb", work / f"{stem}.html", work / f"{stem}.pdf"
    times = {
        "papermill": _run([sys.executable, "-m", "papermill", str(NOTEBOOK), str(nb), "-p", "source", str(source),
                           "-r", "team_id", team, "-r", "quarter", quarter, "--no-progress-bar"], cwd=work),
        "nbconvert": _run([sys.executable, "-m", "nbconvert", "--to", "html", "--template", TEMPLATE_DIR.name,
                           f"--TemplateExporter.extra_template_basedirs={TEMPLATE_DIR.parent}", str(nb)], cwd=work),
    }
    if chromium:
        times["chromium_pdf"] = _run([chromium, "--headless", *CHROMIUM_ARGS, "--no-pdf-header-footer",
                                      f"--print-to-pdf={pdf}", html.as_uri()], cwd=work)
        if not pdf.exists():
            raise RuntimeError(f"chromium did not write {pdf}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=None, help="only the first N teams (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="workers for build_reports and the parallel naive run")
    parser.add_argument("--skip-naive-sequential", action="store_true", help="only the parallel naive run")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")
    from okr_analysis import __version__, load
    from okr_analysis.reports import find_chromium
    from okr_analysis.reports import build_reports

    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        source, data_label = _data(tmp / "data")
        ds = load(source)
        quarter = ds.latest_quarter
        tree = ds.team_tree
        roots = tree.loc[tree["depth"] == 0, "team_id"].tolist()
        teams = [t for r in roots for t in ds.subtree(r)]  # overview first, as build_reports orders them
        if args.teams:
            teams = teams[: args.teams]
        n = len(teams)
        formats = ("html", "pdf") if chromium else ("html",)
        print(f"{n} reports of the {data_label}, quarter {quarter}, formats {'+'.join(formats)}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
        load_before = os.getloadavg()

        results: dict[str, object] = {}
        naive_runs = []
        if not args.skip_naive_sequential:
            work = tmp / "naive-seq"
            work.mkdir()
            t0 = time.perf_counter()
            steps = [_naive_team(t, source=source, quarter=quarter, work=work, chromium=chromium) for t in teams]
            naive_runs.append(("naive_sequential", time.perf_counter() - t0, steps))
            print(f"naive, one team at a time: {naive_runs[-1][1]:.1f} s", flush=True)
        work = tmp / "naive-par"
        work.mkdir()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            steps = list(pool.map(lambda t: _naive_team(t, source=source, quarter=quarter, work=work,
                                                        chromium=chromium), teams))
        naive_runs.append((f"naive_parallel_{args.jobs}", time.perf_counter() - t0, steps))
        print(f"naive, {args.jobs} teams at a time: {naive_runs[-1][1]:.1f} s", flush=True)

        non_roots = [t for t in teams if t not in roots]
        out = tmp / "reports"
        t0 = time.perf_counter()
        r = build_reports(source, quarter=quarter, teams=non_roots, org_overview=bool(set(roots) & set(teams)),
                          formats=formats, out=out, jobs=args.jobs, force=True)
        ours = time.perf_counter() - t0
        assert r.ok and len(r.rendered) == n, r.summary()
        print(f"build_reports, jobs={args.jobs}: {ours:.1f} s", flush=True)
        t0 = time.perf_counter()
        r2 = build_reports(source, quarter=quarter, teams=non_roots, org_overview=bool(set(roots) & set(teams)),
                           formats=formats, out=out, jobs=args.jobs)
        unchanged = time.perf_counter() - t0
        # Every report should be skipped; a source file of the package edited meanwhile re-renders them all.
        print(f"build_reports again, nothing changed: {unchanged:.1f} s, {len(r2.skipped)} of {n} skipped", flush=True)
        per_team = sorted(t.duration_s for t in r.teams)

        for name, total, steps in naive_runs:
            keys = steps[0].keys()
            results[name] = {
                "wall_s": round(total, 2),
                "s_per_report": round(total / n, 2),
                "mean_step_s": {k: round(sum(s[k] for s in steps) / n, 2) for k in keys},
            }
        results[f"build_reports_jobs_{args.jobs}"] = {
            "wall_s": round(ours, 2),
            "s_per_report": round(ours / n, 2),
            "median_team_s_in_worker": round(per_team[len(per_team) // 2], 2),
        }
        results["build_reports_unchanged"] = {"wall_s": round(unchanged, 2), "skipped": len(r2.skipped),
                                              "rendered": len(r2.rendered)}
        speedups = {f"vs_{name}": round(total / ours, 1) for name, total, _ in naive_runs}
        record = {
            "benchmark": "quarterly review reports: naive CLI pipeline vs build_reports",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "data": data_label,
            "reports": n,
            "quarter": quarter,
            "formats": list(formats),
            "naive_pdf_step": "chromium --headless --print-to-pdf per file (nbconvert webpdf cannot find a browser)"
            if chromium else "none: Chromium not installed",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "load_avg_before": [round(x, 2) for x in load_before],
                        "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
            "versions": _versions(__version__),
            "results": results,
            "speedup": speedups,
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "report.md").write_text(_markdown(record))
    print(json.dumps(speedups))
    print(f"written {RESULTS / 'report.json'} and report.md")
    return 0


def _versions(pkg_version: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"okr-analysis": pkg_version}
    for name in ("papermill", "nbconvert", "nbclient", "ipykernel", "playwright", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    try:
        from okr_analysis.reports import find_chromium

        path = find_chromium()
        out["chromium"] = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip() \
            if path else "absent"
    except Exception:  # pragma: no cover - informational only
        out["chromium"] = "unknown"
    return out


def _markdown(rec: dict) -> str:
    lines = [
        "# Report pipeline benchmark",
        "",
        f"{rec['reports']} quarterly review reports ({' + '.join(rec['formats'])}) of the {rec['data']}, "
        f"quarter {rec['quarter']}, on {rec['machine']['cpus']} CPUs (load average "
        f"{rec['machine']['load_avg_before'][0]} before, {rec['machine']['load_avg_after'][0]} after; "
        f"other work was running on the machine), {rec['when']}. "
        "Produced by `benchmarks/bench_report.py`.",
        "",
        "| pipeline | wall (s) | s per report | notes |",
        "|---|---:|---:|---|",
    ]
    for name, r in rec["results"].items():
        notes = ", ".join(f"{k} {v} s" for k, v in r.get("mean_step_s", {}).items())
        if "median_team_s_in_worker" in r:
            notes = f"median {r['median_team_s_in_worker']} s per team inside a worker"
        if "skipped" in r:
            notes = f"{r['skipped']} skipped, {r['rendered']} re-rendered"
        lines.append(f"| {name.replace('_', ' ')} | {r['wall_s']} | {r.get('s_per_report', '')} | {notes} |")
    lines += [
        "",
        "Speed-up of `build_reports`: " + ", ".join(f"{v}× {k.replace('_', ' ')}" for k, v in rec["speedup"].items())
        + ".",
        "",
        f"Naive PDF step: {rec['naive_pdf_step']}. The naive per-team steps are mean seconds per report "
        "(in the parallel run two teams share the CPUs).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
