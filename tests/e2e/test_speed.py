"""Browser-side speed on the e2e database: main content time and main-thread tasks per page.

Each page is opened twice in a fresh browser context: the first visit (nothing cached) and the second (scripts
cached, as for a CDO who opens the dashboard every morning), both measured with tests/e2e/speed.py: a
PerformanceObserver for long tasks (wall time) and a Chrome trace of the same visit (each main-thread task's CPU
time, in the page's renderer).

What is asserted, and why this way: wall times on a 2-core CI machine shared with other work swing 2-5x with
its load (the same page's longest task measured 276 ms and 1,116 ms within an hour here), so a wall-time
bound is either flaky or too loose to catch anything. A task's CPU time (the trace's thread time) does not
count the time the thread waited for a core; it moved by less than 25% between a quiet and a loaded run.
So the test asserts, per page and visit:
- the measure exists: the trace holds main-thread tasks and the observer ran (a missing signal is no pass);
- no main-thread task used more than TASK_CPU_MS (600 ms) of CPU. Issue 12's target is 200 ms (of wall time, which
  benchmarks/browser.py reports: speed is the benchmark's to measure); this bound catches a page that freezes the
  tab, on any machine CI may get. A task's CPU grows up to ~25% with the load, and with the machine's own speed far
  more: on 2026-12-01 this VM's CPU ran 2-2.6x slower from 04:00 UTC than at 02:53 (the same code's city page,
  second visit: 129 -> 341 ms of CPU; a 30-million-step Python loop 3.9-4.8 s), and the earlier bound of 250 ms
  failed on five pages with nothing changed in them. Compare's one 13-panel figure was the largest (130-192 ms of
  CPU at load 5-10, 324 ms once in CI): it is now a small figure per criterion. Left are React's mount of a page's
  answer, a first visit's AG Grid mounts and the graph pages' first answers (100-165 ms): each graph draws once and
  in a task of its own (layouts/assets/graphs.js), each grid mounts in a task of its own (grids.js), plotly.js's
  basic bundle evaluates in ~20 ms (maturity/plotlyjs.py). It fails on a page that freezes the tab (the datasets
  menu that froze it for 9-12 s, issue 12 item 2, used seconds of CPU in one task) or that goes back to drawing its
  charts and grid in one task (Compare: ~830 ms of CPU before graphs.js);
- its main content appeared within GUARD_MAIN_MS (15 s) of wall time: a page that never draws is broken
  however loaded the machine;
- every trace a page's graphs draw is of a type the served plotly.js has (the basic bundle of
  maturity/plotlyjs.py draws bars, pies and scatters only: another figure would draw nothing and say nothing).
Measured values go to test-results/speed.json.
"""
from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.speed import OBSERVER_JS, PAGES, main_tasks_cpu, measure_page

pytestmark = pytest.mark.e2e
TASK_CPU_MS = 600  # one task's CPU time (see the docstring)
GUARD_MAIN_MS = 15_000  # a page whose main content is not drawn in 15 s is broken, however loaded the machine

# the trace types of every graph on the page, and the types the loaded plotly.js can draw
TRACE_TYPES_JS = """() => ({
  drawn: [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => (gd._fullData || []).map(t => t.type)),
  known: window.Plotly ? Object.keys(window.Plotly.PlotSchema.get().traces) : [],
})"""


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
    first = measure_page(page, live_url + path, PAGES[path], browser=page.context.browser)  # a fresh context
    page.goto("about:blank")
    again = measure_page(page, live_url + path, PAGES[path], browser=page.context.browser)
    measured[path] = {"first": first, "again": again}
    for m in (first, again):
        assert m["observer"], "this Chromium reports no long tasks: nothing was measured"
        assert m["traced_tasks"] > 0, "the trace holds no main-thread task: nothing was measured"
        assert m["longest_cpu_ms"] < TASK_CPU_MS, measured[path]
        # the main content's time is the page's own (its first frame showing it), at most when Playwright saw it
        assert m["main_from"] == "frame" and m["main_ms"] <= m["seen_ms"], measured[path]
        assert m["main_ms"] < GUARD_MAIN_MS, measured[path]
    types = page.evaluate(TRACE_TYPES_JS)
    assert set(types["drawn"]) <= set(types["known"]), types
    assert errors == []


def test_cpu_measure_counts_the_page_renderer_only():
    """A trace with the page's renderer (pid 2) and the browser's omnibox popup renderer (pid 3): only pid 2's
    main-thread tasks count (tdur in µs: 120 ms and 40 ms; pid 3's 300 ms task and pid 2's other thread's are
    not the page's main thread)."""
    def name(pid, tid, thread):
        return {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": thread}}

    def task(pid, tid, ts, tdur):
        return {"ph": "X", "name": "RunTask", "pid": pid, "tid": tid, "ts": ts, "dur": tdur, "tdur": tdur}

    trace = {"traceEvents": [
        name(2, 20, "CrRendererMain"), name(2, 21, "Compositor"), name(3, 30, "CrRendererMain"),
        {"ph": "I", "name": "TracingStartedInBrowser", "pid": 1, "tid": 1, "ts": 0, "args": {"data": {"frames": [
            {"processId": 2, "isOutermostMainFrame": True, "url": "about:blank"}]}}},
        task(2, 20, 10, 120_000), task(2, 20, 200_000, 40_000), task(2, 21, 10, 500_000),
        task(3, 30, 10, 300_000),
    ]}
    assert main_tasks_cpu(trace) == {"longest_cpu_ms": 120.0, "over_budget": 0, "cpu_to_main_ms": None,
                                     "traced_tasks": 2}
