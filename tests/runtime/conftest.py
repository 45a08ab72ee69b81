"""Fixtures of the runtime tests (helpers live in runtime_helpers.py)."""
from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest
from runtime_helpers import FakeHarvest, FakeScore


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the processes these tests start. A test run launched in the background by a shell script
    (`cmd &`, nohup, some CI runners) inherits SIGINT ignored, and an ignored signal stays ignored across exec, so
    a `maturity harvest` sent SIGINT would go on (Python keeps an inherited SIG_IGN, as a background job should).
    Handled here, it is reset to the default in every child at exec: the child sees what a terminal gives it."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def fake_harvest() -> FakeHarvest:
    return FakeHarvest()


@pytest.fixture
def fake_score() -> FakeScore:
    return FakeScore()


@pytest.fixture
def schedulers():
    """Every scheduler a test starts is shut down, even when the test fails."""
    started: list = []
    yield started
    for s in started:
        if s.running:
            s.shutdown(wait=True)


# Headless Chromium through pytest-playwright's fixtures (one event loop per session, shared with the e2e
# tests): Debian's chromium by executable_path, never a downloaded browser.
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args,
            "executable_path": shutil.which("chromium") or "/usr/bin/chromium",
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--no-first-run", "--disable-sync"]}


NEVER = "0 0 1 1 *"  # a cron that does not fire during a test


@pytest.fixture
def quiet_config(tmp_path) -> Path:
    """The shipped config.toml with every schedule moved to New Year's midnight: real cities, no job fires."""
    import re


    text = (Path(__file__).resolve().parents[2] / "config.toml").read_text(encoding="utf-8")
    text = re.sub(r'^schedule = "[^"]*"', f'schedule = "{NEVER}"', text, flags=re.M)
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path
