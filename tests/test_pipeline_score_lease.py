"""One scoring of a city's latest scores at a time (maturity/pipeline.py `score`).

Threads and workers harvest a city's portals side by side and each then scores the city. Two scorings of the
same city at once could save in the other order than they read: a scoring that read before the other portal's
run had finished saved after the one that read both, at the same time stamp, and its stale scores stood as the
latest. The second scoring now waits for the first (a lease in the database, so workers on other machines wait
too). The scoring itself is replaced here by one that holds until told; the threads wait on events and on the
waiting scoring's own attempts at the lease, never on a clock.
"""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import storage
from maturity import pipeline
from storage import locks

BOUND_S = 30.0  # only reached when the code under test is wrong


def test_a_second_scoring_of_a_city_waits_for_the_first_and_a_dated_one_does_not(sqlite_url, monkeypatch):
    storage.upgrade(sqlite_url)
    engine = storage.open_db(sqlite_url)
    order: list[str] = []
    first_in, release = threading.Event(), threading.Event()
    tries = {"b": 0}
    tried_twice = threading.Event()

    def scoring(settings, engine, city_key, as_of, **kwargs):
        name = threading.current_thread().name
        order.append(f"{name} in")
        if name == "a":
            first_in.set()
            release.wait(BOUND_S)
        order.append(f"{name} out")
        return {}

    real_take = locks.take_lease

    def counted_take(engine, name, owner, **kwargs):
        got = real_take(engine, name, owner, **kwargs)
        if threading.current_thread().name == "b" and not got:
            tries["b"] += 1
            if tries["b"] >= 2:
                tried_twice.set()
        return got

    monkeypatch.setattr(pipeline, "_score", scoring)
    monkeypatch.setattr(locks, "take_lease", counted_take)
    a = threading.Thread(target=pipeline.score, args=(None, engine, "chicago"), name="a")
    b = threading.Thread(target=pipeline.score, args=(None, engine, "chicago"), name="b")
    a.start()
    assert first_in.wait(BOUND_S)
    b.start()
    assert tried_twice.wait(BOUND_S)  # b has found the city's scoring lease taken, twice
    pipeline.score(None, engine, "chicago", as_of=datetime(2022, 6, 1, tzinfo=UTC))  # a dated rescoring: no wait
    assert order == ["a in", "MainThread in", "MainThread out"]
    release.set()
    a.join(BOUND_S)
    b.join(BOUND_S)
    assert order == ["a in", "MainThread in", "MainThread out", "a out", "b in", "b out"]
    assert locks.lock_holders(engine, pipeline.SCORE_LEASE_PREFIX) == {}  # released after each scoring


def test_rescoring_every_date_of_a_city_waits_for_its_latest_scoring(sqlite_url, monkeypatch):
    """`score --all` rescores every stored date of a city, the latest included: it holds the city's scoring for
    the whole pass, so a worker's scoring of that city goes before or after it, not in between."""
    from types import SimpleNamespace

    storage.upgrade(sqlite_url)
    engine = storage.open_db(sqlite_url)
    order: list[str] = []
    first_in, release, tried = threading.Event(), threading.Event(), threading.Event()
    dates = [datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 6, 8, tzinfo=UTC)]

    def scoring(settings, engine, city_key, as_of, **kwargs):
        order.append(f"{threading.current_thread().name} {as_of:%m-%d}" if as_of else "latest in")
        if as_of is None:
            first_in.set()
            release.wait(BOUND_S)
            order.append("latest out")
        return {}

    real_take = locks.take_lease

    def counted_take(engine, name, owner, **kwargs):
        got = real_take(engine, name, owner, **kwargs)
        if threading.current_thread().name == "all" and not got:
            tried.set()
        return got

    monkeypatch.setattr(pipeline, "_score", scoring)
    monkeypatch.setattr(locks, "take_lease", counted_take)
    monkeypatch.setattr(storage, "run_dates", lambda engine, city_key: dates)
    settings = SimpleNamespace(city=lambda key: SimpleNamespace(portals=()))  # no runs to judge again here
    latest = threading.Thread(target=pipeline.score, args=(None, engine, "chicago"), name="latest")
    every = threading.Thread(target=pipeline.score_all, args=(settings, engine, "chicago"), name="all")
    latest.start()
    assert first_in.wait(BOUND_S)
    every.start()
    assert tried.wait(BOUND_S)  # score --all found the city's scoring taken
    assert order == ["latest in"]
    release.set()
    latest.join(BOUND_S)
    every.join(BOUND_S)
    assert order == ["latest in", "latest out", "all 06-01", "all 06-08"]
