"""Browser tests: Debian's chromium driven by Playwright, the app served by werkzeug in a thread.

Recipe: ../shared/research/browser-testing.md (verified on this machine type). No browser download:
`executable_path` points at the system chromium.
"""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.layouts import filler

# Project-root test-results/ (pytest-playwright's --output folder, emptied at each session start).
LIVE_POLL_S = 1  # the browser polls storage.latest_run_marker this often in the e2e app
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args,
            "executable_path": shutil.which("chromium") or "/usr/bin/chromium",
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="session")
def e2e_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{tmp / 'maturity.db'}"
    cfg = filler.fill(url, tmp, poll_seconds=LIVE_POLL_S)
    yield url, cfg
    import storage

    storage.dispose(url)


@pytest.fixture(scope="session")
def live_url(e2e_db):
    """The dashboard on a free 127.0.0.1 port for the whole session (one server: page loads dominate)."""
    from maturity import app

    url, cfg = e2e_db
    dash_app = app.create_app(cfg, url=url)
    srv = make_server("127.0.0.1", 0, dash_app.server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    thread.join()


@pytest.fixture
def errors(page):
    """Console errors, page errors and dialogs seen by the page; each test asserts it stays empty."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e}"))

    def on_dialog(d):
        seen.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", on_dialog)
    return seen
