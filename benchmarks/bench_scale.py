"""Benchmark: the report batch at 100, 500 and 2,000 teams — memory over time, phases, the index page.

Issue 9: "The report batch for 2,000 teams streams: memory stays flat as the number of teams grows
(measure at 100, 500, 2,000 teams), the shared analyses are computed once, and the index page stays
usable." For each size this script

1. writes a synthetic organisation with the CLI, ``okr-analysis sample DIR --teams N --weeks W
   --format parquet`` (seed 0), into a temporary folder (timed separately, not part of the batch);
2. runs the batch as a subprocess, ``okr-analysis report DIR -q 2026Q3 --out OUT -j JOBS --format
   FORMATS``, with ``OKR_ANALYSIS_CACHE`` set to a fresh temporary folder so no shared analyses are
   reused from an earlier run;
3. every 0.5 s walks the subprocess's whole process tree (psutil) and records the resident set size
   (RSS) of: the tree in total; the parent (the ``okr-analysis`` process, which plans the batch and
   records the results); the data process (named ``okr-data``: the child that loads the data, writes
   the shared analyses and exits before the reports render); the workers (the other
   ``multiprocessing`` spawn children of the parent);
   the Jupyter kernels (``ipykernel`` in the command line; the largest one and the sum); Chromium
   (every ``chrom*`` process, summed) and Playwright's driver (node). Each sample also counts the
   reports finished (``*.html`` in ``OUT/2026Q3`` except ``index.html`` and ``*.failed.html``) and
   notes when the shared-analysis folder appears in the cache;
4. splits the run into the *shared analyses* phase (start until the first report appears: loading
   the data, the org-wide analyses, worker warm-up) and the *rendering* phase (first report until the
   last), with reports per second, and compares per process kind the peak RSS while the first 10 %
   of the reports are rendered with the peak while the last 10 % are — streaming means flat;
5. reads ``OUT/2026Q3/build.json``: counts, ``duration_s``, the median per-team ``duration_s``, the
   sizes of ``build.json`` and ``index.html``; checks that ``index.html`` loads no external script
   and has the search box (``#okr-q``) and the sortable table (``#okr-teams`` with sort buttons), and
   (unless ``--no-index-browser``) opens it in headless Chromium and times loading, a search and a
   sort of the full table.

RSS sums count shared pages (Python libraries, Chromium's shared memory) once per process, so the
totals are upper bounds of the real footprint; the comparisons across sizes are what matters.

Results: ``benchmarks/results/scale.json`` (everything, with each size's time series downsampled
to at most ~300 points), ``scale.md`` (tables and computed flatness sentences) and
``scale-memory.png`` (total and kernel RSS against reports done, one line per size). Sizes run
separately are merged: ``--sizes 100`` then ``--sizes 500`` keeps both in ``scale.json``; the .md
and the PNG are regenerated from every size present.

Run on demand (not part of the tests)::

    .venv/bin/python benchmarks/bench_scale.py                        # 100, 500, 2,000 teams (long)
    .venv/bin/python benchmarks/bench_scale.py --sizes 100            # one size, merged into scale.json
    .venv/bin/python benchmarks/bench_scale.py --sizes 8,16 --formats html --tag smoke   # quick check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BIN = Path(sys.executable).parent
QUARTER = "2026Q3"
MB = 2**20
KINDS = ("total", "parent", "data", "worker_max", "workers", "kernel_max", "kernels", "chromium", "playwright",
         "other", "total_pss", "chromium_pss")
# The memory columns of the summary: (key in the peaks, label, what "flat" is judged on)
MEMORY_COLUMNS = (
    ("total", "total of the tree"),
    ("parent", "parent (okr-analysis)"),
    ("worker_max", "largest worker"),
    ("kernel_max", "largest kernel"),
    ("chromium", "Chromium (sum)"),
)


# ----------------------------------------------------------------------------------
# Process tree sampling
# ----------------------------------------------------------------------------------
def _classify(proc, root_pid: int, cache: dict) -> str:
    """parent / worker / kernel / chromium / playwright / other (memoised per pid + create time)."""
    import psutil

    try:
        key = (proc.pid, proc.create_time())
    except psutil.Error:
        return "other"
    if key in cache:
        return cache[key]
    kind = "other"
    try:
        if proc.pid == root_pid:
            kind = "parent"
        else:
            cmd = " ".join(proc.cmdline())
            name = proc.name().lower()
            if name == "okr-data":  # the batch's data process: loads the data, writes the shared analyses
                kind = "data"
            elif "ipykernel" in cmd:
                kind = "kernel"
            elif "chrom" in name or "headless_shell" in name or re.search(r"/chrom(e|ium)[^/ ]*( |$)", cmd):
                kind = "chromium"
            elif "playwright" in cmd or name == "node":
                kind = "playwright"
            elif proc.ppid() == root_pid and "multiprocessing" in cmd and "resource_tracker" not in cmd:
                kind = "worker"
    except psutil.Error:
        return "other"
    if kind != "worker":  # a spawn child names itself okr-data (the data process) only once it has started
        cache[key] = kind
    return kind


def sample_tree(root, cache: dict, pss: bool = False) -> dict[str, float]:
    """RSS in MB per kind over the process tree of ``root`` (a psutil.Process); with ``pss`` also the
    proportional set size of the tree and of Chromium (shared pages divided among the processes sharing
    them: the real footprint; reading it costs ~1 ms per process, so it is sampled less often)."""
    import psutil

    out = {k: 0.0 for k in KINDS}
    out["n_procs"] = 0
    if not pss:
        out["total_pss"] = out["chromium_pss"] = None
    try:
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return out
    for p in procs:
        try:
            rss = p.memory_info().rss / MB
        except psutil.Error:
            continue
        kind = _classify(p, root.pid, cache)
        if pss:
            try:
                value = p.memory_full_info().pss / MB
            except (psutil.Error, AttributeError):
                value = rss
            out["total_pss"] += value
            if kind == "chromium":
                out["chromium_pss"] += value
        out["n_procs"] += 1
        out["total"] += rss
        if kind == "worker":
            out["workers"] += rss
            out["worker_max"] = max(out["worker_max"], rss)
        elif kind == "kernel":
            out["kernels"] += rss
            out["kernel_max"] = max(out["kernel_max"], rss)
        else:
            out[kind] += rss
    return out


def count_reports(folder: Path) -> int:
    try:
        with os.scandir(folder) as it:
            return sum(1 for e in it if e.name.endswith(".html") and e.name != "index.html"
                       and not e.name.endswith(".failed.html") and not e.name.startswith("."))
    except FileNotFoundError:
        return 0


def shared_ready(cache_base: Path) -> bool:
    """The shared analyses are written to <cache>/<hash of out>/.<key>.tmp-<pid> and renamed to <key>."""
    try:
        for root in cache_base.iterdir():
            if root.is_dir() and any(p.is_dir() and p.name != "logs" and not p.name.startswith(".")
                                     for p in root.iterdir()):
                return True
    except FileNotFoundError:
        pass
    return False


# ----------------------------------------------------------------------------------
# One size
# ----------------------------------------------------------------------------------
def code_version() -> str:
    """The commit the batch runs (short hash; "+changes" when the working tree differs from it)."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "okr_analysis", "notebooks",
                                "templates"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def run_size(teams: int, *, jobs: int, formats: str, weeks: int, tmp: Path, interval: float,
             index_browser: bool, pss_every: float) -> dict:
    import psutil

    commit = code_version()
    data, out, cache = tmp / "data", tmp / "out", tmp / "cache"
    cache.mkdir(parents=True)
    gen_cmd = [str(BIN / "okr-analysis"), "sample", str(data), "--teams", str(teams), "--weeks", str(weeks),
               "--seed", "0", "--format", "parquet"]
    t0 = time.perf_counter()
    subprocess.run(gen_cmd, check=True, stdout=subprocess.DEVNULL)
    gen_s = time.perf_counter() - t0
    data_bytes = sum(p.stat().st_size for p in data.iterdir())
    print(f"[{teams} teams] sample written in {gen_s:.1f} s ({data_bytes / MB:.1f} MB parquet)", flush=True)

    cmd = [str(BIN / "okr-analysis"), "report", str(data), "-q", QUARTER, "--out", str(out), "-j", str(jobs),
           "--format", formats]
    env = {**os.environ, "OKR_ANALYSIS_CACHE": str(cache)}
    folder = out / QUARTER
    log_path = tmp / "report.log"
    load_before = os.getloadavg()
    series: list[dict] = []
    cache_kinds: dict = {}
    t_shared = None
    parent_cpu = 0.0
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        next_t = t0
        last_print = t0
        last_pss = -math.inf
        while True:
            now = time.perf_counter()
            want_pss = pss_every > 0 and now - last_pss >= pss_every - 1e-3
            s = sample_tree(root, cache_kinds, pss=want_pss)
            if want_pss:
                last_pss = now
            with_cpu = 0.0
            try:
                c = root.cpu_times()
                with_cpu = c.user + c.system
                parent_cpu = max(parent_cpu, with_cpu)
            except psutil.Error:
                pass
            s["t"] = now - t0
            s["reports"] = count_reports(folder)
            s["parent_cpu_s"] = parent_cpu
            if t_shared is None and shared_ready(cache):
                t_shared = s["t"]
            if s["n_procs"]:
                series.append(s)
            if proc.poll() is not None:
                break
            if now - last_print >= 30:
                print(f"[{teams} teams] {s['t']:.0f} s: {s['reports']} reports, tree {s['total']:.0f} MB "
                      f"(kernel max {s['kernel_max']:.0f} MB)", flush=True)
                last_print = now
            next_t += interval
            time.sleep(max(0.0, next_t - time.perf_counter()))
        wall = time.perf_counter() - t0
    rc = proc.returncode
    load_after = os.getloadavg()
    log_tail = log_path.read_text(errors="replace")[-3000:]
    print(f"[{teams} teams] batch exited {rc} after {wall:.1f} s", flush=True)

    manifest_path, index_path = folder / "build.json", folder / "index.html"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    entries = manifest.get("teams", [])
    durations = sorted(float(e.get("duration_s") or 0.0) for e in entries if e.get("status") == "rendered")
    n_reports = count_reports(folder)
    record = {
        "teams_requested": teams,
        "reports": len(entries) or n_reports,
        "html_files": n_reports,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": commit,
        "command": shlex.join(cmd),
        "sample_command": shlex.join(gen_cmd),
        "exit_code": rc,
        "log_tail": log_tail if rc else "",
        "sample_s": round(gen_s, 2),
        "data_mb": round(data_bytes / MB, 2),
        "wall_s": round(wall, 2),
        "parent_cpu_s": round(parent_cpu, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_avg_before": [round(x, 2) for x in load_before],
                    "load_avg_after": [round(x, 2) for x in load_after]},
        "jobs": jobs,
        "formats": formats.split(","),
        "weeks": weeks,
        "build": {
            "counts": manifest.get("counts"),
            "ok": manifest.get("ok"),
            "rendered": sum(1 for e in entries if e.get("status") == "rendered"),
            "failed": sum(1 for e in entries if e.get("status") == "failed"),
            "duration_s": manifest.get("duration_s"),
            "median_team_s": round(statistics.median(durations), 3) if durations else None,
            "p90_team_s": round(durations[int(0.9 * (len(durations) - 1))], 3) if durations else None,
            "shared_folder": manifest.get("shared"),
            "shared_in_cache": bool(manifest.get("shared")) and str(manifest.get("shared", "")).startswith(str(cache)),
            "messages": manifest.get("messages"),
            "build_json_bytes": manifest_path.stat().st_size if manifest_path.exists() else None,
            "index_html_bytes": index_path.stat().st_size if index_path.exists() else None,
        },
        "index": check_index(index_path, browser=index_browser),
    }
    record.update(phases(series, record["reports"], t_shared))
    record["series"] = downsample(series, 300)
    return record


def phases(series: list[dict], n_reports: int, t_shared: float | None) -> dict:
    """Shared-analyses and rendering phases, peaks per kind, early vs late peaks within rendering."""
    kinds = [k for k in KINDS]

    def mx(part, k):
        values = [s[k] for s in part if s.get(k) is not None]
        return round(max(values), 1) if values else None

    peaks = {k: mx(series, k) for k in kinds}
    first = next((s for s in series if s["reports"] > 0), None)
    last_count = max((s["reports"] for s in series), default=0)
    last = next((s for s in series if s["reports"] == last_count), None) if last_count else None
    end_t = series[-1]["t"] if series else 0.0
    out: dict = {"peak_mb": peaks, "shared_ready_s": round(t_shared, 2) if t_shared is not None else None}
    if first is None:
        out.update(shared_phase_s=round(end_t, 2), rendering_s=None, reports_per_s=None, s_per_report=None,
                   shared_phase_peak_mb=peaks, rendering_peak_mb=None, early_peak_mb=None, late_peak_mb=None)
        return out
    t1, t2 = first["t"], last["t"]
    shared_part = [s for s in series if s["t"] < t1]
    render_part = [s for s in series if t1 <= s["t"] <= t2]
    rendered_in_phase = last_count - first["reports"]
    rendering_s = t2 - t1
    # The first report is done at t1; the phase covers the remaining ones (sampling resolution: one interval).
    rate = rendered_in_phase / rendering_s if rendering_s > 0 and rendered_in_phase > 0 else None
    window = max(1, math.ceil(0.1 * max(n_reports, last_count)))
    early = [s for s in render_part if s["reports"] <= window]
    late = [s for s in render_part if s["reports"] >= last_count - window]

    def pk(part):
        return {k: mx(part, k) for k in kinds} if part else None

    out.update(
        shared_phase_s=round(t1, 2),
        rendering_s=round(rendering_s, 2),
        shutdown_s=round(end_t - t2, 2),
        reports_per_s=round(rate, 3) if rate else None,
        s_per_report=round(1 / rate, 3) if rate else None,
        shared_phase_peak_mb=pk(shared_part),
        rendering_peak_mb=pk(render_part),
        window_reports=window,
        early_peak_mb=pk(early),
        late_peak_mb=pk(late),
    )
    return out


def downsample(series: list[dict], max_points: int) -> list[dict]:
    keys = ("t", "total", "total_pss", "parent", "data", "workers", "worker_max", "kernels", "kernel_max", "chromium",
            "chromium_pss", "playwright", "other", "n_procs", "reports", "parent_cpu_s")
    step = max(1, math.ceil(len(series) / max_points))
    picked = series[::step]
    if series and picked[-1] is not series[-1]:
        picked.append(series[-1])
    return [{k: (round(s[k], 2) if isinstance(s.get(k), float) else s.get(k)) for k in keys} for s in picked]


def check_index(path: Path, *, browser: bool) -> dict:
    if not path.exists():
        return {"exists": False}
    text = path.read_text(encoding="utf-8")
    sys.path.insert(0, str(REPO))
    try:
        from okr_analysis.reports import iter_external_references

        external = sorted(set(iter_external_references(text)))
    except ImportError:
        external = re.findall(r"<script[^>]+src\s*=\s*[\"']?([^\"'\s>]+)", text, flags=re.I)
    res = {
        "exists": True,
        "rows": len(re.findall(r"<tr data-state=", text)),
        "external_script": bool(re.search(r"<script[^>]*\bsrc\s*=", text, flags=re.I)),
        "external_references": external,
        "inline_script": "<script>" in text,
        "search_box": bool(re.search(r"<input[^>]*id=\"okr-q\"[^>]*type=\"search\"", text)),
        "sortable_table": 'id="okr-teams"' in text and "aria-sort=" in text and "data-type=" in text,
    }
    if browser:
        res["browser"] = time_index_in_browser(path, res["rows"])
    return res


def time_index_in_browser(path: Path, rows: int) -> dict:
    """Open the index in headless Chromium: load, a search, clearing it, a sort by score (ms)."""
    try:
        from playwright.sync_api import sync_playwright

        from okr_analysis.reports import CHROMIUM_ARGS, find_chromium

        chromium = find_chromium()
        if not chromium:
            return {"skipped": "no Chromium"}
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS))
            try:
                page = b.new_page(viewport={"width": 1200, "height": 900})
                t0 = time.perf_counter()
                page.goto(path.as_uri(), wait_until="load")
                load_ms = (time.perf_counter() - t0) * 1000
                n = page.locator("#okr-teams tbody tr").count()
                timing = page.evaluate("""() => {
                    const input = document.getElementById('okr-q');
                    const ms = f => { const t = performance.now(); f(); document.body.offsetHeight;
                                      return performance.now() - t; };
                    const search = ms(() => { input.value = 'team'; input.dispatchEvent(new Event('input')); });
                    const shown = Array.from(document.querySelectorAll('#okr-teams tbody tr'))
                                       .filter(r => !r.hidden).length;
                    const clear = ms(() => { input.value = ''; input.dispatchEvent(new Event('input')); });
                    const btn = document.querySelector('#okr-teams thead button[data-type=num]');
                    const sort = ms(() => btn.click());
                    const sorted = document.querySelector('#okr-teams thead th[aria-sort=ascending]') !== null;
                    return {search, shown, clear, sort, sorted};
                }""")
            finally:
                b.close()
        return {"rows_in_dom": n, "rows_expected": rows, "load_ms": round(load_ms, 1),
                "search_ms": round(timing["search"], 1), "search_rows_shown": timing["shown"],
                "clear_ms": round(timing["clear"], 1), "sort_ms": round(timing["sort"], 1),
                "sort_applied": timing["sorted"]}
    except Exception as exc:  # informational only
        return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}


# ----------------------------------------------------------------------------------
# Results: merge, markdown, plot
# ----------------------------------------------------------------------------------
def _fmt(v, nd=1) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def _flat_sentence(label: str, key: str, sizes: list[dict], tol: float, where: str) -> str:
    lo, hi = sizes[0], sizes[-1]
    a = ((lo.get(where) or {}).get(key)) if where != "peak_mb" else lo["peak_mb"].get(key)
    b = ((hi.get(where) or {}).get(key)) if where != "peak_mb" else hi["peak_mb"].get(key)
    if not a or not b:
        return f"- {label}: not measured at both ends ({lo['teams_requested']:,} and {hi['teams_requested']:,} teams)."
    change = b / a - 1
    verdict = "**flat**" if abs(change) <= tol else ("**grows**" if change > 0 else "**shrinks**")
    return (f"- {label}: {b:,.0f} MB at {hi['teams_requested']:,} teams vs {a:,.0f} MB at "
            f"{lo['teams_requested']:,} ({change:+.0%}) — {verdict} (tolerance ±{tol:.0%}).")


def _drift_sentence(label: str, key: str, r: dict, tol: float) -> str | None:
    e, l_ = (r.get("early_peak_mb") or {}).get(key), (r.get("late_peak_mb") or {}).get(key)
    if not e or not l_:
        return None
    change = l_ / e - 1
    verdict = "flat" if abs(change) <= tol else ("grows" if change > 0 else "shrinks")
    return f"{label} {e:,.0f} → {l_:,.0f} MB ({change:+.0%}, {verdict})"


def markdown(rec: dict, tol: float, png_name: str | None) -> str:
    sizes = sorted(rec["sizes"].values(), key=lambda r: r["teams_requested"])
    lines = [
        "# Report batch at scale: memory, phases, index page",
        "",
        "Produced by `benchmarks/bench_scale.py` (issue 9: the batch streams — memory flat as the number of "
        "teams grows, shared analyses computed once, index page usable). Each size is a fresh synthetic "
        "organisation (`okr-analysis sample --teams N --format parquet`, seed 0) rendered by "
        f"`okr-analysis report -q {QUARTER}` in a subprocess with an empty `OKR_ANALYSIS_CACHE`; the process "
        "tree is sampled every 0.5 s with psutil. Memory is resident set size (RSS) in MB; sums count shared "
        "pages once per process. *Early* / *late*: peak while the first / last 10 % of the reports were "
        "rendered. PSS (proportional set size, sampled every 2 s) splits shared pages among the processes "
        "sharing them: the real footprint, which RSS sums overstate (Chromium's processes especially).",
        "",
    ]
    for r in sizes:
        m, b, ix = r["machine"], r["build"], r["index"]
        lines += [
            f"## {r['teams_requested']:,} teams — {r['reports']:,} reports",
            "",
            f"{r['when']}, {m['cpus']} CPUs, load average {m['load_avg_before'][0]} before, "
            f"{m['load_avg_after'][0]} after; `-j {r['jobs']}`, formats {'+'.join(r['formats'])}, "
            f"{r['weeks']} weeks of data ({r['data_mb']} MB Parquet, written in {r['sample_s']} s, not counted). "
            f"Exit code {r['exit_code']}. Code: commit {r.get('commit', 'not recorded')}.",
            "",
            f"Command: `{r['command']}`",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| reports (rendered / failed) | {r['reports']:,} ({b['rendered']:,} / {b['failed']:,}) |",
            f"| wall time of the batch (s) | {_fmt(r['wall_s'])} |",
            f"| shared-analysis phase: start → first report (s) | {_fmt(r.get('shared_phase_s'))} |",
            f"| … of which shared analyses ready in the cache at (s) | {_fmt(r.get('shared_ready_s'))} |",
            f"| rendering phase: first → last report (s) | {_fmt(r.get('rendering_s'))} |",
            f"| s per report (rendering phase) / reports per s | {_fmt(r.get('s_per_report'), 2)} / "
            f"{_fmt(r.get('reports_per_s'), 2)} |",
            f"| median / p90 time per team in a worker (s) | {_fmt(b['median_team_s'], 2)} / "
            f"{_fmt(b['p90_team_s'], 2)} |",
            f"| build.json duration_s | {_fmt(b['duration_s'])} |",
            f"| parent CPU time (s) | {_fmt(r.get('parent_cpu_s'))} |",
            f"| peak RSS, whole tree (MB) | {_fmt(r['peak_mb']['total'], 0)} |",
            f"| peak RSS, parent (MB) | {_fmt(r['peak_mb']['parent'], 0)} |",
            f"| peak RSS, data process: loads the data, writes the shared analyses, exits (MB) | "
            f"{_fmt(r['peak_mb'].get('data'), 0)} |",
            f"| peak RSS, per worker (largest) / all workers (MB) | {_fmt(r['peak_mb']['worker_max'], 0)} / "
            f"{_fmt(r['peak_mb']['workers'], 0)} |",
            f"| peak RSS, per kernel (largest) / all kernels (MB) | {_fmt(r['peak_mb']['kernel_max'], 0)} / "
            f"{_fmt(r['peak_mb']['kernels'], 0)} |",
            f"| peak RSS, Chromium (sum) / Playwright driver (MB) | {_fmt(r['peak_mb']['chromium'], 0)} / "
            f"{_fmt(r['peak_mb']['playwright'], 0)} |",
            f"| peak PSS (shared pages split), whole tree / Chromium (MB) | "
            f"{_fmt(r['peak_mb'].get('total_pss'), 0)} / {_fmt(r['peak_mb'].get('chromium_pss'), 0)} |",
        ]
        e, l_ = r.get("early_peak_mb") or {}, r.get("late_peak_mb") or {}
        for key, label in (("kernel_max", "largest kernel"), ("worker_max", "largest worker"),
                           ("parent", "parent"), ("chromium", "Chromium"), ("total", "whole tree")):
            lines.append(f"| {label} peak, early vs late (MB) | {_fmt(e.get(key), 0)} vs {_fmt(l_.get(key), 0)} |")
        lines += [
            f"| build.json / index.html size (KB) | {_fmt((b['build_json_bytes'] or 0) / 1024, 0)} / "
            f"{_fmt((b['index_html_bytes'] or 0) / 1024, 0)} |",
            f"| index.html: external script / search box / sortable table | "
            f"{'yes' if ix.get('external_script') else 'no'} / {'yes' if ix.get('search_box') else 'no'} / "
            f"{'yes' if ix.get('sortable_table') else 'no'} |",
        ]
        br = ix.get("browser") or {}
        if "load_ms" in br:
            lines.append(f"| index.html in Chromium: load / search / sort ({br['rows_in_dom']:,} rows, ms) | "
                         f"{br['load_ms']:,.0f} / {br['search_ms']:,.0f} / {br['sort_ms']:,.0f} |")
        elif br:
            lines.append(f"| index.html in Chromium | {br.get('skipped') or br.get('error')} |")
        drift = [d for d in (_drift_sentence(lbl, k, r, tol) for k, lbl in MEMORY_COLUMNS) if d]
        lines += ["", "Within the run (early → late): " + "; ".join(drift) + "." if drift else "", ""]
        if r["exit_code"]:
            lines += ["The batch failed; last lines of its output:", "", "```", r["log_tail"][-1500:], "```", ""]

    lines += ["## Across sizes", ""]
    if len(sizes) >= 2:
        lines += [
            "| teams | reports | shared phase (s) | rendering (s) | s/report | total | parent | data process "
            "| per worker | per kernel | Chromium | kernel early → late | build.json KB | index.html KB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for r in sizes:
            p, b = r["peak_mb"], r["build"]
            e, l_ = r.get("early_peak_mb") or {}, r.get("late_peak_mb") or {}
            lines.append(
                f"| {r['teams_requested']:,} | {r['reports']:,} | {_fmt(r.get('shared_phase_s'))} | "
                f"{_fmt(r.get('rendering_s'))} | {_fmt(r.get('s_per_report'), 2)} | {p['total']:,.0f} | "
                f"{p['parent']:,.0f} | {_fmt(p.get('data'), 0)} | {p['worker_max']:,.0f} | {p['kernel_max']:,.0f} | {p['chromium']:,.0f} | "
                f"{_fmt(e.get('kernel_max'), 0)} → {_fmt(l_.get('kernel_max'), 0)} | "
                f"{(b['build_json_bytes'] or 0) / 1024:,.0f} | {(b['index_html_bytes'] or 0) / 1024:,.0f} |")
        lines += ["", f"Peak RSS (MB), largest size vs smallest, flat = within ±{tol:.0%}:", ""]
        lines += [_flat_sentence(label, key, sizes, tol, "peak_mb") for key, label in MEMORY_COLUMNS]
        lines.append(_flat_sentence("whole tree, PSS", "total_pss", sizes, tol, "peak_mb"))
        if all(r["peak_mb"].get("data") for r in sizes):  # not flat by design: it holds the organisation
            lines.append(_flat_sentence("data process (one-off: it holds the organisation's data, then exits)",
                                        "data", sizes, tol, "peak_mb"))
        lines += ["", "Peak RSS during rendering only (the shared-analysis phase excluded):", ""]
        lines += [_flat_sentence(label, key, sizes, tol, "rendering_peak_mb") for key, label in MEMORY_COLUMNS]
        sp = [r.get("s_per_report") for r in sizes]
        if all(sp):
            change = sp[-1] / sp[0] - 1
            lines += ["", f"Seconds per report: {sp[-1]:.2f} at {sizes[-1]['teams_requested']:,} teams vs "
                      f"{sp[0]:.2f} at {sizes[0]['teams_requested']:,} ({change:+.0%})."]
    else:
        lines.append("Only one size measured so far; run more sizes to compare.")
    if png_name:
        lines += ["", f"![memory over the batch]({png_name})", "",
                  f"[{png_name}]({png_name}): whole-tree and largest-kernel RSS against reports done, one line "
                  "per size (points at 0 reports are the shared-analysis phase)."]
    lines.append("")
    return "\n".join(lines)


def plot(rec: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sizes = sorted(rec["sizes"].values(), key=lambda r: r["teams_requested"])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for r in sizes:
        s = r["series"]
        if not s:
            continue
        label = f"{r['teams_requested']:,} teams"
        if r.get("rendering_s") is not None:  # against reports done: up to the last report (not the shutdown)
            end = r["shared_phase_s"] + r["rendering_s"]
            upto = [p for p in s if p["t"] < end - 1e-6] or s  # the last sample already sees workers exit
        else:
            upto = s
        x = [p["reports"] for p in upto]
        axes[0].plot(x, [p["total"] for p in upto], marker=".", ms=3, lw=1, label=label)
        axes[1].plot(x, [p["kernel_max"] for p in upto], marker=".", ms=3, lw=1, label=label)
        axes[2].plot([p["t"] for p in s], [p["total"] for p in s], lw=1, label=label)
    axes[0].set(title="Whole process tree", xlabel="reports done", ylabel="RSS (MB)")
    axes[1].set(title="Largest Jupyter kernel", xlabel="reports done", ylabel="RSS (MB)")
    axes[2].set(title="Whole process tree over time", xlabel="seconds since start", ylabel="RSS (MB)")
    if len(sizes) > 1 and max(r["reports"] for r in sizes) > 20 * max(1, min(r["reports"] for r in sizes)):
        for ax in axes[:2]:
            ax.set_xscale("symlog", linthresh=10)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.suptitle("okr-analysis report batch: memory (benchmarks/bench_scale.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("okr-analysis", "papermill", "nbconvert", "ipykernel", "playwright", "pandas", "psutil"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,500,2000", help="leaf teams per run, comma-separated")
    ap.add_argument("--jobs", type=int, default=2, help="-j of okr-analysis report")
    ap.add_argument("--formats", default="html,pdf", help="--format of okr-analysis report")
    ap.add_argument("--weeks", type=int, default=156, help="weeks of KPI data in the sample")
    ap.add_argument("--interval", type=float, default=0.5, help="seconds between memory samples")
    ap.add_argument("--pss-every", type=float, default=2.0,
                    help="seconds between PSS readings of the tree (0: none; RSS is read every --interval)")
    ap.add_argument("--tolerance", type=float, default=0.2, help="relative change still called flat")
    ap.add_argument("--no-index-browser", action="store_true", help="do not time index.html in Chromium")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (data, reports, cache)")
    ap.add_argument("--tag", default="", help="results suffix: scale-TAG.json/.md/-memory.png")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: rewrite the .md and the PNG from the .json")
    args = ap.parse_args(argv)
    try:
        import psutil  # noqa: F401
    except ImportError:
        ap.error("psutil is needed: .venv/bin/pip install psutil")
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    name = f"scale-{args.tag}" if args.tag else "scale"
    json_path, md_path, png_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md", RESULTS / f"{name}-memory.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    rec = json.loads(json_path.read_text()) if json_path.exists() else {}
    rec.setdefault("sizes", {})
    rec["benchmark"] = "report batch at scale: memory over the process tree, phases, index page"
    if args.render_only:
        png_ok = plot(rec, png_path)
        md_path.write_text(markdown(rec, args.tolerance, png_path.name if png_ok else None))
        print(f"written {md_path.name} and {png_path.name} from {json_path.name}")
        return 0

    for teams in sizes:
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-scale-{teams}-"))
        try:
            r = run_size(teams, jobs=args.jobs, formats=args.formats, weeks=args.weeks, tmp=tmp,
                         interval=args.interval, index_browser=not args.no_index_browser,
                         pss_every=args.pss_every)
        finally:
            if args.keep:
                print(f"[{teams} teams] kept {tmp}", flush=True)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        r["bench_command"] = shlex.join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
        rec["sizes"][str(teams)] = r
        rec["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        rec["versions"] = _versions()
        # written after every size, so a long run that is interrupted keeps what it measured
        png_ok = plot(rec, png_path)
        json_path.write_text(json.dumps(rec, indent=1) + "\n")
        md_path.write_text(markdown(rec, args.tolerance, png_path.name if png_ok else None))
        p = r["peak_mb"]
        print(f"[{teams} teams] {r['reports']} reports: shared phase {r.get('shared_phase_s')} s, rendering "
              f"{r.get('rendering_s')} s ({r.get('s_per_report')} s/report); peak RSS total {p['total']:.0f} MB, "
              f"parent {p['parent']:.0f}, worker {p['worker_max']:.0f}, kernel {p['kernel_max']:.0f}, "
              f"chromium {p['chromium']:.0f}", flush=True)
    print(f"written {json_path}, {md_path.name} and {png_path.name}")
    return 0 if all(rec["sizes"][str(t)]["exit_code"] == 0 for t in sizes) else 1


if __name__ == "__main__":
    sys.exit(main())
