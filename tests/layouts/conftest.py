"""A database filled from real recorded catalogs, shared by the layout tests (see filler.py)."""
from __future__ import annotations

import pytest

from tests.layouts import filler


@pytest.fixture(scope="session")
def layout_db(tmp_path_factory):
    """(database URL, Settings) of four real cities with several runs each and their scores."""
    tmp = tmp_path_factory.mktemp("layouts")
    url = f"sqlite:///{tmp / 'maturity.db'}"
    cfg = filler.fill(url, tmp)
    yield url, cfg
    import storage

    storage.dispose(url)


@pytest.fixture(scope="session")
def dash_app(layout_db):
    from maturity import app

    url, cfg = layout_db
    # No background warm-up thread: it would fill the caches while a test is changing the data under them
    # (test_city_cache_reloads_only_the_city_with_a_new_run failed about one run in five). The warm-up has
    # tests of its own.
    return app.create_app(cfg, url=url, warm=False)


@pytest.fixture
def in_app(dash_app):
    """A request context on the test app, so page functions find their database as in a callback."""
    with dash_app.server.test_request_context("/"):
        yield dash_app
