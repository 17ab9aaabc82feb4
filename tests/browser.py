"""Headless Chromium for the browser tests: Debian's ``chromium`` package driven by Playwright.

The browser is the system one (``scripts/setup_test_services.sh`` installs it with apt);
Playwright's own browser downloads are never used, so nothing is fetched at test time.
A missing browser fails the test with the command that installs it: the suite runs the
setup script first, so a skip would only hide a broken setup.

Screenshots always go to the test's temporary folder; with ``TRIANGULATE_SCREENSHOTS=1``
they are also copied to ``docs/images/`` (the README's pictures), e.g.::

    TRIANGULATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_ui_browser.py tests/test_report_browser.py
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM_PATH = Path(os.environ.get("TRIANGULATE_CHROMIUM", "/usr/bin/chromium"))
"""Debian's Chromium (override with ``TRIANGULATE_CHROMIUM`` on other systems)."""

CHROMIUM_ARGS = (
    "--no-sandbox",  # the tests run as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no update checks, no safe-browsing lists
    "--disable-component-update",
    "--disable-sync",
)
SCREENSHOTS_ENV = "TRIANGULATE_SCREENSHOTS"
DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
LAUNCH_TIMEOUT_MS = 60_000


def require_chromium() -> Path:
    """The Chromium executable, or fail the test saying how to install it."""
    if not (CHROMIUM_PATH.is_file() and os.access(CHROMIUM_PATH, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM_PATH}: run scripts/setup_test_services.sh "
            "(installs Debian's chromium package) or set TRIANGULATE_CHROMIUM to a Chromium "
            "executable. Playwright's browser downloads are not used.",
            pytrace=False,
        )
    return CHROMIUM_PATH


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A headless Chromium, closed on exit even when the test fails."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(executable),
            args=list(CHROMIUM_ARGS),
            headless=True,
            timeout=LAUNCH_TIMEOUT_MS,
        )
        try:
            yield browser
        finally:
            browser.close()


def publish_screenshots() -> bool:
    """Whether screenshots should also be written to ``docs/images/``."""
    return os.environ.get(SCREENSHOTS_ENV, "").strip().lower() in ("1", "true", "yes")


def save_screenshot(page: Page, name: str, tmp_dir: Path, *, full_page: bool = False) -> Path:
    """Screenshot ``page`` as ``tmp_dir/name`` (and ``docs/images/name`` when publishing).

    Returns the temporary copy, which the test can inspect.
    """
    target = tmp_dir / name
    page.screenshot(path=str(target), full_page=full_page, animations="disabled")
    if publish_screenshots():
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, DOCS_IMAGES / name)
    return target


def png_size(path: Path) -> tuple[int, int]:
    """Width and height in pixels from a PNG's IHDR chunk (bytes 16-24, big-endian)."""
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
