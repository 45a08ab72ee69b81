"""Declared update frequencies as periods in days, and the HDX freshness states over them."""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

# Period lengths: research/methodologies.md 4.1 (P1M = 30 d, P1Y = 365 d, P3M = 91 d).
DAYS_PER_YEAR = 365.0
DAYS_PER_MONTH = 365.0 / 12
# Named declared frequencies: no promised period (NaN), real-time (0) or static (inf, HDX "never").
NAMED_PERIODS = {
    "irregular": np.nan,
    "as needed": np.nan,
    "continuous": 0.0,
    "historical": np.inf,
    "never": np.inf,
}
# HDX data freshness (OCHA-DAP/hdx-data-freshness, tests/hdx/freshness/test_aging.py): a dataset becomes
# "due" at age >= P, "overdue" at P + g1, "delinquent" at P + g1 + g2. Grace periods by period in days,
# linearly interpolated between the HDX table rows and clamped at its ends.
HDX_PERIOD_DAYS = np.array([1.0, 7.0, 14.0, 30.0, 90.0, 180.0, 365.0])
HDX_DUE_GRACE_DAYS = np.array([1.0, 7.0, 7.0, 15.0, 30.0, 30.0, 60.0])
HDX_OVERDUE_GRACE_DAYS = np.array([1.0, 7.0, 7.0, 15.0, 30.0, 30.0, 30.0])
FRESH, DUE, OVERDUE, DELINQUENT = "fresh", "due", "overdue", "delinquent"

_ISO_PERIOD = re.compile(
    r"^(?:R\d*/)?P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)

@lru_cache(maxsize=4096)
def period_days(freq: str | float | None) -> float:
    """Declared frequency -> period in days: NaN = no promise, 0 = continuous, inf = static."""
    if freq is None or (isinstance(freq, float) and np.isnan(freq)):
        return np.nan
    text = str(freq).strip()
    named = text.lower()
    if named in NAMED_PERIODS:
        return NAMED_PERIODS[named]
    m = _ISO_PERIOD.match(text.upper())
    if not m or not any(m.groupdict().values()):
        return np.nan
    g = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    days = (g["y"] * DAYS_PER_YEAR + g["mo"] * DAYS_PER_MONTH + g["w"] * 7 + g["d"]
            + g["h"] / 24 + g["mi"] / 1440 + g["s"] / 86400)
    return 0.0 if days < 1 / 86400 * 2 else days


_UNITS = {"Y": ("year", "yearly"), "M": ("month", "monthly"), "W": ("week", "weekly"), "D": ("day", "daily")}
_TIME_UNITS = {"H": ("hour", "hourly"), "M": ("minute", "every minute"), "S": ("second", "every second")}
_ONE_UNIT = re.compile(r"^(?:R\d*/)?P(?:(\d+)([YMWD]))?(?:T(\d+)([HMS]))?$")


def cadence(value: object) -> str | None:
    """A declared update frequency in words: "P1D" → "daily", "P3M" → "every 3 months", "PT1H" → "hourly".

    ISO 8601 durations of one unit (with or without the DCAT "R/" repeat prefix) become words; the named values
    the connectors normalize to ("as needed", "historical" …) and anything else are returned as they are.
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    m = _ONE_UNIT.match(text.upper())
    if not m or not (m.group(1) or m.group(3)) or (m.group(1) and m.group(3)):
        return text.replace("_", " ") or None
    n, unit = (m.group(1), _UNITS[m.group(2)]) if m.group(1) else (m.group(3), _TIME_UNITS[m.group(4)])
    count = int(n)
    if count == 1:
        return unit[1]
    return f"every {count} {unit[0]}s"
