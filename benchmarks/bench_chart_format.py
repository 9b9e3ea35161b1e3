"""Benchmark: the reports' charts as PNG (today) or SVG — file size and time, on the sample's real reports.

Issue 22 says "charts stay PNG unless SVG is smaller and as fast". This measures it on real reports: the
team review of ``support-emea`` (key-result charts, an initiative chart, the KPI panel's small multiples,
the driver chart), of ``sales-enterprise`` (the team with the most key results) and the organisation
overview (``acme``: the heat map, department cards). Each notebook is run by papermill with a first cell
that sets IPython's ``InlineBackend.figure_formats`` to one format (``png``, the default, or ``svg``, with
matplotlib's default of text drawn as paths so that the page looks the same without the fonts), then
rendered to HTML with the report template (``HtmlRenderer``) and printed to PDF with the report's Chromium
(``PdfPrinter``). Per report and format it records: the bytes of the charts inside the notebook (PNG as the
base64 the HTML embeds; SVG as its text), the HTML and PDF file sizes, the time papermill spent in cells that
drew a chart, and the PDF print time. Each (report, format) runs ``--repeats`` times, formats alternating, and
the median time is kept. Data: the sample organisation (seed 0), latest quarter, ``shared=""`` (each notebook
computes the organisation-wide analyses itself, as in JupyterLab).

Results: ``benchmarks/results/chart-format.json`` and ``chart-format.md``.

Run on demand::

    .venv/bin/python benchmarks/bench_chart_format.py              # 3 reports × 2 formats × 2 repeats (~5 min)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"

FORMATS = ("png", "svg")
REPORTS = ("support-emea", "sales-enterprise", "acme")


def _with_format(nb, fmt: str):
    import nbformat

    out = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell(f"%config InlineBackend.figure_formats = [{fmt!r}]")
    cell.metadata["tags"] = ["remove-cell"]
    out.cells.insert(0, cell)
    return out


def _chart_bytes(nb) -> tuple[int, int]:
    """(charts, bytes as embedded in the HTML) of every image output of the executed notebook."""
    n, size = 0, 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/svg+xml" in data:
                n += 1
                svg = data["image/svg+xml"]
                size += len(("".join(svg) if isinstance(svg, list) else svg).encode("utf-8"))
            elif "image/png" in data:
                n += 1
                size += len("".join(data["image/png"]).replace("\n", ""))
    return n, size


def _chart_seconds(nb) -> float:
    """Seconds papermill spent in cells with an image output."""
    total = 0.0
    for cell in nb.cells:
        if any(k.startswith("image/") for out in cell.get("outputs", []) for k in out.get("data", {})):
            total += float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)
    return total


def run_once(unit: str, fmt: str, *, source: Path, quarter: str, work: Path, printer) -> dict:
    import nbformat
    import papermill as pm

    from okr_analysis.reports import NOTEBOOK, ORG_NOTEBOOK, HtmlRenderer

    template = ORG_NOTEBOOK if unit == "acme" else NOTEBOOK
    src = work / f"{unit}-{fmt}-in.ipynb"
    nbformat.write(_with_format(nbformat.read(template, as_version=4), fmt), src)
    executed = work / f"{unit}-{fmt}.ipynb"
    params = {"source": str(source), "quarter": quarter, "shared": ""}
    if unit != "acme":
        params["team_id"] = unit
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm.execute_notebook(str(src), str(executed), parameters=params, progress_bar=False, cwd=str(work),
                            kernel_name="python3")
    run_s = time.perf_counter() - t0
    nb = nbformat.read(executed, as_version=4)
    n_charts, chart_bytes = _chart_bytes(nb)
    page, _ = HtmlRenderer().render(nb)
    html_path = work / f"{unit}-{fmt}.html"
    html_path.write_text(page, encoding="utf-8")
    t0 = time.perf_counter()
    pdf_path = printer.print_pdf(html_path, work / f"{unit}-{fmt}.pdf")
    pdf_s = time.perf_counter() - t0
    return {"unit": unit, "format": fmt, "charts": n_charts, "chart_bytes": chart_bytes,
            "html_bytes": html_path.stat().st_size, "pdf_bytes": Path(pdf_path).stat().st_size,
            "notebook_s": round(run_s, 3), "chart_cells_s": round(_chart_seconds(nb), 3), "pdf_s": round(pdf_s, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)

    from okr_analysis.reports import PdfPrinter
    from okr_analysis.sample import write_sample

    load_before = os.getloadavg()[0]
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "sample"
        write_sample(source)
        from okr_analysis import load

        quarter = load(source).quarters[-1]
        with PdfPrinter() as printer:
            for rep in range(args.repeats):
                for unit in REPORTS:
                    for fmt in (FORMATS if rep % 2 == 0 else FORMATS[::-1]):
                        r = run_once(unit, fmt, source=source, quarter=quarter, work=work, printer=printer)
                        r["repeat"] = rep
                        runs.append(r)
                        print(json.dumps(r), flush=True)
    rows = []
    for unit in REPORTS:
        for fmt in FORMATS:
            rs = [r for r in runs if r["unit"] == unit and r["format"] == fmt]
            rows.append({"unit": unit, "format": fmt, "charts": rs[0]["charts"], "chart_bytes": rs[0]["chart_bytes"],
                         "html_bytes": rs[0]["html_bytes"], "pdf_bytes": rs[0]["pdf_bytes"],
                         "chart_cells_s": statistics.median(r["chart_cells_s"] for r in rs),
                         "notebook_s": statistics.median(r["notebook_s"] for r in rs),
                         "pdf_s": statistics.median(r["pdf_s"] for r in rs)})
    record = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version(), "cpus": os.cpu_count(),
              "load_before": load_before, "load_after": os.getloadavg()[0], "quarter": quarter,
              "repeats": args.repeats, "rows": rows, "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "chart-format.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / "chart-format.md").write_text(_markdown(record))
    print((RESULTS / "chart-format.md").read_text())
    return 0


def _kb(n: int) -> str:
    return f"{n / 1024:,.0f}"


def _markdown(rec: dict) -> str:
    lines = ["# Chart format: PNG or SVG (issue 22)", "",
             f"Produced by `benchmarks/bench_chart_format.py` on {rec['when']}, Python {rec['python']}, {rec['cpus']} "
             f"CPUs (load average {rec['load_before']:.2f} before, {rec['load_after']:.2f} after), quarter "
             f"{rec['quarter']} of the sample organisation, median of {rec['repeats']} runs per report and format "
             "(formats alternating). Sizes in KB; times in seconds.", "",
             "| report | format | charts | charts' bytes in the page | HTML | PDF | chart cells (s) | notebook (s) "
             "| PDF print (s) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rec["rows"]:
        lines.append(f"| {r['unit']} | {r['format']} | {r['charts']} | {_kb(r['chart_bytes'])} | {_kb(r['html_bytes'])} "
                     f"| {_kb(r['pdf_bytes'])} | {r['chart_cells_s']:.2f} | {r['notebook_s']:.1f} | {r['pdf_s']:.2f} |")
    by = {(r["unit"], r["format"]): r for r in rec["rows"]}
    tot = {f: {k: sum(by[(u, f)][k] for u in REPORTS) for k in ("html_bytes", "pdf_bytes", "chart_cells_s", "pdf_s")}
           for f in FORMATS}
    smaller = tot["svg"]["html_bytes"] < tot["png"]["html_bytes"] and tot["svg"]["pdf_bytes"] < tot["png"]["pdf_bytes"]
    as_fast = (tot["svg"]["chart_cells_s"] + tot["svg"]["pdf_s"]) <= 1.05 * (tot["png"]["chart_cells_s"] + tot["png"]["pdf_s"])
    lines += ["", f"Three reports together: HTML {_kb(tot['png']['html_bytes'])} KB (PNG) vs {_kb(tot['svg']['html_bytes'])} KB "
              f"(SVG); PDF {_kb(tot['png']['pdf_bytes'])} KB vs {_kb(tot['svg']['pdf_bytes'])} KB; chart cells plus PDF "
              f"print {tot['png']['chart_cells_s'] + tot['png']['pdf_s']:.1f} s vs "
              f"{tot['svg']['chart_cells_s'] + tot['svg']['pdf_s']:.1f} s.", "",
              "Decision (issue 22: PNG unless SVG is smaller and as fast): "
              + ("**SVG** is smaller and as fast." if smaller and as_fast else
                 "**PNG stays**: SVG is " + ", ".join(w for w, bad in (("not smaller", not smaller),
                                                                   ("slower", not as_fast)) if bad) + ".")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
