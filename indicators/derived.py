"""`Derived`: the shared, vectorised per-row derivations over a catalog, computed once per (catalog, as_of).

Every indicator reads the same derived columns (which rows are data assets, the declared period in days,
the HDX freshness state, open licence, format stars). `derive()` computes each lazily; inside
`compute_all` one `Derived` is shared by all indicators, and string work runs once per distinct value.

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

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from connectors import vocab as licence_vocab
from connectors.base import DATETIME_FIELDS, RECORD_FIELDS
from indicators.arrays import hashable, on_distinct, to_seconds, utc
from indicators.base import CityCatalog, as_catalog
from indicators.periods import (
    DELINQUENT,
    DUE,
    FRESH,
    HDX_DUE_GRACE_DAYS,
    HDX_OVERDUE_GRACE_DAYS,
    HDX_PERIOD_DAYS,
    OVERDUE,
    period_days,
)
from indicators.tables import format_key, format_tables

DATA_TYPES = ("dataset", "file", "map")
TABULAR_TYPES = ("dataset",)
PERFORMANCE_TYPES = ("story", "measure")

# Distribution formats that are query APIs, not files: GSA's Project Open Data dashboard counts API
# distributions (API_total); ODIN's download options list "API" beside bulk download. DCAT-US portals
# (ArcGIS Hub) expose their API this way rather than through a separate api_url.
API_FORMATS = frozenset({"api", "esri rest", "arcgis geoservices rest api", "wms", "wfs", "wcs", "sparql",
                         "odata", "soda"})
_EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_URL = r"^https?://[^\s/$.?#][^\s]*$"


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



def factorize_shared(values: np.ndarray) -> tuple[np.ndarray, Any]:
    """`pd.factorize(values)` (codes by first appearance, -1 for missing) of an object array whose equal values
    are mostly one shared object, as storage builds the catalog: the objects are told apart by identity first
    and only the distinct ones hashed. A tuple's hash is not cached, and a schema of 20 (name, type) pairs
    hashed on each of 300,000 rows was most of a factorize."""
    objects = np.fromiter(map(id, values), dtype=np.int64, count=len(values))
    _, first, inverse = np.unique(objects, return_index=True, return_inverse=True)
    order = np.argsort(first)  # the distinct objects in the order of their first row, as factorize numbers them
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    codes, uniques = pd.factorize(values[first[order]], sort=False)  # equal objects that are not one share a code
    return codes[rank[inverse.reshape(-1)]], uniques


class Derived:
    """Lazily computed, cached per-row arrays for one catalog at one `as_of`."""

    def __init__(self, catalog: CityCatalog | pd.DataFrame, as_of: datetime) -> None:
        catalog = as_catalog(catalog)
        self.cat = ensure_columns(catalog.frame)
        self.as_of = utc(as_of)
        self.facts = catalog.facts
        self.n = len(self.cat)

    # --- identity and asset classes -------------------------------------------------------------
    @cached_property
    def ids(self) -> np.ndarray:
        return self.cat["source_id"].to_numpy(dtype=object, na_value="")

    def distinct(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(codes, distinct values) of a column, cached: string work runs once per distinct value."""
        cache = self.__dict__.setdefault("_distinct", {})
        if column not in cache:
            values = self.cat[column]
            try:
                if values.dtype == object:  # tuples (keywords, formats, schemas): hashed again on every row
                    codes, uniques = factorize_shared(values.to_numpy())
                else:
                    codes, uniques = pd.factorize(values, sort=False)
            except TypeError:  # lists (e.g. after a JSON round trip) are unhashable: compare them as tuples
                codes, uniques = pd.factorize(values.map(hashable), sort=False)
            cache[column] = (codes, np.asarray(uniques, dtype=object))
        return cache[column]

    def per_distinct(self, column: str, func: Callable[[pd.Series], Iterable[Any]], missing: object) -> np.ndarray:
        """func(Series of the distinct values) spread back to rows; `missing` where the value is missing."""
        codes, uniques = self.distinct(column)
        table = np.empty(len(uniques) + 1, dtype=object)
        if len(uniques):
            table[:len(uniques)] = list(func(pd.Series(uniques, dtype=object)))
        table[len(uniques)] = missing
        return table[codes]

    @cached_property
    def title_norm(self) -> np.ndarray:
        """Title lower-cased with whitespace collapsed ("" when missing), per distinct title."""
        return self.per_distinct("title", lambda u: [" ".join(str(x).lower().split()) for x in u], "")

    @cached_property
    def asset_type(self) -> pd.Series:
        return pd.Series(self.per_distinct("asset_type", lambda u: u.astype(str).str.lower(), ""), dtype=object)

    @cached_property
    def listed(self) -> np.ndarray:
        """Public and visible: not hidden from the catalog, not derived, accessLevel public or unknown."""
        hidden = self.cat["hidden_from_catalog"].to_numpy(dtype=object) == True  # noqa: E712 (None -> False)
        derived = self.cat["is_derived"].to_numpy(dtype=object) == True  # noqa: E712
        access = self.per_distinct("access_level", lambda u: u.astype(str).str.lower().str.strip(), "public")
        return ~hidden & ~derived & (access == "public")

    @cached_property
    def data(self) -> np.ndarray:
        return self.listed & self.asset_type.isin(DATA_TYPES).to_numpy()

    @cached_property
    def tabular(self) -> np.ndarray:
        return self.listed & self.asset_type.isin(TABULAR_TYPES).to_numpy()

    @cached_property
    def performance_type(self) -> np.ndarray:
        hidden = self.cat["hidden_from_catalog"].to_numpy(dtype=object) == True  # noqa: E712
        return self.asset_type.isin(PERFORMANCE_TYPES).to_numpy() & ~hidden

    # --- presence of fields ---------------------------------------------------------------------
    def present(self, column: str) -> np.ndarray:
        """Not missing and not an empty string (the record contract writes None, never "", for missing)."""
        cache = self.__dict__.setdefault("_present", {})
        if column not in cache:
            if pd.api.types.is_numeric_dtype(self.cat[column].dtype) or isinstance(self.cat[column].dtype,
                                                                                  pd.DatetimeTZDtype):
                cache[column] = self.cat[column].notna().to_numpy()
            elif column in self.__dict__.get("_distinct", {}):
                codes, uniques = self.distinct(column)
                ok = np.append(np.array([u != "" for u in uniques], dtype=bool), False)
                cache[column] = ok[codes]
            else:  # compared row by row, not factorized for this: a URL or an e-mail is often one per row
                values = self.cat[column]
                cache[column] = values.notna().to_numpy() & (values != "").to_numpy(dtype=bool)
        return cache[column]

    def tuple_len(self, column: str) -> np.ndarray:
        return self.per_distinct(column, lambda u: u.map(lambda t: len(t) if isinstance(t, (tuple, list)) else 0),
                                 0).astype(float)

    @cached_property
    def n_keywords(self) -> np.ndarray:
        return self.tuple_len("keywords")

    @cached_property
    def email_valid(self) -> np.ndarray:
        return self.per_distinct("contact_email", lambda u: u.astype(str).str.strip().str.match(_EMAIL),
                                 False).astype(bool)

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

    def seconds(self, column: str) -> np.ndarray:
        """A datetime column as float seconds since the epoch (NaN = unknown), cached per column."""
        cache = self.__dict__.setdefault("_seconds", {})
        if column not in cache:
            s = self.cat[column]
            if not isinstance(s.dtype, pd.DatetimeTZDtype):
                s = pd.to_datetime(s, utc=True, errors="coerce")
            cache[column] = to_seconds(s)
        return cache[column]

    @cached_property
    def as_of_s(self) -> float:
        return self.as_of.timestamp()

    @cached_property
    def age_days(self) -> np.ndarray:
        """Days from the last *data* update to as_of (NaN when unknown)."""
        return (self.as_of_s - self.seconds("data_modified")) / 86400.0

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
        """The record's `license_id` (normalized once, by connectors.vocab.license_id); None where it names no
        licence ("notspecified": "See Terms of Use"). A record stored without an id (an older normalization)
        gets the same function's reading of its `license` text, so there is one licence vocabulary."""
        by_id = self.per_distinct("license_id", lambda u: [x if licence_vocab.names_licence(x) else None for x in u],
                                  None)
        by_text = self.per_distinct("license", lambda u: [licence_vocab.license_id(x) for x in u], None)
        by_text = np.array([x if licence_vocab.names_licence(x) else None for x in by_text], dtype=object)
        has_id = pd.notna(self.cat["license_id"]).to_numpy()
        return np.where(has_id, by_id, by_text)

    @cached_property
    def licence_open(self) -> np.ndarray:
        """Open per connectors.vocab.is_open_license (Open Definition approved, or an open licence family)."""
        return on_distinct(self.licence_id, lambda u: [licence_vocab.is_open_license(x) for x in u], False).astype(bool)

    @cached_property
    def stars_by_format(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: best format stars (-1 = no format), any machine-readable, any open machine-readable.

        Computed per distinct format tuple (portals list the same few combinations over and over)."""
        stars_table, exclude = format_tables()
        codes, uniques = self.distinct("formats")
        k = len(uniques)
        best = np.full(k + 1, -1.0)
        mr = np.zeros(k + 1, dtype=bool)
        omr = np.zeros(k + 1, dtype=bool)
        known = np.zeros(k + 1, dtype=bool)
        for i, fmts in enumerate(uniques):  # distinct tuples only
            for f in fmts if isinstance(fmts, (tuple, list)) else ():
                if f is None:
                    continue
                key = format_key(f)
                stars = stars_table.get(key, 1)  # unknown format -> 1 star (ckanext-qa)
                best[i] = max(best[i], stars)
                mr[i] |= stars >= 2 and key not in exclude
                omr[i] |= stars >= 3 and key not in exclude
                known[i] |= key in stars_table
        self.__dict__["format_known"] = known[codes]
        return best[codes], mr[codes], omr[codes]

    @cached_property
    def format_known(self) -> np.ndarray:
        """Per row: at least one format found in the pinned format table (set by stars_by_format)."""
        _ = self.stars_by_format  # computes and stores format_known as a side effect
        return self.__dict__["format_known"]

    @cached_property
    def has_api(self) -> np.ndarray:
        """An API endpoint: api_url, or a distribution whose format is a query API (API_FORMATS)."""
        codes, uniques = self.distinct("formats")
        api_u = np.append(np.array([any(format_key(f) in API_FORMATS for f in (t or ()) if f is not None)
                                    if isinstance(t, (tuple, list)) else False for t in uniques], dtype=bool), False)
        return self.present("api_url") | api_u[codes]

    @cached_property
    def has_download(self) -> np.ndarray:
        """At least one distribution: a format listed or distribution_count >= 1."""
        dc = self.cat["distribution_count"].to_numpy(dtype=float, na_value=np.nan)
        return (self.tuple_len("formats") > 0) | (np.nan_to_num(dc) >= 1)


# Inside compute_all: the block's one shared entry [(catalog, as_of, Derived)]; None outside a block. A context
# variable, not a module-level list: threads score and draw at once (scheduler threads, the dashboard's request
# threads), and a shared list let one thread's block replace or clear another's (an IndexError between a check
# and a read, and every indicator recomputing its arrays).
_SHARED: ContextVar[list | None] = ContextVar("shared_derivations", default=None)


def derive(catalog: CityCatalog | pd.DataFrame, as_of: datetime) -> Derived:
    """The derived arrays for this catalog at as_of (a bare table: a catalog with no known portal facts).

    Inside `shared_derivations()` (compute_all) they are computed once and shared by every indicator of that
    thread's block; a standalone indicator call computes its own, so nothing stale outlives a call.
    """
    when = utc(as_of)
    shared = _SHARED.get()
    if shared:
        cat, at, d = shared[0]
        if cat is catalog and at == when:
            return d
    d = Derived(catalog, when)
    if shared is not None:
        shared[:] = [(catalog, when, d)]
    return d


@contextmanager
def shared_derivations() -> Iterator[None]:
    """Share one `Derived` per (catalog, as_of) between the indicators called inside the block (this thread's)."""
    token = _SHARED.set([])
    try:
        yield
    finally:
        _SHARED.reset(token)

