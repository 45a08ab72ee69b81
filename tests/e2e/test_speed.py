"""Browser-side speed on the e2e database: main content time and main-thread long tasks per page.

Measured with a PerformanceObserver for long tasks (tests/e2e/speed.py), on a second visit of each page in
the same browser context (scripts cached, as for a CDO who opens the dashboard every morning). The limits
asserted here are regression guards a loaded 2-core CI machine still meets (the datasets menu that froze
the tab for 9-12 s, item 2, fails them); the targets of issue 12 (1.5 s, 200 ms) are measured on the demo
by benchmarks/browser.py, with numbers in the README. Measured values are written to
test-results/speed.json.
"""
from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.speed import OBSERVER_JS, PAGES, measure_page

pytestmark = pytest.mark.e2e
GUARD_MAIN_MS = 15_000  # a page whose main content is not drawn in 15 s is broken, however loaded the machine
GUARD_TASK_MS = 3_000  # one main-thread task of 3 s is a frozen tab


@pytest.fixture(scope="module")
def measured():
    results: dict[str, dict] = {}
    yield results
    out = SCREENSHOTS.parent / "speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")


@pytest.mark.parametrize("path", list(PAGES))
def test_page_draws_its_content_without_freezing_the_tab(page, live_url, errors, path, measured):
    page.context.add_init_script(OBSERVER_JS)
    measure_page(page, live_url + path, PAGES[path])  # first visit fills the browser's caches
    page.goto("about:blank")
    m = measure_page(page, live_url + path, PAGES[path])
    measured[path] = m
    assert m["observer"], "this Chromium reports no long tasks: nothing was measured"
    assert m["main_ms"] < GUARD_MAIN_MS, m
    assert m["longest_ms"] < GUARD_TASK_MS, m
    assert errors == []
