"""The dashboard's warm-up: fills the per-city caches of `layouts._cache` at start and refreshes the city whose
run landed whenever the live marker moves, so no visitor of a large database waits for many cities' histories and
catalogs to load. Runs in a background thread that `maturity.app.create_app` starts.
"""
from __future__ import annotations

import gc
import threading

import flask

import storage
from layouts._cache import context, query
from layouts._components import city_criterion_history, city_datasets_cached, city_flagged_criteria, city_runs


def warm(server: flask.Flask) -> None:
    """Fill the per-city caches so the first visitor does not pay for them: first what every city page shows
    first (history, runs, the header and cards: small, from stored scores), for every city; then the large
    tables (the explorer rows, the failing datasets and the drill-down list a city page opens on, the
    details below its chart), city by city; last the answers the Overview, Compare and Harvests pages open
    with (their first computation took 0.6-1.3 s of a first visit's 1.5 s on the demo, 25-135 ms once cached).

    Run in a daemon thread at app start. Errors are logged once, not raised (an empty or unreachable database
    is reported by the pages and /health instead).
    """
    import importlib
    import logging

    log = logging.getLogger(__name__)
    with server.app_context():
        try:
            city = importlib.import_module("layouts.city")  # the page module the app loaded (maturity.app)
            keys = list(query("cities", storage.cities)["key"])
            for k in keys:
                city_criterion_history(k)
                city_flagged_criteria(k)  # the overall trend lines' hollow points (overview, city header)
                city_runs(k)
                city.summary(k)
            for k in keys:
                city_datasets_cached(k)
                criterion = city.default_criterion(k)
                if criterion:
                    city.drill_rows(k, criterion, city.ALL)
                city.details(k)
            overview, compare, harvests = (importlib.import_module(f"layouts.{m}")
                                           for m in ("overview", "compare", "harvests"))
            overview.body()
            compare.body(compare.default_cities(keys))
            harvests.body(None)
        except Exception as exc:  # noqa: BLE001 - a background nicety must never take the app down
            log.warning("dashboard cache warm-up stopped: %s", exc)
            return
    settle_gc()
    log.info("dashboard cache warm for %d cities", len(keys))


def settle_gc() -> None:
    """Collect once, then freeze what is left (the caches) out of the collector's future walks.

    The caches hold millions of objects (every city's explorer rows, catalogs, histories). Each automatic
    full collection walked them all: ~0.1 s of a request, at random, growing with the caches, and the
    main cause of the after-run p95s. Frozen objects are still freed by reference counting when a cache
    drops them; only a frozen reference cycle waits, until the next call unfreezes and collects it. Called
    by `warm`, i.e. in the background refresher once per landed run, never in a request.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def keep_warm(server: flask.Flask, period_s: float, stop: threading.Event | None = None,
              warmed: threading.Event | None = None) -> None:
    """Warm at start, then again whenever the run marker moves (checked every `period_s`); `warmed` is set once
    the first warm-up is over (benchmarks/browser.py measures a server that has finished starting).

    Without it a page nobody opened for a while pays, on its next view, for every city that ran since;
    with it each new run costs one city's reload in the background, right after it lands.
    """
    import time

    last = None
    while stop is None or not stop.is_set():
        with server.app_context():
            try:
                now = tuple(storage.latest_run_marker(context().engine))
            except Exception:  # noqa: BLE001 - database not reachable yet: try again next period
                now = None
        if now is not None and now != last:
            warm(server)
            last = now
            if warmed is not None:
                warmed.set()
        time.sleep(period_s)
