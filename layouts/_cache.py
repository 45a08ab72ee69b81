"""Where the dashboard's database is and its caches: the Flask-held `Context`, a query cache keyed by the live
run marker (`query`), a per-city cache keyed by each city's own runs (`city_query`), and the warm-up that fills
them in the background (`warm`, `keep_warm`). Pages call these instead of touching `storage` directly when the
result depends only on harvested data, so a page reads each table once per new run, not once per callback.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import flask

import storage
from maturity.settings import Settings

CONTEXT_KEY = "MATURITY_DASHBOARD"  # key of the Context on the Flask app's config
CACHE_SIZE = 1024  # results kept: ~6 per city (history, runs, datasets, failing, …) plus a few global ones
# Table rows kept across all cached DataFrames: a count of entries alone does not bound memory when one city's
# tables hold millions of rows. The 300,000-dataset benchmark city holds ~3.5M: its explorer table (300k rows,
# ~0.7 KB each), its failing rows (2.82M, ~40 bytes each: shared strings, categorical reasons) and a drill-down
# list or two (<= 300k). Room for two such cities; the least recently used go first, the newest is always kept.
CACHE_ROWS = 8_000_000


@dataclass(frozen=True)
class Context:
    """What the pages of one app need: the settings and the database URL (engines are cached by storage)."""

    settings: Settings
    url: str

    @property
    def engine(self) -> storage.Engine:
        return storage.open_db(self.url)

    def city_name(self, key: str) -> str:
        for c in self.settings.cities:
            if c.key == key:
                return c.name
        return key


def context() -> Context:
    return flask.current_app.config[CONTEXT_KEY]


_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # (url, marker or stamp, name, args) -> result
_rows: dict[tuple[Any, ...], int] = {}  # key -> rows of its DataFrame (the weight CACHE_ROWS bounds)
_markers: dict[str, tuple] = {}  # url -> the marker the global entries of `_cache` belong to
_lock = threading.Lock()


def marker() -> tuple:
    """storage.latest_run_marker, read at most once per request."""
    if flask.has_request_context():
        if "maturity_marker" not in flask.g:
            flask.g.maturity_marker = tuple(storage.latest_run_marker(context().engine))
        return flask.g.maturity_marker
    return tuple(storage.latest_run_marker(context().engine))


def query(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(engine, *args)`, cached until a new run or score lands (the marker changes).

    Callers must not mutate the result (DataFrames are shared between requests).
    """
    ctx = context()
    current = marker()
    key = (ctx.url, current, name, args)
    with _lock:
        if _markers.get(ctx.url) != current:
            # a new run or score landed: results of older markers are dead; drop them now so they do not
            # push the per-city entries (still valid) out of the LRU
            _markers[ctx.url] = current
            for k in [k for k in _cache if k[0] == ctx.url and k[1] != current]:
                _drop(k)
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = fn(ctx.engine, *args)
    with _lock:
        # Only while `current` is still the newest marker: a request or the background refresher that read
        # the marker before a run landed must not file its result after the newer marker dropped the old ones.
        if _markers.get(ctx.url) == current:
            _file(key, value)
    return value


def _file(key: tuple[Any, ...], value: Any) -> None:
    """Keep `value` as the newest entry, then drop the least recently used beyond CACHE_SIZE / CACHE_ROWS (held
    lock)."""
    _drop(key)
    _cache[key] = value
    _rows[key] = len(value) if hasattr(value, "shape") else 0  # DataFrames and Series weigh their rows
    total = sum(_rows.values())
    while len(_cache) > 1 and (len(_cache) > CACHE_SIZE or total > CACHE_ROWS):
        oldest = next(iter(_cache))
        total -= _rows.get(oldest, 0)
        _drop(oldest)


def _drop(key: tuple[Any, ...]) -> None:
    _cache.pop(key, None)
    _rows.pop(key, None)


def cached_rows() -> int:
    """Table rows the caches hold now (what CACHE_ROWS bounds)."""
    with _lock:
        return sum(_rows.values())


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _rows.clear()
        _epochs.clear()
        _markers.clear()


# Per-city cache. The global marker moves with every run of any city, but a city's history and catalog
# only change with its own runs and scores: keyed by the city's stamp (its newest run id among the
# recent runs, its latest scored as_of, and an epoch), 50 cities cost one reload per new run, not 50.
# A re-score of past dates (`maturity score --all`) moves the score marker without moving any city's
# latest as_of: that bumps the epoch and reloads every city.
RECENT_RUNS = 500  # newest runs scanned for the stamps; a city's new run is always among them
_epochs: dict[str, tuple] = {}


def city_stamps() -> dict[Hashable, tuple]:  # city key (pandas types it Hashable) -> stamp
    return query("city_stamps", _city_stamps)


def _city_stamps(engine: storage.Engine) -> dict[Hashable, tuple]:
    url = context().url
    run_id, score_id = marker()
    latest = query("latest_scores", storage.latest_scores)
    as_of = {k: str(v) for k, v in latest.groupby("city_key")["as_of"].max().items()} if not latest.empty else {}
    recent = storage.runs(engine, limit=RECENT_RUNS)
    last_run = recent.groupby("city_key")["run_id"].max().to_dict() if not recent.empty else {}
    with _lock:
        prev = _epochs.get(url)
        epoch = 0
        if prev is not None:
            prev_score_id, prev_as_of, epoch = prev
            if score_id != prev_score_id and as_of == prev_as_of:
                epoch += 1
        _epochs[url] = (score_id, as_of, epoch)
    keys = set(as_of) | set(last_run) | {c.key for c in context().settings.cities}
    return {k: (int(last_run.get(k, 0)), as_of.get(k), epoch) for k in keys}


_inflight: dict[tuple[Any, ...], threading.Lock] = {}  # cache key -> held while one thread computes it


def city_query(name: str, fn: Callable[..., Any], key: str) -> Any:
    """`fn(engine, key)` for one city, cached until that city's stamp changes (see above).

    One computation per entry at a time: a request that needs an entry another thread (the warm-up, another
    visitor) is computing waits for that result instead of computing it again (a 300,000-row explorer table
    built twice at once costs twice the memory and halves the CPU each gets).
    """
    ctx = context()
    stamp = city_stamps().get(key)
    cache_key = ("city", ctx.url, name, key, stamp)
    with _lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
        gate = _inflight.setdefault(cache_key, threading.Lock())
    with gate:
        try:
            with _lock:
                if cache_key in _cache:
                    return _cache[cache_key]
            value = fn(ctx.engine, key)
            if city_stamps().get(key) != stamp:  # the city ran again meanwhile: the value is already stale, not filed
                return value
            with _lock:
                # this city's entries of older stamps are dead: drop them so they do not crowd the LRU
                for k in [k for k in _cache if k[0] == "city" and k[1] == ctx.url and k[3] == key and k[4] != stamp]:
                    _drop(k)
                _file(cache_key, value)
            return value
        finally:
            with _lock:
                _inflight.pop(cache_key, None)


def city_cached(name: str, key: str) -> Any | None:
    """What `city_query(name, …, key)` holds for the city's current stamp, None when it is not computed yet
    (a page that can show something else meanwhile asks this instead of waiting)."""
    ctx = context()
    cache_key = ("city", ctx.url, name, key, city_stamps().get(key))
    with _lock:
        return _cache.get(cache_key)
