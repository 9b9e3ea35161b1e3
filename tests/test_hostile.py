"""Hostile text and ids: shown as text in HTML and PDF, nothing executes, nothing written outside the output folder.

A small organisation whose team names, objective and KR titles, check-in comments and metric names hold
script, HTML event handlers, Markdown, LaTeX, a very long string, right-to-left text and emoji, and whose
ids are ``../../etc``, ``con``, ``a/b`` and ``x y``, is rendered by the real batch runner; every page is then
opened in headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from conftest import tiny_tables
from okr_analysis.reports import CHROMIUM_ARGS, find_chromium
from okr_analysis.reports import build_reports

pytestmark = pytest.mark.timeout(300)

QUARTER = "2026Q3"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
SVG = "<svg onload=alert(3)>"
MARKDOWN = "**bold** [link](javascript:alert(1))"
LATEX = "$\\frac{1}{0}$"
RTL = "مرحبا بالعالم שלום עולם"
EMOJI = "🚀🔥👩‍👩‍👧"
LONG = "W" * 3000
IDS = {"t1": "../../etc", "d2": "con", "t2": "a/b", "t3": "x y"}
NAMES = {"t1": f"Alpha {SCRIPT}", "t2": f"Beta {IMG}", "t3": f"Gamma {RTL} {EMOJI}", "d1": f"Dept {MARKDOWN}",
         "d2": f"Dept {LATEX}", "co": "Hostile Co"}
CHROMIUM = find_chromium()


def hostile_tables():
    t = tiny_tables()
    teams = t["teams"]
    teams["team_name"] = teams["team_id"].map(NAMES)
    for name in ("teams", "objectives", "kpis"):
        for col in ("team_id", "parent_team_id"):
            if col in t[name]:
                t[name][col] = t[name][col].replace(IDS)
    t["objectives"]["title"] = [f"Obj {SCRIPT}", f"Obj {MARKDOWN}", f"Obj {IMG} {LONG}", f"Obj {LATEX} {RTL}",
                                f"Obj {EMOJI} {SVG}"]
    kr = t["key_results"]
    kr["title"] = [f"{x} · {h}" for x, h in zip(kr["title"], [SCRIPT, IMG, MARKDOWN, LATEX, SCRIPT, IMG, RTL,
                                                               EMOJI, LONG, SVG])]
    t["checkins"]["comment"] = [f"{SCRIPT} {IMG} {MARKDOWN} {LATEX} {RTL} {EMOJI}"] * len(t["checkins"])
    rename = {"csat": "<b>csat</b><script>window.__pwned=4</script>"}
    for name, col in (("metrics", "metric"), ("key_results", "metric"), ("kpis", "metric"),
                      ("benchmarks", "metric")):
        t[name][col] = t[name][col].replace(rename)
    return t


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    data.mkdir()
    for name, df in hostile_tables().items():
        df.to_csv(data / f"{name}.csv", index=False)
    sentinel = root / "sentinel"
    (sentinel / "etc").mkdir(parents=True)
    (sentinel / "etc" / "keep.txt").write_text("untouched")
    out = root / "sentinel" / "inner" / "reports"  # ../../etc from <out>/<quarter> would land in sentinel
    before = {p: p.stat().st_mtime_ns if p.is_file() else None for p in root.rglob("*")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = build_reports(data, quarter=QUARTER, out=out, jobs=2, formats="html,pdf" if CHROMIUM else "html")
    return {"result": result, "out": out, "folder": out / QUARTER, "root": root, "before": before,
            "sentinel": sentinel}


def test_every_team_renders(built):
    r = built["result"]
    assert r.ok, r.summary()
    assert {o.team_id for o in r.teams} >= set(IDS.values())


def test_nothing_is_written_outside_the_output_folder(built):
    root, out = built["root"], built["out"]
    after = {p: p.stat().st_mtime_ns if p.is_file() else None for p in root.rglob("*")}
    new = {p for p in set(after) - set(built["before"]) if p != out and out not in p.parents}
    assert new <= set(out.parents), sorted(map(str, new))  # only the output folder's own parents were created
    assert {p: m for p, m in after.items() if p in built["before"]} == built["before"], "something outside changed"
    assert (built["sentinel"] / "etc" / "keep.txt").read_text() == "untouched"
    assert sorted(os.listdir(built["sentinel"] / "etc")) == ["keep.txt"]
    for p in out.rglob("*"):
        assert out.resolve() in p.resolve().parents


def test_file_names_are_safe_and_unique(built):
    files = [o.file for o in built["result"].teams]
    assert len(files) == len(set(files))
    for f in files:
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", f), f
        assert f not in ("con", "index", "build")
    for p in built["folder"].iterdir():
        assert "/" not in p.name and " " not in p.name and not p.name.startswith("..")


def test_html_source_has_no_live_markup(built):
    for p in built["folder"].glob("*.html"):
        page = p.read_text(encoding="utf-8")
        for raw in (SCRIPT, IMG, SVG, "<b>csat</b>"):
            assert raw not in page, (p.name, raw)
        assert "javascript:alert" not in re.sub(r"&[a-z#0-9]+;", "", page) or 'href="javascript' not in page


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


@needs_chromium
def test_pages_in_a_real_browser_run_no_script_and_show_the_text(built):
    from playwright.sync_api import sync_playwright

    pages = sorted(built["folder"].glob("*.html"))
    assert any(p.name == "index.html" for p in pages) and len(pages) >= 6
    by_file = {o.file: o for o in built["result"].teams}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            for p in pages:
                page.goto(p.as_uri())
                page.wait_for_timeout(100)
                assert page.evaluate("typeof window.__pwned") == "undefined", p.name
                assert dialogs == [], (p.name, dialogs)
                text = page.inner_text("body")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 1200, (p.name, width)  # the 3,000-character words wrap
                if p.name == "index.html":
                    for name in NAMES.values():
                        if name != "Hostile Co":
                            assert name in text, (p.name, name)
                    continue
                team = by_file.get(p.stem)
                if team is not None and team.team_id == "../../etc":
                    for s in (SCRIPT, IMG, NAMES["t1"], "Obj " + IMG):
                        assert s in text, (p.name, s)
                if team is not None and team.team_id == "d1":
                    for s in (MARKDOWN, LATEX, NAMES["d1"]):
                        assert s in text, (p.name, s)
            page.goto(by_file[next(f for f, o in by_file.items() if o.team_id == "x y")].html.as_uri())
            text = page.inner_text("body")
            assert RTL in text and EMOJI in text and SVG in text
        finally:
            browser.close()


@needs_chromium
@pytest.mark.skipif(shutil.which("pdfinfo") is None, reason="poppler-utils is not installed")
def test_pdfs_have_pages(built):
    pdfs = [o.pdf for o in built["result"].teams if o.pdf is not None]
    assert len(pdfs) == len(built["result"].teams)
    for pdf in pdfs:
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
        assert 1 <= pages < 60, (pdf.name, pages)
        width = re.search(r"Page size:\s+([\d.]+) x", info).group(1)
        assert float(width) < 700  # A4 portrait: the long strings wrap instead of widening the page
