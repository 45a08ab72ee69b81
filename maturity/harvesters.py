"""Many portals at once: a few worker processes for the CPU, several threads in each for the network waits.

Harvesting a portal is mostly waiting (each page is a round trip to a portal that may be slow or far away) and
partly CPU (parsing, normalizing and storing a catalog holds the GIL). One process per portal would hide the
waits at the cost of a process each; threads alone would queue all the CPU on one core. So `run` starts
`processes` forked workers (about one per core) and each harvests up to `threads` portals at once in threads:
the waits of one portal overlap the parsing of another, and the cores share the parsing. A process takes all its
threads only once its portals are seen to keep it waiting (`Admission`): one at a time until then.

Politeness: the portals are handed out in *lanes*, each lane a list harvested one after another by one thread
(`lanes`: a host's portals share one lane, so a host sees one request at a time). Lanes go to the least busy
worker as its portals at once allow (and one more, ready to start), so a big catalog does not hold up the rest.

A worker that dies (killed, out of memory) takes down the portals it had started: `on_lost` is called for each
of them (the caller fails their runs). The portals of its lanes it had not started go to a new worker; a worker
that dies before starting any portal loses them all (`on_lost`), so a crash at start cannot loop.

Workers talk to this process over one pipe each (no queue shared between processes, so a killed worker cannot
leave a lock held that the others would wait on): this process sends lanes; a worker sends back
("start", key), ("progress", key, n, total), ("done", summary), ("free", lane id) and ("limit", n) (its
`Admission` opened: it harvests n portals at once).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any
from urllib.parse import urlsplit

from connectors import http
from maturity.settings import PortalConfig
from storage.db import unreachable_reason

Progress = Callable[[int, "int | None"], None]
Work = Callable[[PortalConfig, Progress], Any]  # harvest one portal, reporting its pages; returns its summary
WORKER_REAP_S = 5.0  # a killed worker is gone in milliseconds; this only bounds the wait for a stuck one
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def host_of(portal: PortalConfig) -> str:
    """The host a portal is known by: its Socrata domain (the site its catalog API answers for), else its URL's
    host and port."""
    return (portal.domain or urlsplit(portal.url).netloc).lower()


def lanes(portals: Sequence[PortalConfig], per_host: int = 1) -> list[list[PortalConfig]]:
    """The portals as lanes, in order of first appearance: a host's portals dealt over `per_host` lanes (one
    lane: one request at a time to that host)."""
    by_host: dict[str, list[list[PortalConfig]]] = {}
    dealt: dict[str, int] = {}
    out: list[list[PortalConfig]] = []
    for p in portals:
        host = host_of(p)
        own = by_host.setdefault(host, [])
        n = dealt.get(host, 0)
        dealt[host] = n + 1
        if len(own) < per_host:
            own.append([])
            out.append(own[-1])
        own[n % per_host].append(p)
    return out


@dataclass
class Events:
    """What the caller hears, always in the calling process: a page came in, a portal finished, a portal was
    lost with its worker."""

    progress: Callable[[str, int, int | None], None] | None = None
    done: Callable[[Any], None] = lambda summary: None
    lost: Callable[[PortalConfig], None] = lambda portal: None


def run(work: Work, groups: list[list[PortalConfig]], *, processes: int, threads: int, events: Events) -> None:
    """Harvest every lane of `groups`; `processes` 0: in threads of this process (no fork)."""
    if not groups:
        return
    if processes == 0:
        _in_threads(work, groups, threads, events)
    else:
        _Pool(work, processes, threads, events).run(groups)


def _in_threads(work: Work, groups: list[list[PortalConfig]], threads: int, events: Events) -> None:
    """The lanes on daemon threads of this process (one lane: in this thread); the callbacks one at a time (they
    may draw progress bars). Daemon threads, so that Ctrl-C ends the process at once: the caller closes the runs
    in flight, and their transactions end with the process."""
    said = threading.Lock()
    admitted = Admission(threads)
    crashed: list[BaseException] = []  # a harvest raised (a bug, or the database gone): the whole harvest stops

    def lane(portals: list[PortalConfig]) -> None:
        for portal in portals:
            def bar(n: int, total: int | None, key: str = portal.key) -> None:
                if events.progress:
                    with said:
                        events.progress(key, n, total)
            with admitted:
                with said:
                    if crashed:  # stopping: no other portal starts (its error would hide the first one)
                        return
                try:
                    summary = work(portal, bar)
                except BaseException as exc:
                    with said:  # recorded before its place is given to a waiting portal
                        crashed.append(exc)
                    return
            with said:
                events.done(summary)

    def runner(todo: list[list[PortalConfig]]) -> None:
        while True:
            with said:
                if not todo or crashed:
                    return
                portals = todo.pop(0)
            try:
                lane(portals)
            except BaseException as exc:  # a callback raised
                with said:
                    crashed.append(exc)

    todo = list(groups)
    if threads <= 1 or len(groups) == 1:
        runner(todo)
    else:
        pool = [threading.Thread(target=runner, args=(todo,), name="harvest", daemon=True)
                for _ in range(min(threads, len(groups)))]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    if crashed:
        raise crashed[0]


class Admission:
    """How many portals of a process are harvested at once: `threads`, once one of its requests has waited on a
    portal for LATENCY_S; until then FEW.

    Threads are for the network waits. A portal that answers at once (on loopback, on the LAN, or a small catalog
    served from a cache) leaves nothing to hide, and extra threads then only take the GIL from each other: each
    release (a socket read, SQLite's step, zstd) hands it to another thread's catalog, at the cost of a thread
    switch and of the CPU's caches; the thread holding SQLite's writers' lock, which every writer of the database
    waits on, is slowed most (291 recorded catalogs on loopback: 16 portals a process took 36% longer than one,
    two 10-20% longer than one). A portal on the internet is 20 ms to seconds away: its first request shows it,
    and the process then takes all its threads for the rest of its harvest."""

    FEW = 1  # until a request waits: a second portal's parsing would only take the GIL from the first's
    LATENCY_S = 0.02  # a round trip no portal reached over the internet is faster than

    def __init__(self, threads: int, waited: Callable[[], float] = http.oldest_wait_s,
                 opened: Callable[[int], None] = lambda limit: None) -> None:
        self.most, self.waited, self.opened = threads, waited, opened
        self.limit = min(self.FEW, threads)
        self.busy = self.queued = 0
        self.watched = False  # one waiting thread looks at the clock; the others sleep until a portal is done
        self.changed = threading.Condition()

    def __enter__(self) -> Admission:
        with self.changed:
            self.queued += 1
            while self.busy >= self.limit:
                waited = self.waited()
                if self.limit < self.most and waited >= self.LATENCY_S:
                    self.limit = self.most
                    self.changed.notify_all()
                    self.opened(self.limit)
                elif self.watched or self.limit == self.most:  # (opened: only a portal's end frees a place)
                    self.changed.wait()
                else:  # one thread watches the clock (each wake takes the GIL): until the oldest request out
                    self.watched = True  # reaches LATENCY_S, or a portal ends
                    self.changed.wait(max(self.LATENCY_S - waited, 0.002))
                    self.watched = False
            self.busy += 1
            self.queued -= 1
            if self.queued:
                self.changed.notify()  # one of them watches the clock now
        return self

    def __exit__(self, *exc: object) -> None:
        with self.changed:
            self.busy -= 1
            self.changed.notify()


class HarvestCrashed(RuntimeError):
    """A harvest raised in a worker process (a bug, or the database gone: not even a run's failure could be
    recorded): the whole harvest stops. `database`: the driver's first line when it was the database."""

    def __init__(self, message: str, database: str | None = None) -> None:
        super().__init__(message)
        self.database = database


# --- the worker processes -------------------------------------------------------------------------------------

@dataclass
class _Worker:
    proc: Any  # multiprocessing's forked Process (its context's class is not a public type)
    conn: Connection
    limit: int  # portals it harvests at once (its Admission's limit, as last heard)
    lanes: dict[int, list[PortalConfig]] = field(default_factory=dict)  # lane id -> its portals not yet done
    started: set[str] = field(default_factory=set)  # portals started and not done
    ever_started: bool = False


class _Pool:
    def __init__(self, work: Work, processes: int, threads: int, events: Events) -> None:
        self.work, self.processes, self.threads, self.events = work, processes, threads, events
        self.ctx = mp.get_context("fork")
        self.workers: list[_Worker] = []
        self.pending: list[list[PortalConfig]] = []
        self.next_lane = 0

    def run(self, groups: list[list[PortalConfig]]) -> None:
        self.pending = [list(g) for g in groups if g]
        try:
            while self.pending or any(w.lanes for w in self.workers):
                self._hand_out()
                ready = wait([w.conn for w in self.workers] + [w.proc.sentinel for w in self.workers])
                for w in list(self.workers):
                    if w.conn in ready:
                        self._read(w)
                for w in list(self.workers):
                    if w.proc.sentinel in ready:
                        self._buried(w)
        except BaseException:  # Ctrl-C, SIGTERM, a bug: no worker outlives this call
            for w in self.workers:
                w.proc.kill()
            raise
        finally:
            for w in self.workers:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            for w in self.workers:
                w.proc.join(WORKER_REAP_S)
                if w.proc.is_alive():
                    w.proc.kill()
                    w.proc.join(WORKER_REAP_S)
                w.conn.close()

    def _hand_out(self) -> None:
        """Pending lanes to the least busy workers with room (the portals it harvests at once, and one more ready
        to start when one ends); workers started as there is work. Lanes not handed out yet can still go to
        whichever worker frees up first."""
        while self.pending:
            free = [w for w in self.workers if len(w.lanes) < min(w.limit + 1, self.threads)]
            if len(self.workers) < self.processes and (not free or min(len(w.lanes) for w in free) > 0):
                free = [self._spawn()]
            if not free:
                return
            w = min(free, key=lambda w: len(w.lanes))
            lane = self.pending.pop(0)
            self.next_lane += 1
            w.lanes[self.next_lane] = lane
            w.conn.send((self.next_lane, lane))

    def _spawn(self) -> _Worker:
        here, there = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker_main, args=(there, self.work, self.threads, os.getpid()),
                                name="harvest-worker", daemon=True)
        proc.start()
        there.close()
        w = _Worker(proc, here, limit=min(Admission.FEW, self.threads))
        self.workers.append(w)
        return w

    def _read(self, w: _Worker) -> None:
        """Every message the worker has sent so far."""
        try:
            while w.conn.poll():
                self._heard(w, w.conn.recv())
        except (EOFError, OSError):  # the worker is gone; its sentinel says so too
            pass

    def _heard(self, w: _Worker, msg: tuple[Any, ...]) -> None:
        what = msg[0]
        if what == "start":
            w.started.add(msg[1])
            w.ever_started = True
        elif what == "progress":
            if self.events.progress:
                self.events.progress(msg[1], msg[2], msg[3])
        elif what == "done":
            summary = msg[1]
            w.started.discard(summary.portal_key)
            for lane in w.lanes.values():
                lane[:] = [p for p in lane if p.key != summary.portal_key]
            self.events.done(summary)
        elif what == "free":
            w.lanes.pop(msg[1], None)
        elif what == "limit":  # one worker's portals keep it waiting: so will the others' (the same network)
            for other in self.workers:
                other.limit = max(other.limit, msg[1])
        elif what == "crash":  # a harvest never raises for a portal failure: a bug, or the database is gone
            raise HarvestCrashed(msg[1], database=msg[2])

    def _buried(self, w: _Worker) -> None:
        """A worker ended: what it had started is lost; the rest of its lanes go to another worker (if it got
        anywhere at all)."""
        self._read(w)
        self.workers.remove(w)
        w.proc.join(WORKER_REAP_S)
        w.conn.close()
        for lane in w.lanes.values():
            rest = []
            for portal in lane:
                if portal.key in w.started or not w.ever_started:
                    self.events.lost(portal)
                else:
                    rest.append(portal)
            if rest:
                self.pending.insert(0, rest)


def _worker_main(conn: Connection, work: Work, threads: int, parent: int) -> None:
    """A forked worker: lanes arrive on `conn`, each harvested in a thread; None ends it once they are done."""
    die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the parent alone decides (it kills the workers and closes runs).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    said = threading.Lock()

    def send(*msg: Any) -> None:
        with said:
            conn.send(msg)

    def progress_of(key: str) -> Progress:
        return lambda n, total: send("progress", key, n, total)

    admitted = Admission(threads, opened=lambda limit: send("limit", limit))

    def lane(lane_id: int, portals: list[PortalConfig]) -> None:
        try:
            for portal in portals:
                with admitted:
                    send("start", portal.key)
                    summary = work(portal, progress_of(portal.key))
                send("done", summary)
        except Exception as exc:
            send("crash", f"{portal.key}: {type(exc).__name__}: {exc}", unreachable_reason(exc))
        send("free", lane_id)

    with ThreadPoolExecutor(threads, thread_name_prefix="harvest") as pool:
        while (msg := conn.recv()) is not None:
            pool.submit(lane, *msg)


def die_with_parent(parent: int) -> None:
    """Linux: the kernel sends this worker SIGKILL when its parent dies (kill -9 included), so no worker lives on
    under PID 1 holding database connections. Elsewhere (no prctl) the parent's reaping is all there is."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
