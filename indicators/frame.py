"""Shared, vectorised derivations over a catalog DataFrame, computed once per (catalog, as_of).

Every indicator reads the same derived columns (which rows are data assets, the declared period in days,
the HDX freshness state, open licence, format stars, topic matches), so `derive()` computes each lazily
once and caches the result for the catalog object it was asked about (weakly: nothing is kept alive).

Asset types (decided here, documented on the Methodology page):

- DATA_TYPES ("dataset", "file", "map"): assets that carry data a resident can download - counted in the
  portal size, openness, licence, inventory, sharing and freshness indicators. Derived views
  (`is_derived`), assets hidden from the catalog and non-public entries (DCAT-US accessLevel) are left out,
  as Open Data Portal Watch keeps base datasets only. Links ("href"/"link"), charts, filters, data lenses,
  calendars and stories are not data assets (their data lives elsewhere or is a view of another asset).
- TABULAR_TYPES ("dataset"): assets with columns - data-dictionary coverage and disaggregation.
- PERFORMANCE_TYPES ("story", "measure"): Socrata Perspectives stories and Performance measures (PA3).
"""
from __future__ import annotations

import json
import re
import weakref
from datetime import datetime
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from connectors.base import RECORD_FIELDS, DATETIME_FIELDS
from indicators.base import Score

DATA_DIR = Path(__file__).parent / "data"

DATA_TYPES = ("dataset", "file", "map")
TABULAR_TYPES = ("dataset",)
PERFORMANCE_TYPES = ("story", "measure")

DAY = pd.Timedelta(days=1)
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
_EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_URL = r"^https?://[^\s/$.?#][^\s]*$"
_TAGS = re.compile(r"<[^>]+>")


@lru_cache(maxsize=4096)
def period_days(freq: str | None) -> float:
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


def load_json(name: str) -> dict:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def format_tables() -> tuple[dict[str, int], dict[str, str], frozenset[str]]:
    d = load_json("formats.json")
    return d["stars"], d["aliases"], frozenset(d["machine_readable_exclude"])


@lru_cache(maxsize=1)
def licence_tables() -> tuple[dict[str, str | None], frozenset[str], dict[str, str]]:
    """(alias -> registry id, approved ids, lower-cased id -> registry id) from the pinned lists."""
    registry = load_json("opendefinition_licenses_all.json")
    approved = frozenset(k for k, v in registry.items() if v.get("od_conformance") == "approved")
    by_lower = {k.lower(): k for k in registry}
    for k, v in registry.items():
        if v.get("url"):
            by_lower[v["url"].lower().rstrip("/") ] = k
    aliases = {k.lower().rstrip("/"): v for k, v in load_json("licences.json")["aliases"].items()}
    return aliases, approved, by_lower


def licence_registry_id(raw: str | None) -> str | None:
    """A licence id or string -> Open Definition registry id, or None when it names no known licence."""
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return None
    aliases, _approved, by_lower = licence_tables()
    key = str(raw).strip().lower().rstrip("/")
    if key in aliases:
        return aliases[key]
    if key.replace("http://", "https://") in aliases:
        return aliases[key.replace("http://", "https://")]
    return by_lower.get(key) or by_lower.get(key.replace("http://", "https://"))


def format_key(raw: object) -> str:
    _stars, aliases, _ex = format_tables()
    key = str(raw).strip().lower().lstrip(".")
    return aliases.get(key, key)


@lru_cache(maxsize=1)
def vocab() -> dict:
    return load_json("vocab.json")


def word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """One regex matching any of `words` as whole words (longest first, so phrases win)."""
    alts = sorted({w.lower() for w in words}, key=len, reverse=True)
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(w) for w in alts) + r")(?![a-z0-9])")


def match_words(texts: pd.Series, pattern: re.Pattern[str]) -> pd.Series:
    """Sorted, distinct matched words per text as a ', '-joined string ("" = no match), on unique texts."""
    codes, uniques = pd.factorize(texts.fillna(""), sort=False)
    if len(uniques) == 0:
        return pd.Series("", index=texts.index, dtype=object)
    found = pd.Series(uniques, dtype=object).str.findall(pattern)
    joined = found.map(lambda ws: ", ".join(sorted(set(ws)))).to_numpy(dtype=object)
    out = joined[codes] if len(codes) else np.array([], dtype=object)
    return pd.Series(out, index=texts.index, dtype=object)


def tuple_len(s: pd.Series) -> np.ndarray:
    return s.map(lambda t: len(t) if isinstance(t, (tuple, list)) else 0).to_numpy(dtype=float)


def _present(s: pd.Series) -> np.ndarray:
    """Non-missing and, for text, non-blank."""
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        return s.fillna("").astype(str).str.strip().ne("").to_numpy()
    return s.notna().to_numpy()


def ensure_columns(catalog: pd.DataFrame) -> pd.DataFrame:
    """Add any missing contract column (tests build frames by hand; an empty catalog has every column)."""
    missing = [c for c in (*RECORD_FIELDS, "first_seen", "data_modified_seen", "city_key") if c not in catalog]
    if not missing:
        return catalog
    out = catalog.copy()
    for c in missing:
        if c in DATETIME_FIELDS or c == "first_seen":
            out[c] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
        elif c == "data_modified_seen":
            out[c] = pd.Series([()] * len(out), index=out.index, dtype=object)
        else:
            out[c] = pd.Series([None] * len(out), index=out.index, dtype=object)
    return out


def utc(ts: datetime | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class Derived:
    """Lazily computed, cached per-row arrays for one catalog at one `as_of`."""

    def __init__(self, catalog: pd.DataFrame, as_of: datetime) -> None:
        self.cat = ensure_columns(catalog)
        self.as_of = utc(as_of)
        self.attrs = dict(getattr(catalog, "attrs", {}) or {})
        self.n = len(self.cat)

    # --- identity and asset classes -------------------------------------------------------------
    @cached_property
    def ids(self) -> np.ndarray:
        return self.cat["source_id"].astype(str).to_numpy(dtype=object)

    @cached_property
    def asset_type(self) -> pd.Series:
        return self.cat["asset_type"].fillna("").astype(str).str.lower()

    @cached_property
    def listed(self) -> np.ndarray:
        """Public and visible: not hidden from the catalog, not derived, accessLevel public or unknown."""
        hidden = self.cat["hidden_from_catalog"].fillna(False).astype(bool).to_numpy()
        derived = self.cat["is_derived"].fillna(False).astype(bool).to_numpy()
        access = self.cat["access_level"].fillna("public").astype(str).str.lower().str.strip()
        return ~hidden & ~derived & access.eq("public").to_numpy()

    @cached_property
    def data(self) -> np.ndarray:
        return self.listed & self.asset_type.isin(DATA_TYPES).to_numpy()

    @cached_property
    def tabular(self) -> np.ndarray:
        return self.listed & self.asset_type.isin(TABULAR_TYPES).to_numpy()

    @cached_property
    def performance_type(self) -> np.ndarray:
        return self.asset_type.isin(PERFORMANCE_TYPES).to_numpy() & ~self.cat["hidden_from_catalog"].fillna(
            False).astype(bool).to_numpy()

    # --- presence of fields ---------------------------------------------------------------------
    def present(self, column: str) -> np.ndarray:
        return _present(self.cat[column])

    @cached_property
    def n_keywords(self) -> np.ndarray:
        return tuple_len(self.cat["keywords"])

    @cached_property
    def email_valid(self) -> np.ndarray:
        return self.cat["contact_email"].fillna("").astype(str).str.strip().str.match(_EMAIL).to_numpy()

    @cached_property
    def has_contact(self) -> np.ndarray:
        return self.email_valid | self.present("contact_name")

    # --- time -----------------------------------------------------------------------------------
    @cached_property
    def period(self) -> np.ndarray:
        """Declared period in days (NaN none, 0 continuous, inf static)."""
        freq = self.cat["declared_frequency"]
        codes, uniques = pd.factorize(freq, sort=False)
        per = np.array([period_days(u) for u in uniques], dtype=float)  # loop over distinct values only
        out = np.full(self.n, np.nan)
        ok = codes >= 0
        out[ok] = per[codes[ok]]
        return out

    @cached_property
    def age_days(self) -> np.ndarray:
        """Days from the last *data* update to as_of (NaN when unknown)."""
        dm = self.cat["data_modified"]
        if not isinstance(dm.dtype, pd.DatetimeTZDtype):
            dm = pd.to_datetime(dm, utc=True, errors="coerce")
        return ((self.as_of - dm) / DAY).to_numpy(dtype=float, na_value=np.nan)

    @cached_property
    def finite_period(self) -> np.ndarray:
        p = self.period
        return np.isfinite(p) & (p > 0)

    @cached_property
    def freshness(self) -> np.ndarray:
        """HDX state per row for rows with a finite period; "" otherwise; "unknown" without a data date."""
        p = np.where(self.finite_period, self.period, 1.0)
        g1 = np.interp(p, HDX_PERIOD_DAYS, HDX_DUE_GRACE_DAYS)
        g2 = np.interp(p, HDX_PERIOD_DAYS, HDX_OVERDUE_GRACE_DAYS)
        age = self.age_days
        state = np.select(
            [np.isnan(age), age < p, age < p + g1, age < p + g1 + g2],
            ["unknown", FRESH, DUE, OVERDUE],
            default=DELINQUENT,
        ).astype(object)
        state[~self.finite_period] = ""
        return state

    # --- openness -------------------------------------------------------------------------------
    @cached_property
    def licence_id(self) -> np.ndarray:
        """Registry id from `license_id`, else from the raw `license` string."""
        lid = self.cat["license_id"].where(self.cat["license_id"].notna(), self.cat["license"])
        codes, uniques = pd.factorize(lid, sort=False)
        mapped = np.array([licence_registry_id(u) for u in uniques] + [None], dtype=object)
        return mapped[codes]  # code -1 -> the trailing None

    @cached_property
    def licence_open(self) -> np.ndarray:
        _aliases, approved, _ = licence_tables()
        return pd.Series(self.licence_id, dtype=object).isin(approved).to_numpy()

    @cached_property
    def stars_by_format(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: best format stars (-1 = no format), any machine-readable, any open machine-readable."""
        stars_table, _aliases, exclude = format_tables()
        fmts = self.cat["formats"].reset_index(drop=True).explode()  # index = row position
        fmts = fmts[fmts.notna()]
        pos = np.full(self.n, -1.0)
        mr = np.zeros(self.n, dtype=bool)
        omr = np.zeros(self.n, dtype=bool)
        if len(fmts):
            codes, uniques = pd.factorize(fmts, sort=False)
            keys = [format_key(u) for u in uniques]  # distinct format names only
            s = np.array([stars_table.get(k, 1) for k in keys], dtype=float)[codes]  # unknown -> 1 (ckanext-qa)
            is_img = np.array([k in exclude for k in keys], dtype=bool)[codes]
            row = fmts.index.to_numpy()
            frame = pd.DataFrame({"row": row, "stars": s, "mr": (s >= 2) & ~is_img, "omr": (s >= 3) & ~is_img})
            agg = frame.groupby("row").agg(stars=("stars", "max"), mr=("mr", "any"), omr=("omr", "any"))
            pos[agg.index.to_numpy()] = agg["stars"].to_numpy()
            mr[agg.index.to_numpy()] = agg["mr"].to_numpy()
            omr[agg.index.to_numpy()] = agg["omr"].to_numpy()
        return pos, mr, omr

    @cached_property
    def has_api(self) -> np.ndarray:
        return self.present("api_url")

    @cached_property
    def has_download(self) -> np.ndarray:
        """At least one distribution: a format listed or distribution_count >= 1."""
        dc = self.cat["distribution_count"].to_numpy(dtype=float, na_value=np.nan)
        return (tuple_len(self.cat["formats"]) > 0) | (np.nan_to_num(dc) >= 1)

    # --- text -----------------------------------------------------------------------------------
    @cached_property
    def topic_text(self) -> pd.Series:
        """Title, tags and category, lower-cased, for explainable keyword matching."""
        kw = self.cat["keywords"].map(lambda t: " ; ".join(t) if isinstance(t, (tuple, list)) else "")
        text = (self.cat["title"].fillna("").astype(str) + " ; " + kw + " ; "
                + self.cat["theme"].fillna("").astype(str))
        return text.str.lower()

    def matches(self, words: Iterable[str]) -> pd.Series:
        return match_words(self.topic_text, word_pattern(words))

    @cached_property
    def census_matches(self) -> dict[str, pd.Series]:
        return {k: self.matches(ws) for k, ws in vocab()["census"].items()}


_LAST: list = []  # [(weakref to catalog, as_of, Derived)] - a single entry


def derive(catalog: pd.DataFrame, as_of: datetime) -> Derived:
    """The cached `Derived` for this catalog object and as_of (computed once for all indicators)."""
    if _LAST:
        ref, when, d = _LAST[0]
        if ref() is catalog and when == utc(as_of):
            return d
    d = Derived(catalog, as_of)
    _LAST[:] = [(weakref.ref(catalog), d.as_of, d)]
    return d


def clear_cache() -> None:
    _LAST.clear()


# --- building Scores ------------------------------------------------------------------------------

def share_score(
    d: Derived,
    passed: np.ndarray,
    among: np.ndarray,
    reason: str | np.ndarray,
    *,
    empty: float | None = None,
    detail: Mapping[str, float] | None = None,
    matches: Mapping[str, str] | None = None,
) -> Score:
    """value = 100 * passed / among; failing = rows in `among` that do not pass, with their reason."""
    den = float(among.sum())
    num = float((passed & among).sum())
    fail = among & ~passed
    reasons = reason[fail] if isinstance(reason, np.ndarray) else [reason] * int(fail.sum())
    return Score(
        value=(100.0 * num / den) if den else empty,
        numerator=num,
        denominator=den,
        failing=dict(zip(d.ids[fail], reasons)),
        matches=dict(matches or {}),
        detail=dict(detail or {}),
    )


def mean_score(d: Derived, values: np.ndarray, among: np.ndarray, fail_below: float, reason: np.ndarray | str,
               *, detail: Mapping[str, float] | None = None, empty: float | None = None) -> Score:
    """value = 100 * mean(values over `among`) with values in 0..1; failing = rows below `fail_below`."""
    den = float(among.sum())
    num = float(np.nansum(values[among]))
    fail = among & (values < fail_below)
    reasons = reason[fail] if isinstance(reason, np.ndarray) else [reason] * int(fail.sum())
    return Score(
        value=(100.0 * num / den) if den else empty,
        numerator=num,
        denominator=den,
        failing=dict(zip(d.ids[fail], reasons)),
        detail=dict(detail or {}),
    )


def clamp(v: float) -> float:
    return float(min(100.0, max(0.0, v)))
