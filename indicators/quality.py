"""Data Management: DM4 improving data quality - cadence, freshness, adherence, conformance, duplicates, removals."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from indicators.base import Score
from indicators.frame import (
    DAY, DELINQUENT, DUE, FRESH, OVERDUE, _EMAIL, _URL, derive, mean_score, share_score, utc,
)

# Observation resolution of our own history when attrs carry no run dates: weekly, the Open Data Portal
# Watch snapshot cadence. A change faster than our harvests cannot be seen more than once per harvest.
DEFAULT_HARVEST_INTERVAL_DAYS = 7.0
# Plausible dates: not before the Unix epoch, not later than as_of plus one day of clock skew
# (Portal Watch CoDa checks that dates parse; we also reject impossible ones).
EARLIEST_VALID_DATE = pd.Timestamp("1970-01-01", tz="UTC")
DATE_SKEW = pd.Timedelta(days=1)


def _fmt_days(x: np.ndarray) -> np.ndarray:
    return np.char.mod("%d", np.nan_to_num(x).astype(int))


def _seconds(s: pd.Series) -> np.ndarray:
    """UTC datetimes -> float seconds since the epoch (NaN for NaT), independent of the datetime unit."""
    return ((s - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)


def _dates(s: pd.Series) -> pd.Series:
    return s if isinstance(s.dtype, pd.DatetimeTZDtype) else pd.to_datetime(s, utc=True, errors="coerce")


def cadence_declared(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM4: declared-cadence coverage - share of public data assets that state how often they are updated.

    Formula: 100 * (data assets with a normalised declared_frequency: an ISO-8601 period or a named value
    such as irregular / as needed / historical / continuous) / data assets; detail splits periods and named
    values. Source: Portal Watch ExPr (accrualPeriodicity); udata update_frequency. Empty: None.
    """
    d = derive(catalog, as_of)
    declared = d.present("declared_frequency")
    detail = {"with_period": float((d.finite_period & d.data).sum()),
              "named_only": float((declared & ~d.finite_period & d.data).sum())}
    return share_score(d, declared, d.data, "no declared update frequency", detail=detail)


def up_to_date(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM4: up-to-date share - HDX freshness states from the declared period and the last *data* update.

    Formula: age = as_of - data_modified; fresh if age < P, due if < P + g1, overdue if < P + g1 + g2, else
    delinquent (no data date: unknown); value = 100 * (fresh + due) / data assets with a finite period P.
    g1, g2 from the HDX table (1/1 daily, 7/7 weekly, 15/15 monthly, 30/30 quarterly and half-yearly, 60/30
    yearly; interpolated). Continuous, static (historical / never) and irregular assets are counted in detail,
    not as fresh. Source: OCHA-DAP/hdx-data-freshness. Empty: None (also when no asset declares a finite period).
    """
    d = derive(catalog, as_of)
    st = d.freshness
    among = d.data & d.finite_period
    ok = (st == FRESH) | (st == DUE)
    p = d.period
    detail = {s: float(((st == s) & among).sum()) for s in (FRESH, DUE, OVERDUE, DELINQUENT, "unknown")}
    detail.update({
        "continuous": float((d.data & (p == 0)).sum()),
        "static": float((d.data & np.isinf(p)).sum()),
        "no_period": float((d.data & np.isnan(p)).sum()),
    })
    when = d.cat["data_modified"].dt.strftime("%Y-%m-%d").fillna("unknown").to_numpy(dtype=object)
    freq = d.cat["declared_frequency"].fillna("").astype(str).to_numpy(dtype=object)
    reason = (st.astype(object) + ": last data update " + when + ", declared " + freq
              + " (age " + _fmt_days(d.age_days).astype(object) + " d)")
    return share_score(d, ok, among, reason.astype(object), detail=detail)


def _harvest_interval(d) -> float:
    portal = d.attrs.get("portal") or {}
    runs = portal.get("runs") or []
    stamps = []
    for r in runs:
        if isinstance(r, dict):
            if r.get("status", "ok") not in ("ok", "suspect"):
                continue
            r = r.get("as_of") or r.get("started_at")
        if r is not None:
            stamps.append(r)
    ts = pd.to_datetime(pd.Series(stamps, dtype=object), utc=True, errors="coerce").dropna().sort_values().unique()
    if len(ts) < 2:
        return DEFAULT_HARVEST_INTERVAL_DAYS
    # tz-aware → UTC nanoseconds (pandas 3 refuses astype from tz-aware to naive)
    gaps = np.diff(pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns").asi8) / 86400e9
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else DEFAULT_HARVEST_INTERVAL_DAYS


def cadence_adherence(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM4: cadence adherence over our history - observed data updates against what the declared period promises.

    Formula: per data asset with a finite period P: window = (max(history_start, first_seen), as_of];
    H = median interval between harvest runs (attrs["portal"]["runs"], else 7 d); expected
    E = floor(window / max(P, H)) (we cannot see more than one change per harvest); observed O = distinct
    data_modified values seen in stored history inside the window; adherence = min(O / E, 1) for E >= 1;
    value = 100 * mean adherence. Source: new (research 4.1 M9), built on Portal Watch change tracking.
    Empty: None (also without history or with no asset expecting an update).
    """
    d = derive(catalog, as_of)
    portal = d.attrs.get("portal") or {}
    hs = portal.get("history_start") or d.attrs.get("history_start")
    fs = _dates(d.cat["first_seen"])
    if hs is None:
        hs = fs.min() if fs.notna().any() else None
    if hs is None or pd.isna(hs):
        return Score(value=None, numerator=0.0, denominator=0.0, detail={"evaluable": 0.0})
    hs = utc(hs)
    start = fs.where(fs > hs, hs).fillna(hs)
    window = ((d.as_of - start) / DAY).to_numpy(dtype=float, na_value=np.nan)
    h = _harvest_interval(d)
    p = d.period
    step = np.maximum(np.where(d.finite_period, p, np.inf), h)
    expected = np.floor(np.nan_to_num(window / step, nan=0.0, posinf=0.0))
    among = d.data & d.finite_period & (expected >= 1)
    # observed: explode the history tuples (vectorised), keep values inside each row's window
    seen = d.cat["data_modified_seen"].reset_index(drop=True).explode()
    seen = seen[seen.notna()]
    observed = np.zeros(d.n)
    if len(seen):
        vals = _seconds(pd.to_datetime(pd.Series(seen.to_numpy(), dtype=object), utc=True, errors="coerce"))
        rows = seen.index.to_numpy()
        start_s = _seconds(start)[rows]
        inside = (vals > start_s) & (vals <= d.as_of.timestamp())  # NaN compares False
        observed = np.bincount(rows[inside], minlength=d.n).astype(float)
    adherence = np.where(expected > 0, np.minimum(observed / np.where(expected > 0, expected, 1.0), 1.0), 0.0)
    freq = d.cat["declared_frequency"].fillna("").astype(str).to_numpy(dtype=object)
    reason = (_fmt_days(observed).astype(object) + " data update(s) seen in " + _fmt_days(window).astype(object)
              + " d of history; " + freq + " promises " + _fmt_days(expected).astype(object))
    score = mean_score(d, adherence, among, 1.0, reason.astype(object),
                       detail={"evaluable": float(among.sum()), "harvest_interval_days": h,
                               "observed_updates": float(observed[among].sum()),
                               "expected_updates": float(expected[among].sum())})
    return score


# Toronto DQS freshness: an asset loses half its score per full period behind (0 after two).
PERIODS_BEHIND_PENALTY = 0.5


def days_behind(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM4: days behind schedule, by department (the producers' to-do list).

    Formula: per data asset with a finite period P: days_behind = max(0, age - P), periods_behind =
    floor(age / P); score_i = max(0, 1 - 0.5 * periods_behind) (unknown data date: 0); value = 100 * mean;
    detail "dept:<department>" = total days behind of that department's assets, "total" = all.
    Source: Open Data Toronto DQS freshness and get_last_refreshed_gap alert (research 2.5). Empty: None.
    """
    d = derive(catalog, as_of)
    among = d.data & d.finite_period
    p = np.where(d.finite_period, d.period, 1.0)
    age = d.age_days
    behind = np.maximum(0.0, np.nan_to_num(age - p, nan=0.0))
    periods = np.floor(np.nan_to_num(age / p, nan=np.inf))
    score = np.where(np.isnan(age), 0.0, np.maximum(0.0, 1 - PERIODS_BEHIND_PENALTY * periods))
    dept = d.cat["department"].fillna("(no department)").astype(str)
    by_dept = pd.Series(behind[among], index=dept[among].to_numpy()).groupby(level=0).sum()
    detail = {f"dept:{k}": float(v) for k, v in by_dept.sort_values(ascending=False).items()}
    detail["total"] = float(behind[among].sum())
    reason = np.where(np.isnan(age), "no data update date",
                      _fmt_days(behind).astype(object) + " days behind the declared period").astype(object)
    fail_mask_reason = reason
    s = mean_score(d, score, among, 1.0, fail_mask_reason, detail=detail)
    # list assets that are behind at all, not only those that lost points
    fail = among & ((behind > 0) | np.isnan(age))
    return Score(value=s.value, numerator=s.numerator, denominator=s.denominator,
                 failing=dict(zip(d.ids[fail], reason[fail])), detail=s.detail)


def metadata_conformance(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM4: metadata conformance - present dates, e-mails and URLs are valid.

    Formula: per data asset, checks on present values only: created / metadata_modified / data_modified in
    [1970-01-01, as_of + 1 d]; contact_email matches name@domain.tld; landing_url and api_url are http(s)
    URLs; score = passed checks / present checks; value = 100 * mean over data assets with >= 1 check.
    Source: Open Data Portal Watch conformance (CoDa dates, CoCE e-mail, CoAc URLs). Empty: None.
    """
    d = derive(catalog, as_of)
    checks = []
    names = []
    limit = d.as_of + DATE_SKEW
    for col in ("created", "metadata_modified", "data_modified"):
        v = _dates(d.cat[col])
        present = v.notna().to_numpy()
        ok = ((v >= EARLIEST_VALID_DATE) & (v <= limit)).to_numpy()
        checks.append((present, ok)); names.append(f"{col} out of range")
    email = d.cat["contact_email"].fillna("").astype(str).str.strip()
    checks.append((email.ne("").to_numpy(), email.str.match(_EMAIL).to_numpy())); names.append("invalid e-mail")
    for col in ("landing_url", "api_url"):
        u = d.cat[col].fillna("").astype(str).str.strip()
        checks.append((u.ne("").to_numpy(), u.str.match(_URL).to_numpy())); names.append(f"invalid {col}")
    present = np.vstack([c[0] for c in checks]).astype(float)
    passed = np.vstack([c[0] & c[1] for c in checks]).astype(float)
    n_present = present.sum(axis=0)
    score = np.where(n_present > 0, passed.sum(axis=0) / np.where(n_present > 0, n_present, 1), 1.0)
    reason = pd.Series("", index=range(d.n), dtype=object)
    for (pr, ok), name in zip(checks, names):
        bad = pr & ~ok
        reason = reason.where(~bad, reason + name + "; ")
    detail = {n: float(((c[0] & ~c[1]) & d.data).sum()) for c, n in zip(checks, names)}
    return mean_score(d, score, d.data & (n_present > 0), 1.0, reason.str.rstrip("; ").to_numpy(dtype=object),
                      detail=detail)


def unique_titles(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM4: duplicate titles - share of public data assets whose title is unique in the catalog.

    Formula: 100 * (data assets whose title, lower-cased with whitespace collapsed, no other data asset
    shares) / data assets; a missing title fails. Source: Sunlight guideline #13 (unique identifiers);
    GetDKAN admin duplicate report ask (research 3). Empty: None.
    """
    d = derive(catalog, as_of)
    t = d.cat["title"].fillna("").astype(str).str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
    counts = t[d.data].value_counts()
    n_same = t.map(counts).fillna(0).to_numpy()
    ok = t.ne("").to_numpy() & (n_same <= 1)
    reason = np.where(t.eq("").to_numpy(), "no title",
                      "title shared with " + _fmt_days(n_same - 1).astype(object) + " other asset(s)").astype(object)
    return share_score(d, ok, d.data, reason, detail={"duplicated_titles": float((counts > 1).sum())})


def retention(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM4: datasets kept - public assets removed between the last two good harvest runs.

    Formula: 100 * (1 - removed / (removed + current data assets)), removed = attrs["portal"]["removed"]
    (a suspect run's missing assets are not removals; storage excludes them). Failing = the removed ids.
    Source: Portal Watch dynamicity (deleted per snapshot); Sunlight guideline #20 (permanent access).
    Empty: None (also without attrs: no history known).
    """
    d = derive(catalog, as_of)
    portal = d.attrs.get("portal") or {}
    removed = portal.get("removed", d.attrs.get("removed"))
    if removed is None:
        return Score(value=None, numerator=0.0, denominator=0.0)
    removed = [str(r) for r in removed]
    current = float(d.data.sum())
    den = current + len(removed)
    return Score(value=100.0 * current / den if den else None, numerator=current, denominator=den,
                 failing={r: "removed since the previous good harvest" for r in removed},
                 detail={"removed": float(len(removed))})
