"""Connector test fixtures: a fast retry policy, portal configs and the local portal emulator."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.http import RetryPolicy, make_session
from tests.conftest import FIXTURES
from tests.emulator import Emulator

__all__ = ["FIXTURES", "fixture_dirs"]


def fixture_dirs(kind: str) -> list[Path]:
    """A kind's recorded responses: tests/fixtures/<kind>/ or <kind>_<what>/ (e.g. dcat_us, socrata_views)."""
    return sorted(p for p in FIXTURES.iterdir() if p.is_dir() and re.fullmatch(rf"{re.escape(kind)}(_\w+)?", p.name))


class SleepRecorder:
    """Stands in for time.sleep: records the delays asked for instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def policy(sleeps: SleepRecorder) -> RetryPolicy:
    # Small but real: 3 retries, a 0.5 s client timeout (injected timeouts sleep longer), Retry-After up to 5 s.
    return RetryPolicy(retries=3, backoff_s=0.01, backoff_cap_s=0.04, max_retry_after_s=5.0, timeout_s=0.5,
                       sleep=sleeps)


@pytest.fixture
def session(policy: RetryPolicy):
    s = make_session(policy=policy)
    yield s
    s.close()


@pytest.fixture
def emulator() -> Iterator[Callable[..., Emulator]]:
    """Factory: `emulator(socrata={...}, ckan={...}, dcat={...}, views=[...])` → a started Emulator,
    stopped after the test."""
    started: list[Emulator] = []

    def start(**catalogs: Any) -> Emulator:
        emu = Emulator(**catalogs).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()
