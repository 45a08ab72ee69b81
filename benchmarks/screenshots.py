"""Screenshots of every page at 1440 px and 390 px (a phone) on the bundled demo, into a folder not committed.

    .venv/bin/python benchmarks/screenshots.py [--out screenshots] [--db /tmp/maturity-demo.db]

Same demo database and server as benchmarks/browser.py. Each page is shot full length once its main content
is drawn and no callback is pending, in a viewport as tall as the page (tests/e2e/shots.py: Playwright's
full_page left the grids below the first screens unpainted).
With --readme it also writes the README's two first-screen shots, docs/overview-1440.png and docs/city-390.png.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser  # noqa: E402 - benchmarks/browser.py: demo database, server, browser arguments

from tests.e2e import shots  # noqa: E402
from tests.e2e.speed import QUIET_JS  # noqa: E402

WIDTHS = (1440, 390)
# besides every page of browser.PAGES: the print view, a drill-down, and a past view (time travel, ?as_of=)
EXTRA = {"/print/city/chicago": "h1", "/city/chicago?criterion=DM4": "#city-cards .criterion-card",
         "/?as_of=2022-06-30": "#ov-matrix .main-svg", "/city/chicago?as_of=2022-06-30": "#city-cards .criterion-card"}


README_SHOTS = (("overview-1440.png", 1440, 900, "/", "#ov-matrix .main-svg"),
                ("city-390.png", 390, 844, "/city/chicago", "#city-cards .criterion-card"))


def shoot(page, url: str, ready: str, path: Path, *, full_page: bool = True) -> None:
    page.goto(url)
    page.locator(ready).first.wait_for(state="visible", timeout=60_000)
    page.wait_for_load_state("networkidle")
    page.wait_for_function(QUIET_JS, timeout=60_000)
    if full_page:
        shots.full_length(page, path)  # not Playwright's full_page, which left the grids below unpainted
    else:
        page.screenshot(path=str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=browser.ROOT / "screenshots")
    ap.add_argument("--db", type=Path, default=Path("/tmp/maturity-demo.db"))
    ap.add_argument("--readme", action="store_true",
                    help="also write the README's two first-screen shots into docs/ (committed)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    cfg = browser.ensure_demo(args.db)
    pages = {**browser.PAGES, **EXTRA}
    with browser.serve(cfg) as base, sync_playwright() as p:
        b = p.chromium.launch(**browser.launch_args())
        for width in WIDTHS:
            ctx = b.new_context(viewport={"width": width, "height": 900 if width > 600 else 844})
            page = ctx.new_page()
            for path, ready in pages.items():
                stem = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "overview"
                stem = "overview-" + stem if path.startswith("/?") else stem
                name = f"{stem}-{width}.png"
                shoot(page, base + path, ready, args.out / name)
                print(args.out / name)
            ctx.close()
        for name, width, height, path, ready in README_SHOTS if args.readme else ():
            ctx = b.new_context(viewport={"width": width, "height": height})
            page = ctx.new_page()
            shoot(page, base + path, ready, browser.ROOT / "docs" / name, full_page=False)
            print(browser.ROOT / "docs" / name)
            ctx.close()
        b.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
