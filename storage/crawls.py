"""What a crawl was worth: the rules that judge a run complete, partial or empty, and what counts as removed.

Pure functions (no I/O): `storage.writes` calls `judge` when a run is stored (and again for the runs dated
after an out-of-order import), `storage.queries` calls `confirmed_removals` and `score_flag`. The words:

- **complete** (stored status "ok"): holds at least COMPLETE_SHARE of the datasets of the last complete run
  before it (a portal's first run with items is complete: there is nothing to compare with). Only complete
  runs are the city's state: they are scored as such, and removals are counted between them.
- **partial** (stored status "suspect"): it has items, but fewer than that. Its catalog is kept and shown
  (marked), its scores are stored flagged, its missing datasets are not deletions.
- **empty** (stored status "empty"): 0 datasets (a 0-item response, an empty import file). Kept as a fact
  about the crawl, never scored as the city's state.
- **failed**: the crawl did not finish (an error); nothing of it is data.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# A run is complete when it holds >= COMPLETE_SHARE x the last complete run's unique datasets. A city
# catalog changes by a few datasets a week, so a real complete crawl stays within a few percent of the last
# one; the recorded weekly Chicago scrape (tests/fixtures/socrata/history) shows what falls short of it:
# 313, 466, 256, 95, 95, 196, 294, 260 unique ids, every later file a subset of 06-15's 466 (checked with
# comm), i.e. the API returned a different share of one catalog each week, not a smaller catalog. The
# old rule (0.4) let 256 (0.55) and 196 (0.42 of 06-22) count as the city's state: "kept" fell to 46% and
# datasets "removed" came back the next week. 0.9 flags every one of those short crawls while leaving room
# for a real week of clean-up (10% of a catalog removed at once is a purge, and a lasting one is accepted
# below as the new size). On all ten domains of ../shared/fixtures/socrata_scrape_2022/history it judges the
# same dates the same way (the scrape got the same share of every catalog each week): 06-08 and 06-15
# complete, 06-22 .. 07-13 partial, 07-20 complete as a confirmed shrink, 07-23 complete for Cincinnati
# (43 of 46) and partial for the nine others (e.g. Chicago 260 of 294, SF 159 of 183); NYC (from 06-22):
# 944 complete, 81, 81, 607 partial, 977 complete.
COMPLETE_SHARE = 0.9
# ... unless the shortfall lasts: when partial runs have come back for CONFIRM_DAYS since the first one after
# the last complete run, the portal's size has changed (a migration, a purge), and a run that holds
# COMPLETE_SHARE of the largest crawl since that last complete run is complete (the new size). The short
# crawls in the real history lasted two to four weekly snapshots; four weeks leaves a margin over such an
# outage, while a real shrink is not flagged forever. Empty runs never start or confirm a new size: a portal
# answering with nothing is broken, not small.
CONFIRM_DAYS = 28
CONFIRMED_NOTE = "shrink confirmed"

COMPLETE, PARTIAL, EMPTY, FAILED = "ok", "suspect", "empty", "failed"  # stored run statuses
CRAWLED = (COMPLETE, PARTIAL, EMPTY)  # finished runs that delivered a crawl (any size)
SHOWN = (COMPLETE, PARTIAL)  # runs whose catalog can be shown


@dataclass(frozen=True)
class PastRun:
    """What judging needs of an earlier run of the same portal."""

    run_id: int
    as_of: datetime
    items: int
    status: str


@dataclass(frozen=True)
class Verdict:
    status: str  # COMPLETE | PARTIAL | EMPTY
    reason: str | None  # why a run is not complete, naming the run it was measured against
    note: str | None = None  # a confirmed shrink says so


def judge(items: int, as_of: datetime, earlier: Sequence[PastRun]) -> Verdict:
    """Judge a run of `items` unique datasets dated `as_of` against the portal's runs dated before it.

    `earlier`: the portal's finished complete/partial/empty runs dated before this one (any order).
    """
    if items <= 0:
        return Verdict(EMPTY, "0 datasets: an empty crawl is not the portal's catalog")
    ordered = sorted(earlier, key=lambda r: (r.as_of, r.run_id))
    last = next((r for r in reversed(ordered) if r.status == COMPLETE), None)
    if last is None or items >= COMPLETE_SHARE * last.items:
        return Verdict(COMPLETE, None)
    short = [r for r in ordered if r.status == PARTIAL and (r.as_of, r.run_id) > (last.as_of, last.run_id)]
    if short and as_of - short[0].as_of >= timedelta(days=CONFIRM_DAYS) and \
            items >= COMPLETE_SHARE * max(r.items for r in short):
        return Verdict(COMPLETE, None, f"{CONFIRMED_NOTE}: under {COMPLETE_SHARE:g} x the {last.items} of run "
                                       f"#{last.run_id} since {short[0].as_of:%Y-%m-%d}, over {CONFIRM_DAYS} days; "
                                       f"accepted as the new size")
    return Verdict(PARTIAL, f"{items} unique items is under {COMPLETE_SHARE:g} x the {last.items} of the last complete "
                            f"run #{last.run_id} ({last.as_of:%Y-%m-%d}): a partial crawl, not deletions")


def confirmed_removals(complete_members: Sequence[Iterable[str]]) -> set[str] | None:
    """Ids removed as of the newest of the given complete runs' member lists (oldest first).

    A dataset is removed only when two consecutive complete runs lack it: it was in the complete run before
    the previous one and neither the previous nor the newest complete run has it. A dataset missing from one
    complete run only may be a crawl's hiccup and is not counted yet. None when fewer than three complete
    runs are given: no removal can be confirmed yet, so "removed" is not known (not "nothing removed").
    """
    if len(complete_members) < 3:
        return None
    before, previous, newest = (set(m) for m in complete_members[-3:])
    return before - previous - newest


def score_flag(newest_statuses: Iterable[str]) -> str | None:
    """The flag of a score built from portals whose newest crawled runs (at the score's date) have these
    statuses: None when every one is complete (the city's state), "empty" when any came back empty, else
    "partial". Failed runs are not passed: a failure keeps the last crawl as the portal's catalog."""
    statuses = set(newest_statuses)
    if EMPTY in statuses:
        return "empty"
    if statuses - {COMPLETE}:
        return "partial"
    return None
