"""Time travel: `?as_of=YYYY-MM-DD` on any page shows it as it stood at the end of that day (23:59:59 UTC).

"As it stood" means: only runs and scorings dated at or before that moment (their `as_of`), the latest of those
as the city's state, and the "old data" banner judged against that moment instead of today. The end of the day
is what `maturity import --as-of YYYY-MM-DD` dates a snapshot of that day with, so a snapshot is in its own day.

Pure functions of the query text and of the frames storage returns. A page passes its `day` ("YYYY-MM-DD", or
None for today's view) to these and to its cached queries (a past day is cached under its own name), and builds
its links with `href`, so following a link keeps the date. The header's date control (maturity/app.py) sets it.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import pandas as pd

PARAM = "as_of"  # the query parameter
EARLIEST_YEAR = 1990  # a date before any open data portal: the date box is half typed ("0202-…"), not a choice


def parse(text: object) -> str | None:
    """The `as_of` query value as "YYYY-MM-DD" when it is a real date, else None (today's view)."""
    if not isinstance(text, str) or len(text) != 10:
        return None
    try:
        day = pd.Timestamp(text)
    except ValueError:
        return None
    return day.strftime("%Y-%m-%d") if day.year >= EARLIEST_YEAR else None


def end_of_day(day: str | None) -> pd.Timestamp | None:
    """The moment a past view stands at: the end of `day`, 23:59:59 UTC; None for today's view."""
    return None if day is None else pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)


def clock(day: str | None, now: datetime) -> datetime:
    """What "now" is for a page: the end of `day` in a past view (old data is judged against it), else `now`."""
    t = end_of_day(day)
    return now if t is None else t.to_pydatetime().astimezone(UTC)


def href(path: str, day: str | None, params: Mapping[str, object] | None = None) -> str:
    """`path` (which may carry a query) with `params` added and `as_of` set to `day` (dropped for today)."""
    parts = urlsplit(path)
    q = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != PARAM}
    q.update({k: str(v) for k, v in (params or {}).items() if v is not None})
    if day:
        q[PARAM] = day
    return parts.path + ("?" + urlencode(q, safe=",") if q else "")


def until(frame: pd.DataFrame, day: str | None, column: str = "as_of") -> pd.DataFrame:
    """The rows of `frame` dated (`column`) at or before the end of `day`; all rows for today's view."""
    t = end_of_day(day)
    if t is None or frame.empty:
        return frame
    return frame[pd.to_datetime(frame[column], utc=True) <= t]


def latest_scoring(scores: pd.DataFrame) -> pd.DataFrame:
    """Each city's newest scoring among `scores` (storage.scores shape): what `latest_scores` returned then."""
    if scores.empty:
        return scores
    times = pd.to_datetime(scores["as_of"], utc=True)
    newest = times.groupby(scores["city_key"]).transform("max")
    return scores[times == newest]


def scores_at(scores: pd.DataFrame, day: str | None, *, latest: bool = False) -> pd.DataFrame:
    """Score rows of scorings at/before the end of `day` (all for today); with `latest`, each city's newest."""
    kept = until(scores, day)
    return latest_scoring(kept) if latest else kept
