"""compute_all shares one set of derived arrays between its indicators, per thread: threads score at once (the
scheduler's threads) and draw at once (the dashboard's request threads), and one thread's scoring must neither
replace nor clear another's. Each thread waits on the other's events, never on a clock."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

import pandas as pd

from indicators.derived import derive, shared_derivations

AS_OF = datetime(2022, 6, 1, tzinfo=UTC)
BOUND_S = 30.0  # only reached when a thread waits for an event that never comes (a failure)


def test_two_threads_scoring_at_once_each_keep_their_own_shared_arrays():
    mine, theirs = pd.DataFrame({"source_id": ["a-1"]}), pd.DataFrame({"source_id": ["b-1"]})
    first_done, theirs_in, theirs_out = threading.Event(), threading.Event(), threading.Event()
    kept: dict[str, bool] = {}

    def scoring() -> None:
        with shared_derivations():
            first = derive(mine, AS_OF)
            first_done.set()
            theirs_in.wait(BOUND_S)  # the other thread's block is open and has derived its own catalog
            kept["while theirs is open"] = derive(mine, AS_OF) is first
            theirs_out.wait(BOUND_S)  # ... and has closed
            kept["after theirs closed"] = derive(mine, AS_OF) is first

    def other_scoring() -> None:
        first_done.wait(BOUND_S)
        with shared_derivations():
            derive(theirs, AS_OF)
            theirs_in.set()
        theirs_out.set()

    threads = [threading.Thread(target=f) for f in (scoring, other_scoring)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND_S)
    assert kept == {"while theirs is open": True, "after theirs closed": True}


def test_outside_a_block_every_call_derives_afresh_and_a_nested_block_has_its_own():
    table = pd.DataFrame({"source_id": ["a-1"]})
    assert derive(table, AS_OF) is not derive(table, AS_OF)
    with shared_derivations():
        outer = derive(table, AS_OF)
        assert derive(table, AS_OF) is outer
        with shared_derivations():
            inner = derive(table, AS_OF)
            assert inner is not outer and derive(table, AS_OF) is inner
        assert derive(table, AS_OF) is outer  # the outer block's entry is back
