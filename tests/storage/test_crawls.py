"""The crawl rules alone (storage/crawls.py, pure): on the real weekly Chicago counts, no database."""
from __future__ import annotations

from datetime import timedelta

from storage import crawls
from tests.storage.conftest import CHICAGO_DATES, day
from tests.storage.test_history import CHICAGO_STATUS, CHICAGO_UNIQUE


def judge_in_order(counts: dict[str, int]) -> dict[str, str]:
    earlier: list[crawls.PastRun] = []
    out = {}
    for i, (d, n) in enumerate(counts.items()):
        verdict = crawls.judge(n, day(d), earlier)
        earlier.append(crawls.PastRun(i, day(d), n, verdict.status))
        out[d] = verdict.status
    return out


def test_judge_reproduces_the_statuses_of_the_real_history():
    # CHICAGO_STATUS works the ratios out by hand (tests/storage/test_history.py)
    assert judge_in_order(CHICAGO_UNIQUE) == CHICAGO_STATUS
    assert [CHICAGO_UNIQUE[d] for d in CHICAGO_DATES] == [313, 466, 256, 95, 95, 196, 294, 260]


def test_the_threshold_is_ninety_percent_of_the_last_complete_run():
    first = [crawls.PastRun(1, day("2022-06-08"), 466, crawls.COMPLETE)]
    at = day("2022-06-15")
    assert crawls.judge(420, at, first).status == crawls.COMPLETE  # 420 >= 419.4
    short = crawls.judge(419, at, first)
    assert short.status == crawls.PARTIAL
    assert short.reason == ("419 unique items is under 0.9 x the 466 of the last complete run #1 (2022-06-08): "
                            "a partial crawl, not deletions")


def test_an_empty_crawl_is_empty_whatever_came_before():
    assert crawls.judge(0, day("2022-06-08"), []).status == crawls.EMPTY
    v = crawls.judge(0, day("2022-06-15"), [crawls.PastRun(1, day("2022-06-08"), 260, crawls.COMPLETE)])
    assert (v.status, v.reason) == (crawls.EMPTY, "0 datasets: an empty crawl is not the portal's catalog")


def test_empty_runs_never_confirm_a_new_size():
    """A month of empty answers, then a short crawl: the short crawl starts its own streak, it is not the new
    size (an API answering nothing is broken, not small)."""
    t0 = day("2022-06-08")
    earlier = [crawls.PastRun(1, t0, 466, crawls.COMPLETE)]
    earlier += [crawls.PastRun(i + 2, t0 + timedelta(days=7 * (i + 1)), 0, crawls.EMPTY) for i in range(5)]
    assert crawls.judge(95, t0 + timedelta(days=42), earlier).status == crawls.PARTIAL


def test_a_confirmed_shrink_must_be_the_largest_crawl_since():
    """07-20 (294) is the new size after four weeks of partial crawls; a 95-item crawl that late is not."""
    runs = [crawls.PastRun(i, day(d), CHICAGO_UNIQUE[d], CHICAGO_STATUS[d]) for i, d in enumerate(CHICAGO_DATES[:6])]
    assert crawls.judge(294, day("2022-07-20"), runs).status == crawls.COMPLETE
    assert crawls.judge(294, day("2022-07-20"), runs).note.startswith("shrink confirmed")
    assert crawls.judge(95, day("2022-07-20"), runs).status == crawls.PARTIAL  # < 0.9 x 256 (06-22), the largest since


def test_removals_need_two_complete_runs_in_a_row_lacking_a_dataset():
    assert crawls.confirmed_removals([{"a", "b"}, {"a"}]) is None  # two complete runs: not known yet
    assert crawls.confirmed_removals([{"a", "b", "c"}, {"a"}, {"a", "b"}]) == {"c"}  # b came back
    assert crawls.confirmed_removals([{"x"}, {"a", "b", "c"}, {"a"}, {"a", "b"}]) == {"c"}  # the last three count


def test_score_flag():
    assert crawls.score_flag(["ok", "ok"]) is None
    assert crawls.score_flag(["ok", "suspect"]) == "partial"
    assert crawls.score_flag(["suspect", "empty"]) == "empty"
