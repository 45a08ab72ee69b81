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
    dash_app = app.create_app(cfg, url=url, warm=False)
    alias_page_modules()
    return dash_app


def alias_page_modules() -> None:
    """Let tests `from layouts import city` get the module Dash registered the page from.

    Since the app lives in the maturity package, Dash names the page modules by their folder's full path
    ("work.wt.x.layouts.city"): importing `layouts.city` again would register /city/<key> twice (inside a
    request: PageError; outside: "duplicate paths" on the next request). The same module object under its
    short name is what the tests mean.
    """
    import sys

    import dash

    for page in dash.page_registry.values():
        module = page["module"]
        short = "layouts." + module.rsplit(".", 1)[-1]
        if module != short and module in sys.modules:
            sys.modules[short] = sys.modules[module]


@pytest.fixture
def in_app(dash_app):
    """A request context on the test app, so page functions find their database as in a callback."""
    with dash_app.server.test_request_context("/"):
        yield dash_app
