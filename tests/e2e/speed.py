"""Browser-side speed of a page: when its main content is drawn and how long the main thread was blocked.

Shared by tests/e2e/test_speed.py (the e2e database) and benchmarks/browser.py (the bundled demo).
A PerformanceObserver for `longtask` entries is installed before any page script runs (an init script, with
`buffered: true`), so no task of the page's start is missed.
"""
from __future__ import annotations

# path -> the selector whose appearance means "the main content is there"
PAGES: dict[str, str] = {
    "/": "#ov-matrix .main-svg",
    "/city/chicago": "#city-cards .criterion-card",
    "/compare": "#cmp-profile .main-svg",
    "/datasets": "#ds-grid .ag-row",
    "/harvests": "#hv-grid .ag-row",
    "/methodology": "#meth-body h2",
    "/evidence": "#ev-city",
}
MAIN_CONTENT_MS = 1500  # issue 12's targets, on the demo data
LONG_TASK_MS = 200

OBSERVER_JS = """
window.__longtasks = [];
try {
  new PerformanceObserver(list => { for (const e of list.getEntries()) window.__longtasks.push(e.duration); })
    .observe({type: 'longtask', buffered: true});
} catch (e) { window.__longtasks = null; }
"""
QUIET_JS = "() => !document.querySelector('[data-dash-is-loading=\"true\"]')"


def measure_page(page, url: str, ready: str, *, timeout_ms: int = 60_000) -> dict:
    """Open `url` in `page` (whose context has OBSERVER_JS as init script): ms from navigation start until
    `ready` is visible, and the long tasks (> 50 ms) seen until the page is quiet (no callback pending,
    network idle)."""
    page.goto(url, wait_until="commit")
    page.locator(ready).first.wait_for(state="visible", timeout=timeout_ms)
    main_ms = page.evaluate("performance.now()")
    page.wait_for_load_state("networkidle", timeout=timeout_ms)
    page.wait_for_function(QUIET_JS, timeout=timeout_ms)
    tasks = page.evaluate("window.__longtasks")
    return {"main_ms": main_ms, "longest_ms": max(tasks) if tasks else 0.0,
            "long_tasks": len(tasks or ()), "observer": tasks is not None}
