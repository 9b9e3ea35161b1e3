"""Benchmark: quarterly review reports, the naive way vs ``build_reports``, in the same run, at 8 and 17 reports.

The naive way, per report: the ``papermill`` CLI (the org overview notebook for the organisation, the team
review for every other unit, as ``build_reports`` does), then ``jupyter nbconvert --to html`` (with the same
``okr_report`` template), then Chromium's own ``--headless --print-to-pdf`` (nbconvert's ``webpdf`` exporter
cannot be used here: it has no browser-path option and ``playwright install`` cannot download one), one report
after another. It runs once over the 17 report units of the sample organisation; the 8-report figure is the
same loop's first 8 reports (a sequential loop's time is the sum of its reports'). With ``--naive-parallel``
the loop also runs two reports at a time (``xargs -P 2`` style).

``build_reports`` (``okr-analysis report``) then renders the first 8 report units (the organisation's overview
and the first 7 teams in tree order, depth first: ``acme``, ``hr`` and its teams, ``support`` …; the result
file lists them) and all 17, each with
``force=True`` into a fresh folder (warm kernels, one exporter and one Chromium per worker, shared analyses
computed once), and the 17 again with nothing changed.

Finally **a worker's profile**: one report worker built in this process (as ``build_reports`` builds one per
process) runs a few reports, timing its start-up, each notebook section (papermill's per-cell durations),
the HTML export and the PDF print; and each shared analysis is timed once. This says where a report's time
goes, for whoever wants to make it faster.

Data: the sample organisation (``okr_analysis.sample``, seed 0). Results: ``benchmarks/results/report.json``
and ``report.md``, with the commit measured (reports change while other work lands).

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_report.py                 # 8 and 17 reports (~15 min on 2 busy cores)
    .venv/bin/python benchmarks/bench_report.py --sizes 4       # quicker: the first 4 report units
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
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


def _run(cmd: list[str], **kw) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t0


def _naive_team(team: str, *, notebook: Path, source: Path, quarter: str, work: Path,
                chromium: str | None) -> dict[str, float]:
    from okr_analysis.reports import CHROMIUM_ARGS, TEMPLATE_DIR, team_file_name

    stem = team_file_name(team)
    nb, html, pdf = work / f"{stem}.ipynb", work / f"{stem}.html", work / f"{stem}.pdf"
    times = {
        "papermill": _run([sys.executable, "-m", "papermill", str(notebook), str(nb), "-p", "source", str(source),
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


def _commit() -> dict[str, object]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.rstrip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
             if line[3:] and not line[3:].startswith("benchmarks/results/")]
    return {"commit": git("rev-parse", "--short", "HEAD"), "subject": git("log", "-1", "--format=%s"),
            "uncommitted_changes": dirty}


def _section(source: str) -> str:
    """A report cell's name: the section function it calls (``team.kpi_panel``), else its first line."""
    hit = re.search(r"\b((?:team|org)\.\w+)\(", source)
    if hit:
        return hit.group(1)
    if "open_report(" in source:
        return "open_report (shared analyses, this team's data)"
    if "parameters" in source.splitlines()[0].lower() if source.strip() else False:
        return "parameters"
    return source.strip().splitlines()[0][:40] if source.strip() else "(empty)"


def profile_worker(teams: list[str], *, roots: list[str], source: Path, quarter: str, as_of: str, shared: str,
                   chromium: str | None, work: Path) -> dict[str, object]:
    """One report worker in this process: its start-up, then per report the notebook's sections, the HTML export
    and the PDF print (the steps of ``_Worker.run``, timed one by one)."""
    import papermill as pm

    from okr_analysis.config import NOTEBOOK, ORG_NOTEBOOK, TEMPLATE_DIR
    from okr_analysis.reports.worker import _ENGINE_NAME, _RESET_CODE, _notebook_imports, _Worker, _WorkerConfig

    cfg = _WorkerConfig(notebook=str(NOTEBOOK), template_dir=str(TEMPLATE_DIR), kernel_name="python3",
                        cwd=str(NOTEBOOK.parent), warm_imports=_notebook_imports(NOTEBOOK), chromium=chromium,
                        cell_timeout=None, log_dir=str(work / "logs"))
    t0 = time.perf_counter()
    worker = _Worker(cfg)
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    worker.pdf_error  # noqa: B018 - waits for the browser
    browser_wait_s = time.perf_counter() - t0
    reports = []
    try:
        for team in teams:
            nb_path = ORG_NOTEBOOK if team in roots else NOTEBOOK
            out_nb, out_html, out_pdf = work / f"{team}.ipynb", work / f"{team}.html", work / f"{team}.pdf"
            t0 = time.perf_counter()
            nb = pm.execute_notebook(
                str(nb_path), str(out_nb), parameters={"source": str(source), "team_id": team, "quarter": quarter,
                                                       "as_of": as_of, "min_group_size": 5, "shared": shared},
                engine_name=_ENGINE_NAME, km=worker.km, kc=worker.kc, kernel_name=cfg.kernel_name,
                reset_code=_RESET_CODE.format(cwd=str(nb_path.parent)), progress_bar=False,
                request_save_on_cell_execute=False)
            t1 = time.perf_counter()
            body, _ = worker.renderer.render(nb, resources={"okr_summary": {}})
            out_html.write_text(body, encoding="utf-8")
            t2 = time.perf_counter()
            pdf_s = None
            if not worker.pdf_error:
                worker.print_pdf(out_html, out_pdf, footer=team)
                pdf_s = round(time.perf_counter() - t2, 2)
            sections: dict[str, float] = {}
            for cell in nb.cells:
                if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", []):
                    name = _section(cell.source)
                    sections[name] = round(sections.get(name, 0.0)
                                           + float(cell.metadata.get("papermill", {}).get("duration") or 0), 2)
            reports.append({"team_id": team, "execute_s": round(t1 - t0, 2),
                            "cells_s": round(sum(sections.values()), 2), "sections_s": sections,
                            "html_s": round(t2 - t1, 2), "pdf_s": pdf_s, "html_kb": len(body) // 1024,
                            "images": body.count("<img")})
    finally:
        worker.close()
    return {"worker_start_s": round(start_s, 2), "browser_wait_after_start_s": round(browser_wait_s, 2),
            "reports": reports}


def time_shared(ds, *, quarter, as_of, min_group_size: int = 5) -> dict[str, float]:
    """Seconds of each shared analysis, computed once here (the batch computes them once, before the reports)."""
    from okr_analysis.reports import SHARED_ANALYSES

    out = {}
    for name, func in SHARED_ANALYSES.items():
        t0 = time.perf_counter()
        func(ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size)
        out[name] = round(time.perf_counter() - t0, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8,17", help="report counts, the first N report units (default 8,17)")
    parser.add_argument("--jobs", type=int, default=2, help="workers for build_reports (and the parallel naive run)")
    parser.add_argument("--naive-parallel", action="store_true", help="also run the naive loop two at a time")
    parser.add_argument("--profile", default="", help="report units to profile in one worker (default: the "
                        "overview, a department and the two costliest teams of the batch)")
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore")
    from okr_analysis import __version__, load
    from okr_analysis.config import NOTEBOOK, ORG_NOTEBOOK
    from okr_analysis.reports import build_reports, cache_folder, find_chromium
    from okr_analysis.sample import write_sample

    commit = _commit()
    chromium = find_chromium()
    sizes = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        tmp = Path(tmp)
        source = write_sample(tmp / "data", seed=0)
        data_label = "sample organisation (okr_analysis.sample, seed 0)"
        ds = load(source)
        quarter = ds.latest_quarter
        tree = ds.team_tree
        roots = tree.loc[tree["depth"] == 0, "team_id"].tolist()
        units = [t for r in roots for t in ds.subtree(r)]  # overview first, as build_reports orders them
        sizes = [min(n, len(units)) for n in sizes]
        formats = ("html", "pdf") if chromium else ("html",)
        print(f"commit {commit['commit']}; {len(units)} report units of the {data_label}, quarter {quarter}, "
              f"formats {'+'.join(formats)}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
        load_before = os.getloadavg()

        def naive(teams: list[str], work: Path, jobs: int = 1) -> list[dict[str, float]]:
            work.mkdir()
            run = lambda t: _naive_team(t, notebook=ORG_NOTEBOOK if t in roots else NOTEBOOK,  # noqa: E731
                                        source=source, quarter=quarter, work=work, chromium=chromium)
            if jobs == 1:
                steps = []
                for t in teams:
                    steps.append(run(t))
                    print(f"  naive {t}: {sum(steps[-1].values()):.1f} s", flush=True)
                return steps
            with ThreadPoolExecutor(jobs) as pool:
                return list(pool.map(run, teams))

        largest = units[: max(sizes)]
        t0 = time.perf_counter()
        naive_steps = naive(largest, tmp / "naive-seq")
        naive_wall = time.perf_counter() - t0
        print(f"naive, one report at a time, {len(largest)} reports: {naive_wall:.1f} s", flush=True)
        naive_par = None
        if args.naive_parallel:
            t0 = time.perf_counter()
            naive(largest, tmp / "naive-par", jobs=args.jobs)
            naive_par = time.perf_counter() - t0
            print(f"naive, {args.jobs} at a time: {naive_par:.1f} s", flush=True)

        runs = []
        shared_dir = None
        batch_teams = None
        for n in sizes:
            teams = units[:n]
            out = tmp / f"reports-{n}"
            non_roots = [t for t in teams if t not in roots]
            t0 = time.perf_counter()
            r = build_reports(source, quarter=quarter, teams=non_roots, org_overview=bool(set(roots) & set(teams)),
                              formats=formats, out=out, jobs=args.jobs, force=True, progress=False)
            ours = time.perf_counter() - t0
            assert r.ok and len(r.rendered) == n, r.summary()
            per_team = {t.team_id: t.duration_s for t in r.teams}
            print(f"build_reports, {n} reports, jobs={args.jobs}: {ours:.1f} s", flush=True)
            unchanged = None
            if n == max(sizes):
                t0 = time.perf_counter()
                r2 = build_reports(source, quarter=quarter, teams=non_roots, org_overview=bool(set(roots) & set(teams)),
                                   formats=formats, out=out, jobs=args.jobs, progress=False)
                unchanged = {"wall_s": round(time.perf_counter() - t0, 2), "skipped": len(r2.skipped),
                             "rendered": len(r2.rendered)}
                shared_dir = r.manifest.get("shared") if isinstance(r.manifest, dict) else None
                batch_teams = per_team
            naive_n = naive_steps[:n]
            naive_s = sum(sum(s.values()) for s in naive_n)
            runs.append({
                "reports": n, "units": teams,
                "naive_sequential": {"wall_s": round(naive_s, 1), "s_per_report": round(naive_s / n, 2),
                                     "mean_step_s": {k: round(sum(s[k] for s in naive_n) / n, 2)
                                                     for k in naive_n[0]}},
                "build_reports": {"jobs": args.jobs, "wall_s": round(ours, 1), "s_per_report": round(ours / n, 2),
                                  "sum_of_reports_in_workers_s": round(sum(per_team.values()), 1),
                                  "median_report_in_worker_s": round(statistics.median(per_team.values()), 2),
                                  "report_in_worker_s": per_team},
                "unchanged": unchanged,
                "speedup": round(naive_s / ours, 2),
            })
        if naive_par is not None:
            runs[-1]["naive_parallel"] = {"jobs": args.jobs, "wall_s": round(naive_par, 1),
                                          "speedup_vs_it": round(naive_par / runs[-1]["build_reports"]["wall_s"], 2)}

        # where a report's time goes
        if args.profile:
            prof_teams = [t.strip() for t in args.profile.split(",") if t.strip()]
        else:
            costly = sorted((t for t in batch_teams if t not in roots), key=lambda t: -batch_teams[t])
            depts = [t for t in units if t not in roots and tree.set_index("team_id").loc[t, "depth"] == 1]
            prof_teams = list(dict.fromkeys(roots[:1] + depts[:1] + costly[:2]))
        profile = None
        if shared_dir:
            print(f"profiling one worker on {', '.join(prof_teams)}", flush=True)
            (tmp / "profile").mkdir()
            profile = profile_worker(prof_teams, roots=roots, source=source, quarter=quarter,
                                     as_of=r.manifest.get("as_of") or str(ds.quarter(quarter).end.date()),
                                     shared=shared_dir, chromium=chromium, work=tmp / "profile")
        q = ds.quarter(quarter)
        shared_s = time_shared(ds, quarter=q, as_of=min(q.end, ds.kpis["date"].max()))
        for n in sizes:
            shutil.rmtree(cache_folder(tmp / f"reports-{n}"), ignore_errors=True)

    record = {
        "benchmark": "quarterly review reports: naive CLI pipeline vs build_reports, at 8 and 17 reports",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "code": commit,
        "data": data_label,
        "quarter": quarter,
        "formats": list(formats),
        "naive_pdf_step": "chromium --headless --print-to-pdf per file (nbconvert webpdf cannot find a browser)"
        if chromium else "none: Chromium not installed",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_before": [round(x, 2) for x in load_before],
                    "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
        "versions": _versions(__version__),
        "runs": runs,
        "worker_profile": profile,
        "shared_analyses_s": shared_s,
        "targets": {"8": 4.0, "17": 6.0, "moonshot_17": 8.0},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "report.md").write_text(_markdown(record))
    print(json.dumps({r["reports"]: r["speedup"] for r in runs}))
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


def _load_words(load_before: float) -> str:
    """What the load average before the run says (the load after includes the benchmark's own workers)."""
    if load_before < 0.5:
        return "the machine was otherwise idle; the load after is the benchmark's own"
    return "other work was running on the machine"


def _markdown(rec: dict) -> str:
    m = rec["machine"]
    code = rec["code"]
    dirty = f" plus uncommitted changes to {', '.join(code['uncommitted_changes'])}" if code["uncommitted_changes"] else ""
    lines = [
        "# Report pipeline benchmark",
        "",
        f"Quarterly review reports ({' + '.join(rec['formats'])}) of the {rec['data']}, quarter {rec['quarter']}, "
        f"on {m['cpus']} CPUs (load average {m['load_avg_before'][0]} before, {m['load_avg_after'][0]} after; "
        f"{_load_words(m['load_avg_before'][0])}), {rec['when']}, code at commit `{code['commit']}` "
        f"(\"{code['subject']}\"){dirty}. Produced by `benchmarks/bench_report.py`.",
        "",
        "The naive way runs per report the `papermill` CLI, `jupyter nbconvert --to html` and Chromium's "
        "`--print-to-pdf`, one report after another; `build_reports` (`okr-analysis report`) runs "
        f"{rec['runs'][0]['build_reports']['jobs']} workers, each with a warm kernel, one exporter and one "
        "browser, after computing the shared analyses once. The 8 reports are the first 8 report units in tree "
        f"order ({', '.join(rec['runs'][0]['units'])}); the naive figure for them is the first 8 reports of the "
        "same sequential loop.",
        "",
        "| reports | naive, one at a time (s) | naive s per report | `build_reports` (s) | s per report | "
        "speed-up | target |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rec["runs"]:
        target = rec["targets"].get(str(r["reports"]))
        met = "" if target is None else (f"≥ {target:g}×: **{'met' if r['speedup'] >= target else 'not met'}**")
        lines.append(f"| {r['reports']} | {r['naive_sequential']['wall_s']} | {r['naive_sequential']['s_per_report']} | "
                     f"{r['build_reports']['wall_s']} | {r['build_reports']['s_per_report']} | "
                     f"{r['speedup']}× | {met} |")
    last = rec["runs"][-1]
    steps = ", ".join(f"{k} {v} s" for k, v in last["naive_sequential"]["mean_step_s"].items())
    lines += ["", f"Naive steps, mean per report ({last['reports']} reports): {steps}. Inside `build_reports`' "
              f"workers a report took {last['build_reports']['median_report_in_worker_s']} s (median; "
              f"{last['build_reports']['sum_of_reports_in_workers_s']} s summed over the reports)."]
    if last.get("unchanged"):
        u = last["unchanged"]
        lines.append(f"`build_reports` again with nothing changed: {u['wall_s']} s ({u['skipped']} skipped, "
                     f"{u['rendered']} re-rendered).")
    if last.get("naive_parallel"):
        p = last["naive_parallel"]
        lines.append(f"Naive, {p['jobs']} reports at a time: {p['wall_s']} s ({p['speedup_vs_it']}× slower than "
                     "`build_reports`).")
    prof = rec.get("worker_profile")
    if prof:
        lines += ["", "## Where a report's time goes: one worker, profiled", "",
                  f"Worker start-up (kernel start and the notebook's imports, exporter; the browser starts "
                  f"alongside): {prof['worker_start_s']} s, then {prof['browser_wait_after_start_s']} s more "
                  "waiting for the browser. Per report (seconds; sections are papermill's cell durations):", ""]
        names = list(dict.fromkeys(k for r in prof["reports"] for k in r["sections_s"]))
        lines += ["| step | " + " | ".join(f"`{r['team_id']}`" for r in prof["reports"]) + " |",
                  "|---|" + "---:|" * len(prof["reports"])]
        for k in names:
            lines.append(f"| {k} | " + " | ".join(str(r["sections_s"].get(k, "")) for r in prof["reports"]) + " |")
        for key, label in (("cells_s", "**all cells**"), ("execute_s", "papermill execute (cells + overhead)"),
                           ("html_s", "HTML export (nbconvert)"), ("pdf_s", "PDF print (Chromium)"),
                           ("html_kb", "HTML size (KB)"), ("images", "images")):
            lines.append(f"| {label} | " + " | ".join(str(r.get(key)) for r in prof["reports"]) + " |")
    if rec.get("shared_analyses_s"):
        sa = rec["shared_analyses_s"]
        lines += ["", f"Shared analyses, computed once per batch: {round(sum(sa.values()), 1)} s ("
                  + ", ".join(f"{k} {v}" for k, v in sorted(sa.items(), key=lambda kv: -kv[1]) if v >= 0.1) + ")."]
    lines += ["", f"Naive PDF step: {rec['naive_pdf_step']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
