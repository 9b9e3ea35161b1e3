"""What a reader's browser sees: the sample's reports and index work offline and pass axe-core.

A team review, the organisation overview and the index, rendered from the sample organisation, are opened
in headless Chromium with the network switched off: no request may leave the file, and axe-core (through
axe-playwright-python) may report no serious or critical violation. Every chart carries alt text of its own.
"""

from __future__ import annotations

import re
import warnings

import pytest

from okr_analysis.reports import build_reports, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
TEAM = "hr-partners"


@pytest.fixture(scope="module")
def pages(sample_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("a11y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = build_reports(sample_dir, quarter="latest", teams=[TEAM], out=out, formats="html", jobs=2)
    assert result.ok, result.summary()
    return {"team review": result[TEAM].html, "organisation overview": result.teams[0].html,
            "index": result.index_path}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _open(browser, path):
    """The page opened offline, and every request it made that is not the file itself or inline data."""
    context = browser.new_context(offline=True)
    page = context.new_page()
    outside, failed = [], []
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else outside.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return context, page, outside, failed


@pytest.mark.parametrize("which", ["team review", "organisation overview", "index"])
def test_the_page_works_offline_and_has_no_serious_accessibility_violation(pages, browser, which):
    from axe_playwright_python.sync_playwright import Axe

    context, page, outside, failed = _open(browser, pages[which])
    try:
        assert outside == [] and failed == [], f"{which} requested {outside or failed}"
        violations = Axe().run(page).response["violations"]
    finally:
        context.close()
    serious = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"][:3]]) for v in violations
               if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{which}: {serious}"


@pytest.mark.parametrize("which", ["team review", "organisation overview"])
def test_every_chart_has_alt_text_of_its_own(pages, which):
    html = pages[which].read_text(encoding="utf-8")
    alts = re.findall(r'<img [^>]*alt="([^"]*)"', html)
    assert len(alts) == html.count("<img "), "an image without alt text"
    assert alts, f"{which} shows no chart"
    assert not any("No description has been provided" in a for a in alts)
    assert all(a.strip() and a != "Chart" for a in alts), alts
