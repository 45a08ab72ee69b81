"""The one CSV writer: `maturity datasets/scores --format csv`, the dashboard's download and the exports.

Portal text is untrusted. A spreadsheet opening a CSV runs a cell that starts with `=`, `+`, `-` or `@`
(and, in some, a tab or carriage return) as a formula, so a dataset titled `=HYPERLINK("http://evil", "x")`
becomes a live link (OWASP "CSV Injection"). Every text cell that starts so gets a leading `'`, which
spreadsheets show as text; numbers stay numbers (a negative count is not text).

Cells: missing (None, NaN, NaT) is empty; tuples and lists of plain values are joined by "; " (keywords,
formats); nested values (columns as (name, type) pairs, dicts) are JSON; times are ISO 8601 UTC
(`2022-06-08T00:00:00Z`).
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LIST_SEPARATOR = "; "
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def formula_guard(value: Any) -> Any:
    """Text a spreadsheet would evaluate gets a leading ' so it stays text; anything else is returned as is."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def iso_utc(value: Any) -> str | None:
    """A datetime (naive = UTC) or Timestamp as ISO 8601 UTC text; None when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime(TIME_FORMAT)


def cell(value: Any) -> Any:
    """One CSV cell before the guard (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        if all(isinstance(x, (str, int, float)) for x in value):
            return LIST_SEPARATOR.join(map(str, value))
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    if isinstance(value, dict):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    if isinstance(value, (datetime, pd.Timestamp)):
        return iso_utc(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def csv_frame(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The frame as it is written: every cell made a CSV cell and guarded (columns reordered when given).

    Column-wise where the dtype allows (the all-cities dataset download is ~10k rows): datetime columns are
    formatted at once, numeric columns pass through, object columns are mapped cell by cell.
    """
    out = frame.reindex(columns=list(columns)) if columns is not None else frame.copy()
    for name in out.columns:
        s = out[name]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            utc = s.dt.tz_convert("UTC") if isinstance(s.dtype, pd.DatetimeTZDtype) else s
            out[name] = utc.dt.strftime(TIME_FORMAT).astype(object).where(s.notna(), None)
        elif pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        else:
            out[name] = s.astype(object).map(cell).map(formula_guard)
    return out


def write_csv(frame: pd.DataFrame, target: str | Path | IO[str], columns: Sequence[str] | None = None) -> None:
    """Write `frame` as guarded CSV (UTF-8, header row, no index) to a path or an open text stream."""
    data = csv_frame(frame, columns)
    if isinstance(target, (str, Path)):
        data.to_csv(target, index=False, encoding="utf-8")
    else:
        data.to_csv(target, index=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, pd.Timestamp)):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)
