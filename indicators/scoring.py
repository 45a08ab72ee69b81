"""Score builders shared by the indicators: a share or a mean over rows, with each failing row's reason."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from indicators.base import Score
from indicators.derived import Derived


def evidence(ids: np.ndarray, reasons: np.ndarray | list[str]) -> dict[str, str]:
    """{source_id: reason} (lists zip faster than object arrays)."""
    return dict(zip(ids.tolist(), reasons.tolist() if isinstance(reasons, np.ndarray) else reasons, strict=True))


# Why a row fails: a constant, a per-row array, or a function of the failing mask.
Reason = str | np.ndarray | Callable[[np.ndarray], np.ndarray]


def _reasons(reason: Reason, fail: np.ndarray) -> np.ndarray | list[str]:
    """A constant, a per-row array, or a function of the failing mask (built for failing rows only)."""
    if callable(reason):
        return reason(fail)
    if isinstance(reason, np.ndarray):
        return reason[fail]
    return [reason] * int(fail.sum())


def share_score(
    d: Derived,
    passed: np.ndarray,
    among: np.ndarray,
    reason: Reason,
    *,
    empty: float | None = None,
    detail: Mapping[str, float] | None = None,
    matches: Mapping[str, str] | None = None,
) -> Score:
    """value = 100 * passed / among; failing = rows in `among` that do not pass, with their reason."""
    den = float(among.sum())
    num = float((passed & among).sum())
    return _score(d, num, den, among & ~passed, reason, empty, matches, detail)


def mean_score(d: Derived, values: np.ndarray, among: np.ndarray, fail_below: float, reason: Reason,
               *, detail: Mapping[str, float] | None = None, empty: float | None = None) -> Score:
    """value = 100 * mean(values over `among`) with values in 0..1; failing = rows below `fail_below`."""
    den = float(among.sum())
    num = float(np.nansum(values[among]))
    return _score(d, num, den, among & (values < fail_below), reason, empty, None, detail)


def _score(d: Derived, num: float, den: float, fail: np.ndarray, reason: Reason, empty: float | None,
           matches: Mapping[str, str] | None, detail: Mapping[str, float] | None) -> Score:
    """value = 100 * num / den (`empty` when nothing is counted); failing = the `fail` rows with their reasons."""
    return Score(value=(100.0 * num / den) if den else empty, numerator=num, denominator=den,
                 failing=evidence(d.ids[fail], _reasons(reason, fail)), matches=dict(matches or {}),
                 detail=dict(detail or {}))


def reasons_from_flags(flags: dict[str, np.ndarray], prefix: str, n: int) -> np.ndarray:
    """Per row "prefix a; b" naming the flagged items: one string per combination that occurs (not n
    concatenations, nor all 2**k combinations: with ten flags that table cost ~30 ms a call whatever n)."""
    names = list(flags)
    mask = np.zeros(n, dtype=np.int64)
    for bit, name in enumerate(names):
        mask |= np.asarray(flags[name], dtype=bool).astype(np.int64) << bit
    codes, at = np.unique(mask, return_inverse=True)
    table = np.array([prefix + "; ".join(nm for b, nm in enumerate(names) if code >> b & 1)
                      for code in codes.tolist()], dtype=object)
    return table[at.reshape(-1)]


def clamp(v: float) -> float:
    return float(min(100.0, max(0.0, v)))
