"""Vectorised helpers over per-row arrays: work per distinct value, datetimes as seconds, days as text."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd


def on_distinct(values: pd.Series | np.ndarray, func: Callable[[pd.Series], Iterable[Any]],
                missing: object) -> np.ndarray:
    """func applied to the distinct values only (a list/Series of them -> array-like), spread back to rows.

    Catalog text repeats a lot (column names, licence strings, boilerplate, formats), so string work is
    done once per distinct value; rows with a missing value get `missing`.
    """
    codes, uniques = pd.factorize(pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values,
                                  sort=False)
    out = list(func(pd.Series(np.asarray(uniques, dtype=object), dtype=object))) if len(uniques) else []
    table = np.empty(len(out) + 1, dtype=object)
    table[:len(out)] = out
    table[len(out)] = missing
    return table[codes]  # code -1 (missing) -> the trailing `missing`



def hashable(v: object) -> object:
    if isinstance(v, list):
        return tuple(hashable(x) for x in v)
    return v


def to_seconds(s: pd.Series) -> np.ndarray:
    """UTC datetimes -> float seconds since the epoch (NaN for NaT), whatever the datetime unit."""
    if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(s.dtype):
        vals = s.to_numpy(dtype="datetime64[ns]") if isinstance(s.dtype, pd.DatetimeTZDtype) else \
            s.to_numpy().astype("datetime64[ns]")
        out = vals.astype("int64").astype(float) / 1e9
        out[np.isnat(vals)] = np.nan
        return out
    return to_seconds(pd.to_datetime(s, utc=True, errors="coerce"))


def day_text(secs: np.ndarray, missing: str = "unknown") -> np.ndarray:
    """Float seconds -> "YYYY-MM-DD" strings (for the failing rows a reason names)."""
    out = np.full(len(secs), missing, dtype=object)
    ok = ~np.isnan(secs)
    if ok.any():
        # written once per distinct day: a reason can name a day for 200,000 rows, and they share a few thousand
        days, at = np.unique((secs[ok] * 1e6).astype("int64").astype("datetime64[us]").astype("datetime64[D]"),
                             return_inverse=True)
        out[ok] = np.datetime_as_string(days, unit="D").astype(object)[at.reshape(-1)]
    return out


def by_value(values: np.ndarray, text: Callable[[list[Any]], list[str]]) -> np.ndarray:
    """text(the distinct values, as a list) spread back to the rows, an object array: a reason is written once per
    distinct value, not once for each of 200,000 failing rows that share a few."""
    distinct, at = np.unique(values, return_inverse=True)
    out = np.empty(len(distinct), dtype=object)
    out[:] = text(distinct.tolist())
    return out[at.reshape(-1)]


def count_text(x: np.ndarray) -> np.ndarray:
    """Counts -> their decimal text (NaN as 0), an object array."""
    return by_value(np.nan_to_num(x).astype(int), lambda counts: [str(c) for c in counts])


def utc(ts: datetime | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")

