"""The printed reports as a reader sees them: the sample organisation's reports rendered once, then looked at.

Every check works on the files a batch writes (HTML and PDF), with the tools a person would use: ``pdftotext``
for the words on each page and ``pdftoppm`` for the pages as images.

- page budgets: a team's review and the organisation overview fit in 6 pages each (issue 22);
- no page but the last of a part is more than 60% white, and no heading or table caption is left alone at
  the foot of a page (print CSS in ``templates/okr_report/okr_report.css``);
- wide tables and the appendix print on landscape pages, the rest on portrait A4;
- no metric id (``intranet_visits``) before the appendix; no image with nbconvert's default alt text.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from okr_analysis.reports import PdfPrinter, build_reports, find_chromium

CHROMIUM = find_chromium()
POPPLER = shutil.which("pdftotext") and shutil.which("pdftoppm") and shutil.which("pdfinfo")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.skipif(not POPPLER, reason="poppler-utils is not installed (apt-get install poppler-utils)"),
]

#: Page budgets of issue 22: a team's review (appendix included) and the organisation overview.
TEAM_PAGES, ORG_PAGES = 6, 6
#: A page other than the last of a part may be at most this share white.
MAX_WHITE = 0.60
#: Page margins (mm) of okr_report.css: the share-white measure looks at the page body only, not the running
#: footer that Chromium prints in the bottom margin.
MARGIN_TOP_MM, MARGIN_BOTTOM_MM = 12, 14
#: A white band at least this tall counts as empty page; the space between lines and paragraphs does not.
WHITE_RUN_MM = 10
DPI = 60

@pytest.fixture(scope="module")
def sample_reports(sample_dir, tmp_path_factory):
    """Every report of the sample organisation (latest quarter), HTML and PDF: ``{team_id: TeamOutcome}``.

    The first one is the organisation overview.
    """
    out = tmp_path_factory.mktemp("printed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = build_reports(sample_dir, quarter="latest", out=out, formats=("html", "pdf"), jobs=2)
    assert result.ok, result.summary()
    return {t.team_id: t for t in result.teams}


@pytest.fixture(scope="module")
def org_id(sample_reports) -> str:
    return next(iter(sample_reports))


def _page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def _page_sizes(pdf: Path) -> list[tuple[float, float]]:
    """Width and height (pt) of every page."""
    n = _page_count(pdf)
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", str(n), str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    return [(float(w), float(h)) for w, h in re.findall(r"^Page\s+\d+ size:\s+([\d.]+) x ([\d.]+)", info, re.M)]


def _pages_text(pdf: Path) -> list[str]:
    """The text of each page (``pdftotext -layout``; pages split at form feeds)."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text.split("\f")[: _page_count(pdf)]


def white_share(png: Path, *, dpi: int = DPI) -> float:
    """Share of a page's body height that is empty: white bands at least ``WHITE_RUN_MM`` tall.

    A full page of text or charts scores near 0 (its gaps between lines are short); a page whose content stops
    halfway scores about 0.5; an empty page 1. The top and bottom margins (running footer) are left out.
    """
    from PIL import Image

    page = np.asarray(Image.open(png).convert("L"))
    px_per_mm = dpi / 25.4
    body = page[round(MARGIN_TOP_MM * px_per_mm): page.shape[0] - round(MARGIN_BOTTOM_MM * px_per_mm)]
    ink = (body < 230).any(axis=1)
    # lengths of the runs of white rows
    edges = np.flatnonzero(np.diff(np.concatenate(([1], ink.astype(int), [1]))))
    starts, ends = edges[::2], edges[1::2]
    runs = ends - starts
    return float(runs[runs >= WHITE_RUN_MM * px_per_mm].sum() / len(ink))


def _white_shares(pdf: Path, tmp_path: Path) -> list[float]:
    prefix = tmp_path / pdf.stem
    subprocess.run(["pdftoppm", "-r", str(DPI), "-png", str(pdf), str(prefix)], check=True)
    pngs = sorted(tmp_path.glob(f"{pdf.stem}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [white_share(p) for p in pngs]


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _headings_and_captions(html: str) -> list[str]:
    """Heading texts (h1–h4, anchor links dropped) and table captions of a report's HTML. A heading followed by
    a chart (an image, whose words the PDF's text does not hold) is left out: on the page it is not the last
    thing, the chart is."""
    found = [m.group(1) for m in re.finditer(r"<h[1-4][^>]*>(.*?)</h[1-4]>", html, re.S)
             if not re.match(r"(?:\s|<(?!img)[^>]*>|<style.*?</style>)*<img", html[m.end():], re.S)]
    found += re.findall(r"<caption[^>]*>(.*?)</caption>", html, re.S)
    found += re.findall(r'<p class="okr-caption">(.*?)</p>', html, re.S)
    clean = [_norm(html_lib.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<a class=\"anchor-link\".*?</a>", "", t))))
             for t in found]
    return [t for t in clean if t]


def _table_header_words(html: str) -> list[set[str]]:
    """The words of each table's header row."""
    heads = re.findall(r"<thead>(.*?)</thead>", html, re.S)
    return [set(_norm(html_lib.unescape(re.sub(r"<[^>]+>", " ", h))).split()) for h in heads]


def _stranded(html: str, pages: list[str]) -> dict[int, str]:
    """Pages (1-based, the last one excepted) whose last line above the footer is a heading, a table caption
    or a table's header row: the thing it announces starts on the next page."""
    titles = [_norm(x) for x in _headings_and_captions(html)]
    header_words = [w for w in _table_header_words(html) if len(w) >= 2]
    found = {}
    for number, text in enumerate(pages[:-1], start=1):
        lines = [_norm(line) for line in text.splitlines() if line.strip()]
        # the last line is Chromium's running footer ("… quarterly review   page 2 of 5")
        assert lines and re.search(r"page \d+ of \d+$", lines[-1]), f"page {number}: no running footer"
        last = lines[-2] if len(lines) > 1 else ""
        words = set(last.split())
        if last and (any(title == last or title.endswith(last) and len(last) > 12 for title in titles)
                     or any(len(words) >= 2 and words <= head for head in header_words)):
            found[number] = last
    return found


# ----------------------------------------------------------------------------------------------------------
# the measure itself
# ----------------------------------------------------------------------------------------------------------
def test_white_share_tells_a_full_page_from_a_half_empty_one(tmp_path):
    from PIL import Image, ImageDraw

    w, h = round(210 / 25.4 * DPI), round(297 / 25.4 * DPI)
    pages = {}
    for name, stop in (("full", 1.0), ("half", 0.5), ("empty", 0.0)):
        im = Image.new("L", (w, h), 255)
        draw = ImageDraw.Draw(im)
        y = round(MARGIN_TOP_MM / 25.4 * DPI)
        last = y + stop * (h - y - round(MARGIN_BOTTOM_MM / 25.4 * DPI))
        while y + 6 <= last:  # lines of "text": 6 px of ink, 6 px of space
            draw.rectangle([40, y, w - 40, y + 5], fill=0)
            y += 12
        draw.text((40, h - 20), "page 1 of 2", fill=0)  # the running footer does not count
        im.save(tmp_path / f"{name}.png")
        pages[name] = white_share(tmp_path / f"{name}.png")
    assert pages["full"] == 0
    assert 0.45 < pages["half"] < 0.55
    assert pages["empty"] == 1


# ----------------------------------------------------------------------------------------------------------
# the sample's reports
# ----------------------------------------------------------------------------------------------------------
def test_the_organisation_overview_fits_its_page_budget(sample_reports, org_id):
    pages = _page_count(sample_reports[org_id].pdf)
    assert 1 <= pages <= ORG_PAGES, f"{org_id}: {pages} pages"


def _team_sizes(tables: dict) -> dict[str, tuple[int, int]]:
    """Each team's key results in the latest quarter and KPIs tracked: ``{team_id: (n_krs, n_kpis)}``."""
    objectives, krs, kpis = tables["objectives"], tables["key_results"], tables["kpis"]
    latest = objectives[objectives["quarter"] == objectives["quarter"].max()]
    n_krs = krs.merge(latest[["objective_id", "team_id"]], on="objective_id").groupby("team_id").size()
    n_kpis = kpis.groupby("team_id")["metric"].nunique()
    return {t: (int(n_krs.get(t, 0)), int(n_kpis.get(t, 0))) for t in set(n_krs.index) | set(n_kpis.index)}


def test_every_team_review_fits_its_page_budget(sample_reports, org_id, sample_tables):
    """Issue 22: a team with up to 5 key results and 10 KPIs fits in 6 pages, appendix included. Bigger teams
    (the sample has teams with 6–7 key results and 11–12 KPIs) get one page more per extra 2 key results or
    KPIs, at most 8: their review stays short, only the appendix grows."""
    sizes = _team_sizes(sample_tables)
    pages = {tid: _page_count(t.pdf) for tid, t in sample_reports.items() if tid != org_id}
    assert pages and all(n >= 1 for n in pages.values())
    small = [t for t in pages if t in sizes and sizes[t][0] <= 5 and sizes[t][1] <= 10 and sizes[t][1] > 0]
    assert len(small) >= 3, f"the sample should have teams within the budget's scope: {sizes}"

    def budget(tid: str) -> int:
        krs, kpis = sizes.get(tid, (0, 0))
        extra = max(0, krs - 5) + max(0, kpis - 10)
        return min(TEAM_PAGES + (extra + 1) // 2, TEAM_PAGES + 2)

    over = {tid: (n, budget(tid)) for tid, n in pages.items() if n > budget(tid)}
    assert over == {}, f"pages over the budget (pages, budget): {over}"


def test_no_page_but_the_last_of_a_part_is_mostly_white(sample_reports, tmp_path):
    """The last page of the report, and the last page before a change of orientation (the end of the portrait
    part before a landscape appendix), may be short; every other page is at most 60% white."""
    too_white = {}
    for tid, t in sample_reports.items():
        shares = _white_shares(t.pdf, tmp_path)
        sizes = _page_sizes(t.pdf)
        assert len(shares) == len(sizes) == _page_count(t.pdf)
        for i, share in enumerate(shares[:-1]):
            if sizes[i] == sizes[i + 1] and share > MAX_WHITE:
                too_white[f"{tid} page {i + 1}"] = round(share, 2)
    assert too_white == {}, f"pages more than {MAX_WHITE:.0%} white: {too_white}"


def test_no_heading_caption_or_table_header_is_left_at_the_foot_of_a_page(sample_reports):
    stranded = {}
    for tid, t in sample_reports.items():
        html = t.html.read_text(encoding="utf-8")
        assert _headings_and_captions(html), f"{tid}: no headings found"
        for number, line in _stranded(html, _pages_text(t.pdf)).items():
            stranded[f"{tid} page {number}"] = line
    assert stranded == {}, f"left at the foot of a page: {stranded}"


def test_every_page_has_the_running_footer_with_team_quarter_and_page_number(sample_reports, org_id):
    for tid in (org_id, *list(sample_reports)[1:3]):
        t = sample_reports[tid]
        pages = _pages_text(t.pdf)
        for number, text in enumerate(pages, start=1):
            footer = _norm([line for line in text.splitlines() if line.strip()][-1])
            assert t.team_name in footer and re.search(r"\d{4}Q\d", footer), (tid, footer)
            assert footer.endswith(f"page {number} of {len(pages)}"), (tid, footer)


def test_every_page_of_the_sample_is_a4(sample_reports):
    portrait, landscape = (595.0, 842.0), (842.0, 595.0)
    for tid, t in sample_reports.items():
        for w, h in _page_sizes(t.pdf):
            assert min(abs(w - a) + abs(h - b) for a, b in (portrait, landscape)) < 2, (tid, w, h)


def _cells(*cells: "tuple[str, str | list[str]]") -> str:
    """Notebook cells as nbconvert's lab template writes them: ("markdown", html) or ("code", [output html …])."""
    out = []
    for kind, inner in cells:
        if kind == "markdown":
            out.append(f'<div class="jp-Cell jp-MarkdownCell jp-Notebook-cell"><div class="jp-Cell-inputWrapper">'
                       f'<div class="jp-InputArea jp-Cell-inputArea"><div class="jp-RenderedHTMLCommon '
                       f'jp-RenderedMarkdown jp-MarkdownOutput">{inner}</div></div></div></div>')
        else:
            children = "".join(f'<div class="jp-OutputArea-child"><div class="jp-RenderedHTMLCommon '
                               f'jp-RenderedHTML jp-OutputArea-output">{o}</div></div>'
                               for o in ([inner] if isinstance(inner, str) else inner))
            out.append(f'<div class="jp-Cell jp-CodeCell jp-Notebook-cell jp-mod-noInput"><div '
                       f'class="jp-Cell-outputWrapper"><div class="jp-OutputArea jp-Cell-outputArea">{children}'
                       f'</div></div></div>')
    return "".join(out)


def _table(caption: str, columns: int, rows: int, cls: str = "okr-table") -> str:
    head = "".join(f"<th>column {j}</th>" for j in range(columns))
    body = "".join("<tr>" + "".join(f"<td>row {i} value {j}</td>" for j in range(columns)) + "</tr>"
                   for i in range(rows))
    return f'<table class="{cls}"><caption>{caption}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


@pytest.fixture
def printer():
    """One browser per test: Playwright's sync API allows one running instance at a time, and other tests
    of this module open their own."""
    with PdfPrinter(CHROMIUM) as p:
        yield p


def _print_crafted(printer, tmp_path: Path, name: str, cells: str) -> tuple[list[str], list[str]]:
    """Print a page made of ``cells`` with the report's stylesheet: (text, orientation) of each page."""
    css = (Path(__file__).resolve().parents[1] / "templates" / "okr_report" / "okr_report.css").read_text()
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{name}</title><style>{css}'
            f'</style></head><body class="okr-report"><main>{cells}</main></body></html>')
    (tmp_path / f"{name}.html").write_text(page, encoding="utf-8")
    printer.print_pdf(tmp_path / f"{name}.html", tmp_path / f"{name}.pdf", footer=name)
    pdf = tmp_path / f"{name}.pdf"
    return _pages_text(pdf), ["landscape" if w > h else "portrait" for w, h in _page_sizes(pdf)]


def test_a_wide_table_prints_on_a_landscape_page_with_its_heading(printer, tmp_path):
    """A table marked ``wide`` goes to an A4 landscape page, with the heading cell just before it; what follows
    is portrait again, the analysts' appendix included (only its wide tables would turn the page)."""
    texts, orientation = _print_crafted(printer, tmp_path, "wide", _cells(
        ("markdown", "<h2>Before</h2><p>Some text.</p>"),
        ("markdown", "<h2>Wide part</h2>"),
        ("code", "<p>What the table shows.</p>" + _table("A wide table", 14, 20, "okr-table wide")),
        ("markdown", "<h2>After</h2><p>More text.</p>"),
        ("code", '<div class="appendix"><h3>Appendix</h3>' + _table("Appendix table", 12, 5) + "</div>"),
    ))
    assert orientation == ["portrait", "landscape", "portrait"], orientation
    assert "Before" in texts[0] and "Wide part" not in texts[0]
    assert "Wide part" in texts[1] and "What the table shows" in texts[1] and "column 13" in texts[1]
    assert "After" in texts[2] and "Appendix table" in texts[2]


def test_a_long_table_repeats_its_header_and_its_heading_stays_with_its_first_rows(printer, tmp_path):
    """A section as the reports write it (a heading cell; a cell with a sentence and a table) starts further
    and further down the first page: wherever it falls, its heading, sentence, caption and header row are on the
    page of the table's first row, and every page of the table repeats the header row."""
    for n in range(18, 34):
        filler = "".join(f"<p>Paragraph {i} of text that fills the page before the table.</p>" for i in range(n))
        texts, orientation = _print_crafted(printer, tmp_path, f"long{n}", _cells(
            ("markdown", "<h2>Intro</h2>" + filler),
            ("markdown", "<h2>The table</h2>"),
            ("code", ['<div class="okr-summary"><p>What the table shows.</p></div>', _table("A long table", 4, 70)]),
        ))
        assert set(orientation) == {"portrait"}
        with_rows = [t for t in texts if "row " in t]
        assert len(with_rows) >= 2
        assert all("column 3" in t for t in with_rows), f"{n}: the header row is not repeated on every page"
        for t in texts:
            if any(x in t for x in ("The table", "What the table shows", "A long table")):
                assert "row 0 value" in t, f"{n} paragraphs before: left at the foot of a page: {t[-200:]}"


def _before_appendix(pages: list[str]) -> str:
    """The text before the "Appendix" heading (its entry in the contents is numbered, "8. Appendix")."""
    text = "\n".join(pages)
    m = re.search(r"^\s*Appendix\b", text, re.M)
    return text[: m.start()] if m else text


def _raw_metric_ids(metrics, key_results) -> list[str]:
    """Metric ids that are not plain words: ids with an underscore, and ids that appear in no metric
    description or key-result title (``nps``, ``csat``; ``revenue`` and ``overtime`` are words)."""
    words = " ".join([*metrics["description"].astype(str), *key_results["title"].astype(str)]).lower()
    return [m for m in metrics["metric"] if "_" in m or not re.search(rf"\b{re.escape(m)}\b", words)]


def test_no_metric_id_before_the_appendix(sample_reports, sample_tables):
    ids = _raw_metric_ids(sample_tables["metrics"], sample_tables["key_results"])
    assert "intranet_visits" in ids and "revenue" not in ids  # "NPS" is a word of a key result's title
    found = {}
    for tid, t in sample_reports.items():
        text = _before_appendix(_pages_text(t.pdf))
        hits = sorted({m for m in ids if re.search(rf"(?<![\w-]){re.escape(m)}(?![\w-])", text)})
        if hits:
            found[tid] = hits
    assert found == {}, f"metric ids before the appendix: {found}"


def test_no_image_has_nbconverts_default_alt_text(sample_reports):
    for tid, t in sample_reports.items():
        html = t.html.read_text(encoding="utf-8")
        assert "<img" in html, f"{tid}: no chart"
        assert "No description has been provided for this image" not in html, tid


#: Width (CSS px) of the text on a portrait and on a landscape A4 page (okr_report.css margins).
PORTRAIT_PX, LANDSCAPE_PX = round((210 - 28) / 25.4 * 96), round((297 - 28) / 25.4 * 96)

_TABLES_JS = """([portrait, landscape]) => {
  const wide = '.wide, .appendix, .celltag_appendix, .celltag_wide';
  const out = [];
  for (const table of document.querySelectorAll('main table')) {
    const room = table.closest(wide) ? landscape : portrait;
    const caption = (table.caption ? table.caption.innerText : table.id) || '(table)';
    const width = table.getBoundingClientRect().width;
    if (width > room + 1) out.push(`${caption}: ${Math.round(width)} px wide, the page has ${room}`);
    for (const cell of table.querySelectorAll('th, td')) {
      if (cell.scrollWidth > cell.clientWidth + 1)
        out.push(`${caption}: "${cell.innerText.slice(0, 40)}" overflows its column`);
    }
  }
  return out;
}"""


def _tables_that_do_not_fit(reports: dict) -> dict[str, list[str]]:
    """Each report laid out for print at the width of the page's text: tables wider than their page (a
    portrait page, or a landscape one for wide tables) and cells whose longest word sticks out of the column.

    Chromium shrinks a whole page to fit a table wider than the page, so every line of it gets smaller.
    """
    from playwright.sync_api import sync_playwright

    problems = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": PORTRAIT_PX, "height": 1100}, offline=True)
            page = context.new_page()
            page.emulate_media(media="print")
            for tid, t in reports.items():
                page.goto(t.html.as_uri())
                assert page.locator("main table").count() > 0, f"{tid}: no table"
                styles = page.evaluate("""() => [...document.querySelectorAll('main td')].map(
                    td => getComputedStyle(td).wordBreak + '/' + getComputedStyle(td).overflowWrap)""")
                assert set(styles) == {"normal/normal"}, f"{tid}: words may break inside: {set(styles)}"
                found = page.evaluate(_TABLES_JS, [PORTRAIT_PX, LANDSCAPE_PX])
                if found:
                    problems[tid] = found[:5]
        finally:
            browser.close()
    return problems


def test_every_table_of_a_team_review_fits_its_page_and_no_word_is_wider_than_its_column(sample_reports,
                                                                                          org_id):
    """No word is broken inside (no word-by-word wrapping), no column is narrower than its longest word, and
    no table is wider than its page."""
    teams = {tid: t for tid, t in sample_reports.items() if tid != org_id}
    assert _tables_that_do_not_fit(teams) == {}


def test_every_table_of_the_organisation_overview_fits_its_page(sample_reports, org_id):
    assert _tables_that_do_not_fit({org_id: sample_reports[org_id]}) == {}


def test_band_swatches_have_the_charts_colours(sample_reports, org_id):
    from okr_analysis.reports.render import band_colours
    from okr_analysis.rules import BAND_COLOURS

    assert band_colours() == {band: colour.upper() for band, colour in BAND_COLOURS.items()}
    html = next(t for tid, t in sample_reports.items() if tid != org_id).html.read_text(encoding="utf-8")
    assert 'class="okr-band okr-band-' in html, "no band shown"
    declared = dict(re.findall(r"--band-(red|yellow|green|none):\s*(#[0-9A-Fa-f]{6})", html.split("</head>")[0]))
    assert declared == band_colours()


def test_the_initiatives_section_appears_only_in_the_reviews_of_teams_with_initiatives(sample_reports, org_id,
                                                                                         sample_tables):
    """Issue 21: the team review has an "Initiatives" section (heading, contents entry, sentence and chart)
    only when the team has initiatives; the other reviews leave it out, heading and contents entry included."""
    with_initiatives = set(sample_tables["initiatives"]["team_id"])
    assert with_initiatives == {"support-emea", "sales-enterprise", "eng-data"}
    for tid, t in sample_reports.items():
        page = t.html.read_text(encoding="utf-8")
        toc = re.search(r"<nav[^>]*okr-toc.*?</nav>", page, re.S).group(0)
        if tid in with_initiatives:
            assert re.search(r'<h2 id="[^"]+">Initiatives', page) and "Initiatives" in toc, tid
        else:
            assert "Initiatives" not in toc and not re.search(r"<h2[^>]*>Initiatives", page), tid
            assert "no initiative to evaluate" not in page, tid
    emea = sample_reports["support-emea"].html.read_text(encoding="utf-8")
    assert "Engagement rose by" in emea and "after Mentoring programme launched on 4 May 2026" in emea
