"""A page's full length in one screenshot, as a screen that tall shows it (benchmarks/screenshots.py, the e2e tests).

Not Playwright's `full_page`: in Chromium that paints what lies beyond the viewport (CDP `captureBeyondViewport`)
without the rows of scrolling boxes below the first screens, so the city page's AG Grids (Fix first, WWC criteria,
Departments) came out as empty white boxes although their rows were in the page. A viewport as tall as the page
has every grid in view, drawn as a reader scrolling to it sees it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.speed import QUIET_JS

FRAMES_JS = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def full_length(page: Any, path: Path) -> None:
    """Screenshot the whole page into `path` (PNG); the viewport is as before afterwards."""
    viewport = page.viewport_size
    page.evaluate("window.scrollTo(0, 0)")
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": height})
    page.wait_for_function(QUIET_JS)
    page.evaluate(FRAMES_JS)  # the grids' resize observers have drawn the rows now in view
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)
