"""The HTML report as a marketer sees it: opened from disk in a real headless Chromium.

``test_report.py`` parses the file; this test renders it. Every section must be on the
page and visible, every plot must decode (``naturalWidth > 0``) and fit inside its
section, and opening the file must not make a single network request (the report is
e-mailed and opened offline). The full-page screenshot is the README's picture
(``TRIANGULATE_SCREENSHOTS=1`` copies it to ``docs/images/report.png``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import headless_chromium, png_size, save_screenshot
from tests.report_example import example_tables
from tests.test_report import SECTIONS_WITH_PLOTS
from triangulate.report import SECTION_IDS, build_report

VIEWPORT = {"width": 1300, "height": 900}
"""CSS pixels; the report's main column is at most 1280 px wide."""
MIN_PLOT_WIDTH_PX = 400
LOCAL_SCHEMES = ("file:", "data:")

SECTION_GEOMETRY_JS = """
ids => ids.map(id => {
  const el = document.getElementById(id);
  if (!el) return {id, found: false};
  const box = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  const heading = el.querySelector('h2');
  return {id, found: true, tag: el.tagName.toLowerCase(), width: box.width, height: box.height,
          bottom: box.bottom + window.scrollY,
          hidden: style.display === 'none' || style.visibility === 'hidden',
          heading: heading ? heading.innerText.trim() : ''};
})
"""
IMAGES_JS = """
() => Array.from(document.images).map(img => {
  const section = img.closest('section');
  const box = img.getBoundingClientRect();
  const outer = section ? section.getBoundingClientRect() : null;
  return {section: section ? section.id : null, alt: img.alt, complete: img.complete,
          naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
          width: box.width, left: box.left, right: box.right,
          sectionLeft: outer ? outer.left : null, sectionRight: outer ? outer.right : null,
          scheme: img.currentSrc.split(':')[0] + ':'};
})
"""


@pytest.fixture(scope="module")
def rendered_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build the example report, open it in Chromium, and record what the browser saw."""
    out = tmp_path_factory.mktemp("report_browser")
    report = build_report(example_tables(), out, run_id="browser")
    requests: list[str] = []
    failed: list[str] = []
    console_errors: list[str] = []
    with headless_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on(
            "console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None
        )
        response = page.goto(report.resolve().as_uri(), wait_until="load", timeout=30_000)
        page.wait_for_function(
            "() => Array.from(document.images).every(img => img.complete)", timeout=30_000
        )
        seen = {
            "report": report,
            "ok": response is None or response.ok,
            "title": page.title(),
            "sections": page.evaluate(SECTION_GEOMETRY_JS, list(SECTION_IDS)),
            "visible": {sid: page.locator(f"#{sid}").is_visible() for sid in SECTION_IDS},
            "images": page.evaluate(IMAGES_JS),
            "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
            "screenshot": save_screenshot(page, "report.png", out, full_page=True),
        }
        context.close()
    seen.update(requests=requests, failed=failed, console_errors=console_errors)
    return seen


def test_every_section_is_rendered_and_visible(rendered_report: dict) -> None:
    assert rendered_report["ok"]
    assert "browser" in rendered_report["title"]
    for section in rendered_report["sections"]:
        sid = section["id"]
        assert section["found"], f"section #{sid} is missing from {rendered_report['report']}"
        assert section["tag"] == "section", f"#{sid} is a <{section['tag']}>, not a <section>"
        assert not section["hidden"] and rendered_report["visible"][sid], (
            f"section #{sid} is hidden"
        )
        assert section["height"] > 50 and section["width"] > 600, (
            f"section #{sid} is collapsed: {section}"
        )
        assert section["heading"], f"section #{sid} has no <h2> heading"


def test_every_plot_decodes_and_fits_its_section(rendered_report: dict) -> None:
    images = rendered_report["images"]
    assert images, "the report has no images"
    for image in images:
        where = f"image '{image['alt']}' in section #{image['section']}"
        assert image["section"] in SECTION_IDS, f"{where} is outside the report's sections"
        assert image["alt"].strip(), f"an image in #{image['section']} has no alt text"
        assert image["scheme"] == "data:", f"{where} is not embedded ({image['scheme']})"
        assert image["complete"] and image["naturalWidth"] > 0 and image["naturalHeight"] > 0, (
            f"{where} did not decode"
        )
        assert image["width"] >= MIN_PLOT_WIDTH_PX, (
            f"{where} is drawn only {image['width']:.0f} px wide"
        )
        assert (
            image["left"] >= image["sectionLeft"] and image["right"] <= image["sectionRight"] + 0.5
        ), f"{where} overflows its section"
    with_plots = {image["section"] for image in images}
    missing = [sid for sid in SECTIONS_WITH_PLOTS if sid not in with_plots]
    assert not missing, f"sections without a plot: {missing}"


def test_opening_the_report_makes_no_network_request(rendered_report: dict) -> None:
    remote = [url for url in rendered_report["requests"] if not url.startswith(LOCAL_SCHEMES)]
    assert not remote, f"the report requested {remote}"
    assert rendered_report["requests"][0] == rendered_report["report"].resolve().as_uri()
    assert not rendered_report["failed"], f"requests failed: {rendered_report['failed']}"
    assert not rendered_report["console_errors"], rendered_report["console_errors"]


def test_full_page_screenshot_covers_the_whole_report(rendered_report: dict) -> None:
    width, height = png_size(Path(rendered_report["screenshot"]))
    assert width == VIEWPORT["width"]
    # a full-page shot is taller than one screen and reaches the bottom of the last section
    bottom = max(section["bottom"] for section in rendered_report["sections"])
    assert height > VIEWPORT["height"] and height >= bottom
    assert rendered_report["scroll_width"] <= VIEWPORT["width"], "the page scrolls sideways"


TABLE_OVERFLOW_JS = """
() => Array.from(document.querySelectorAll('.table-wrap')).map(wrap => ({
  section: wrap.closest('section').id,
  header: Array.from(wrap.querySelectorAll('th')).map(th => th.innerText.trim()).join(' | '),
  scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth}))
"""


@pytest.mark.parametrize("width", [1024, 800])
def test_tables_wrap_instead_of_scrolling_sideways(width: int, tmp_path: Path) -> None:
    """At common laptop and e-mail widths every table fits its section: headers and text
    wrap, identifiers break after "_", no table needs a sideways scroll bar."""
    report = build_report(example_tables(), tmp_path, run_id=f"width-{width}")
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(report.resolve().as_uri(), wait_until="load", timeout=30_000)
        tables = page.evaluate(TABLE_OVERFLOW_JS)
        page_width = page.evaluate("document.documentElement.scrollWidth")
        page.close()
    assert tables
    wide = [t for t in tables if t["scrollWidth"] > t["clientWidth"] + 1]
    assert not wide, f"tables scroll sideways at {width} px: {wide}"
    assert page_width <= width
