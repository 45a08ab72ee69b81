"""maturity/harvesters.py: portals of different hosts wait on the network side by side; a host's portals take turns.

The portals are recorded catalogs served by the emulator (tests/fixtures/PROVENANCE.md): four Socrata domains
(tests/fixtures/socrata/latest; a Socrata portal is known by its domain) and the Cincinnati data.json served as
two DCAT sites on the emulator's one host:port. The emulator's handler is wrapped to see which requests are in
flight at once; no test waits on a clock.
"""
from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

import storage
from maturity import harvesters, pipeline
from maturity.settings import PortalConfig
from tests.conftest import FIXTURES
from tests.emulator import Emulator, load_json, load_socrata_jsonl

SOCRATA = ("data.austintexas.gov", "data.cincinnati-oh.gov", "data.cityofchicago.org", "data.cityofnewyork.us")
HOLD_S = 30.0  # the longest the first request waits for a second one (never reached when threads overlap)


def portal(key: str, url: str, domain: str | None = None, kind: str = "socrata") -> PortalConfig:
    return PortalConfig(key=key, city_key=key, kind=kind, url=url, domain=domain)


def test_lanes_keep_a_hosts_portals_together_in_order():
    a1, a2 = portal("a1", "https://a.example.org"), portal("a2", "https://A.example.org/other")
    b = portal("b", "https://b.example.org")
    s1 = portal("s1", "https://api.example.com", domain="data.one.gov")
    s2 = portal("s2", "https://api.example.com", domain="data.two.gov")
    # the host is the URL's host:port (case-insensitive), or the Socrata domain where one is given
    assert harvesters.lanes([a1, b, a2, s1, s2]) == [[a1, a2], [b], [s1], [s2]]
    # per_host=2: a host's portals dealt over two lanes (two requests at once to that host)
    a3 = portal("a3", "https://a.example.org/third")
    assert harvesters.lanes([a1, a2, a3, b], per_host=2) == [[a1, a3], [a2], [b]]


@pytest.fixture(scope="module")
def served():
    socrata = {d: load_socrata_jsonl(FIXTURES / f"socrata/latest/{d}.jsonl.gz") for d in SOCRATA}
    doc = load_json(FIXTURES / "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz")
    with Emulator(socrata=socrata, dcat={"one": doc, "two": doc}) as emu:
        yield emu


@pytest.mark.parametrize("jobs", [1, 2], ids=["threads-here", "worker-processes"])
def test_hosts_wait_side_by_side_and_a_host_in_turn(tmp_path, served, jobs):
    emu = served
    lock, second = threading.Lock(), threading.Event()
    flight = {"all": 0, "dcat": 0}
    most = {"all": 0, "dcat": 0}
    answer = emu._handle

    def watched(handler) -> None:
        kinds = ["all", "dcat"] if handler.path.startswith("/dcat/") else ["all"]
        with lock:
            for k in kinds:
                flight[k] += 1
                most[k] = max(most[k], flight[k])
            first = most["all"] == 1 and not second.is_set()
            if flight["all"] >= 2:
                second.set()
        try:
            if first:  # held until another request arrives: only a harvest in parallel can send one
                second.wait(HOLD_S)
            answer(handler)
        finally:
            with lock:
                for k in kinds:
                    flight[k] -= 1

    emu._handle = watched
    try:
        portals = [portal(f"s{i}", emu.url, domain=d) for i, d in enumerate(SOCRATA)]
        portals += [portal(f"d{i}", emu.dcat_url(site), kind="dcat") for i, site in enumerate(("one", "two"))]
        url = f"sqlite:///{tmp_path / 'h.db'}"
        storage.upgrade(url)
        from maturity.settings import CityConfig, Settings

        cfg = Settings(path=tmp_path / "config.toml", storage_url=url,
                       cities=tuple(CityConfig(key=p.key, name=p.key, portals=(p,)) for p in portals))
        got = pipeline.harvest_many(cfg, storage.open_db(url), cfg.portals, jobs=jobs, threads=8,
                                    now=datetime(2026, 11, 20, 4, tzinfo=UTC))
    finally:
        emu._handle = answer
        storage.dispose(f"sqlite:///{tmp_path / 'h.db'}")
    assert [s.status for s in got] == ["ok"] * 6, [s.error for s in got]
    assert second.is_set() and most["all"] >= 2  # two portals' requests were in flight together
    assert most["dcat"] == 1  # the two DCAT sites share a host: never two requests to it at once
    # Chicago's recorded scrape: 295 lines, 260 unique ids; the data.json: 145 datasets on each site
    assert {s.portal_key: s.items for s in got}["s2"] == 260
    assert [s.items for s in got[4:]] == [145, 145]


# --- how many portals a process harvests at once (Admission) -------------------------------------------------

def _queued(adm: harvesters.Admission, n: int) -> None:
    """Wait until n threads wait on `adm` (a condition, not a clock)."""
    with adm.changed:
        assert adm.changed.wait_for(lambda: adm.queued == n, timeout=HOLD_S)


def test_a_process_harvests_one_portal_at_a_time_while_none_keeps_it_waiting():
    adm = harvesters.Admission(16, waited=lambda: 0.0)
    adm.__enter__()
    second = threading.Thread(target=adm.__enter__, daemon=True)  # a failure must not hang the run
    second.start()
    _queued(adm, 1)
    assert (adm.busy, adm.limit) == (1, harvesters.Admission.FEW) == (1, 1)  # the second waits for a free place
    adm.__exit__()
    second.join(HOLD_S)
    assert not second.is_alive() and (adm.busy, adm.queued, adm.limit) == (1, 0, 1)


def test_a_request_kept_waiting_opens_every_thread_of_the_process():
    waited, opened = [0.0], []
    adm = harvesters.Admission(16, waited=lambda: waited[0], opened=opened.append)
    adm.__enter__()
    second = threading.Thread(target=adm.__enter__, daemon=True)  # a failure must not hang the run
    second.start()
    _queued(adm, 1)
    assert adm.busy == 1 and opened == []
    waited[0] = harvesters.Admission.LATENCY_S  # the harvest's request has now waited that long
    second.join(HOLD_S)  # noticed by the waiting thread itself, within LATENCY_S
    assert not second.is_alive() and (adm.busy, adm.limit) == (2, 16) and opened == [16]
    for _ in range(14):
        adm.__enter__()  # no waiting now: all 16 at once
    assert adm.busy == 16


def test_a_harvest_that_raises_stops_the_others_before_they_start(monkeypatch):
    """A harvest raises only when the whole harvest must stop (the database gone): a portal waiting for its place
    must not start then, or its own failure (say "database not accepting connections", met first) would be
    reported instead of the error that stopped the harvest, and it would start a run nobody ends."""
    made: list[harvesters.Admission] = []

    class Watched(harvesters.Admission):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    monkeypatch.setattr(harvesters, "Admission", Watched)
    first: list[str] = []
    started_after: list[str] = []

    def work(p: PortalConfig, bar: object) -> object:
        if first:
            started_after.append(p.key)
            raise AssertionError("a second portal started")
        first.append(p.key)
        deadline = time.monotonic() + HOLD_S  # the other portal waits for this one's place (one a process while
        while made[0].queued < 1:  # none waits): polled, as a waiting place sends no notice
            assert time.monotonic() < deadline
            time.sleep(0.001)
        raise ConnectionError(f"{p.key}: the connection is lost")

    a, b = portal("a", "https://a.example.org"), portal("b", "https://b.example.org")
    with pytest.raises(ConnectionError) as raised:
        harvesters.run(work, [[a], [b]], processes=0, threads=2, events=harvesters.Events())
    assert str(raised.value) == f"{first[0]}: the connection is lost" and started_after == []


@pytest.mark.parametrize("jobs", [1, 2], ids=["threads-here", "worker-processes"])
def test_portals_far_away_are_all_waited_on_at_once(tmp_path, jobs):
    """Ten portals whose first answers come only once all ten have asked (a barrier in the emulator stands for
    portals far away): each process starts with one, sees its requests wait and takes the others; with worker
    processes the parent hands out more portals once a worker says so."""
    n = 10
    items = load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")[:10]
    domains = [f"far{i}.example.org" for i in range(n)]
    meet = threading.Barrier(n, timeout=25)  # below the client's read timeout (30 s): a clean failure
    with Emulator(socrata={d: items for d in domains}) as emu:
        emu.fault("/api/catalog/v1", meet=meet)
        portals = [portal(f"p{i}", emu.url, domain=d) for i, d in enumerate(domains)]
        url = f"sqlite:///{tmp_path / 'far.db'}"
        storage.upgrade(url)
        from maturity.settings import CityConfig, Settings

        cfg = Settings(path=tmp_path / "config.toml", storage_url=url,
                       cities=tuple(CityConfig(key=p.key, name=p.key, portals=(p,)) for p in portals))
        try:
            got = pipeline.harvest_many(cfg, storage.open_db(url), cfg.portals, jobs=jobs, threads=16,
                                        now=datetime(2026, 11, 20, 4, tzinfo=UTC))
        finally:
            storage.dispose(url)
    assert not meet.broken  # all ten requests were out at once
    assert [(s.status, s.items) for s in got] == [("ok", 10)] * n


def test_when_one_worker_is_kept_waiting_the_parent_hands_every_worker_more_portals():
    """Heard from one worker that its portals keep it waiting, the parent takes the others to be (the same
    network) and shares the waiting lanes out evenly; before, the first worker to say so got them all (measured:
    17 portals against 3 on 20 portals at 100 ms, the second wave ~100 ms late)."""

    class Pipe:
        def __init__(self) -> None:
            self.sent: list = []

        def send(self, msg) -> None:
            self.sent.append(msg)

    pool = harvesters._Pool(lambda portal, bar: None, processes=2, threads=16, events=harvesters.Events())
    a, b = (harvesters._Worker(proc=None, conn=Pipe(), limit=harvesters.Admission.FEW) for _ in range(2))
    pool.workers = [a, b]
    pool.pending = [[portal(f"p{i}", f"https://h{i}.example.org")] for i in range(20)]
    pool._hand_out()
    assert (len(a.lanes), len(b.lanes), len(pool.pending)) == (2, 2, 16)  # one at a time each, and one ready
    pool._heard(a, ("limit", 16))
    pool._hand_out()
    assert (a.limit, b.limit) == (16, 16) and (len(a.lanes), len(b.lanes), len(pool.pending)) == (10, 10, 0)
