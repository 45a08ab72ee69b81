"""Fixtures of the runtime tests (helpers live in runtime_helpers.py)."""
from __future__ import annotations

import pytest

from runtime_helpers import FakeHarvest, FakeScore


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
