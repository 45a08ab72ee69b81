"""Data Management: DM4 improving data quality - cadence, freshness, adherence, conformance, duplicates, removals."""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd

from indicators.arrays import count_text, day_text, to_seconds, utc
from indicators.base import CityCatalog, Score
from indicators.derived import _URL, Derived, derive
from indicators.periods import DELINQUENT, DUE, FRESH, OVERDUE, cadence
from indicators.scoring import evidence, mean_score, reasons_from_flags, share_score

# Observation resolution of our own history when the facts carry no run dates: weekly, the Open Data Portal
# Watch snapshot cadence. A change faster than our harvests cannot be seen more than once per harvest.
DEFAULT_HARVEST_INTERVAL_DAYS = 7.0
# Plausible dates: not before the Unix epoch, not later than as_of plus one day of clock skew
# (Portal Watch CoDa checks that dates parse; we also reject impossible ones).
EARLIEST_VALID_DATE = pd.Timestamp("1970-01-01", tz="UTC")
DATE_SKEW = pd.Timedelta(days=1)


_URL_RE = re.compile(_URL)


def _urls_valid(values: Iterable[object]) -> list[bool]:
    """Each value (as text, stripped) is a URL by _URL: a plain loop over the compiled pattern (`str.match` cost 2x
    on 300,000 distinct URLs a column, all of them distinct)."""
    match = _URL_RE.match
    return [match(str(v).strip()) is not None for v in values]


def _declared(d: Derived, rows: np.ndarray) -> np.ndarray:
    """The rows' declared frequencies in words ("monthly", "every 3 months"), worked out once per distinct value."""
    freq = d.cat["declared_frequency"].to_numpy(dtype=object, na_value="")[rows]
    if not len(freq):
        return freq
    distinct, inverse = np.unique(freq.astype(str), return_inverse=True)
    return np.array([cadence(v) or "" for v in distinct], dtype=object)[inverse]


# Reasons of the freshness indicators are stated in dates, never in days counted to the scoring date: a reason
# that changes with the calendar changes every failing dataset's evidence at every scoring, which made an
# unchanged catalog's scoring store a new evidence list proportional to the catalog (issue 13, target 3).


def cadence_declared(catalog: CityCatalog, as_of: datetime) -> Score:
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


def up_to_date(catalog: CityCatalog, as_of: datetime) -> Score:
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
    def reason(fail: np.ndarray) -> np.ndarray:
        return (st[fail] + ": last data update " + day_text(d.seconds("data_modified")[fail]) + ", declared "
                + _declared(d, fail))

    return share_score(d, ok, among, reason, detail=detail)


def _harvest_interval(d: Derived) -> float:
    """Median days between good (ok / suspect) runs of each portal; the coarsest portal's when a city has
    several (their runs interleave); DEFAULT_HARVEST_INTERVAL_DAYS without two good runs."""
    stamps: dict[str, list] = {}
    for r in d.facts.runs:
        if r.status in ("ok", "suspect"):
            stamps.setdefault(r.portal_key, []).append(r.as_of)
    medians = []
    for times in stamps.values():
        ts = np.unique(to_seconds(pd.to_datetime(pd.Series(times, dtype=object), utc=True, errors="coerce")))
        ts = ts[~np.isnan(ts)]
        gaps = np.diff(ts) / 86400.0
        if len(gaps):
            medians.append(float(np.median(gaps)))
    return max(medians) if medians else DEFAULT_HARVEST_INTERVAL_DAYS


def _complete_run_times(d: Derived) -> dict[str, np.ndarray]:
    """portal_key -> sorted epoch seconds of its complete runs in facts.runs (empty without them)."""
    out: dict[str, list] = {}
    for r in d.facts.runs:
        if r.complete:
            out.setdefault(r.portal_key, []).append(r.as_of)
    return {k: np.sort(to_seconds(pd.to_datetime(pd.Series(v, dtype=object), utc=True, errors="coerce")))
            for k, v in out.items()}


def cadence_adherence(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM4: cadence adherence over our history - observed data updates against what the declared period promises.

    Formula: per data asset with a finite period P: window = (max(history_start, first_seen), as_of];
    expected E = min(C, floor(window / P)), C = the asset's portal's complete runs inside the window (each is
    one chance to see a change; short or suspect crawls give none); without run history,
    E = floor(window / max(P, H)), H = median interval between a portal's good runs (the coarsest portal's,
    7 d without two runs). Observed O = distinct data_modified values seen in stored history inside the
    window; adherence = min(O / E, 1) for E >= 1; value = 100 * mean adherence. Assets that changed more
    than twice as often as their period allows (O >= 2 and O > 2 * max(1, floor(window / P))) are listed in
    matches and counted in detail "more_often_than_declared" (a declared-vs-observed mismatch).
    Source: new (research 4.1 M9), built on Portal Watch change tracking.
    Empty: None (also without history or with no asset expecting an update).
    """
    d = derive(catalog, as_of)
    hs = d.facts.history_start
    if hs is None:
        fs = d.seconds("first_seen")
        hs = pd.Timestamp(np.nanmin(fs), unit="s", tz="UTC") if (~np.isnan(fs)).any() else None
    if hs is None or pd.isna(hs):
        return Score(value=None, numerator=0.0, denominator=0.0, detail={"evaluable": 0.0})
    hs_s = utc(hs).timestamp()
    fs_s = d.seconds("first_seen")
    start_s = np.where(fs_s > hs_s, fs_s, hs_s)  # NaN first_seen -> history start
    window = (d.as_of_s - start_s) / 86400.0
    h = _harvest_interval(d)
    p = np.where(d.finite_period, d.period, np.inf)
    by_period = np.floor(np.nan_to_num(window / p, nan=0.0, posinf=0.0))
    # observation chances: complete runs of the row's portal after its window opens; a short (suspect or
    # incomplete) crawl is not counted as a chance to see a change
    chances = np.full(d.n, np.nan)
    ok_runs = _complete_run_times(d)
    if ok_runs:
        pk = d.cat["portal_key"].to_numpy(dtype=object)
        for key, times in ok_runs.items():  # one vectorised pass per portal
            rows = pk == key
            chances[rows] = (np.searchsorted(times, d.as_of_s, side="right")
                             - np.searchsorted(times, start_s[rows], side="right"))
    fallback = np.floor(np.nan_to_num(window / np.maximum(p, h), nan=0.0, posinf=0.0))
    expected = np.where(np.isnan(chances), fallback, np.minimum(np.nan_to_num(chances), by_period))
    among = d.data & d.finite_period & (expected >= 1)
    # observed: explode the history tuples of the evaluable rows only, keep values inside each row's window
    rows_among = np.flatnonzero(d.data & d.finite_period)  # all with a period: also for the mismatch check
    seen = pd.Series(d.cat["data_modified_seen"].to_numpy(dtype=object)[rows_among], index=rows_among,
                     dtype=object).explode()
    seen = seen[seen.notna()]
    observed = np.zeros(d.n)
    if len(seen):
        vals = _seen_seconds(seen)
        rows = seen.index.to_numpy()
        inside = (vals > start_s[rows]) & (vals <= d.as_of_s)  # NaN compares False
        observed = np.bincount(rows[inside], minlength=d.n).astype(float)
    adherence = np.where(expected > 0, np.minimum(observed / np.where(expected > 0, expected, 1.0), 1.0), 0.0)
    # the reason names the window's first day, not its length or the expected count: both grow with every
    # scoring date and run, the observed updates and the window's start do not
    def reason(fail: np.ndarray) -> np.ndarray:
        return (count_text(observed[fail]) + " data update(s) seen since " + day_text(start_s[fail])
                + ", fewer than declared (" + _declared(d, fail) + ")")

    # declared-vs-observed mismatch (research 4.1): changing more than twice as often as the declared
    # period allows is a documentation error (e.g. updated weekly, declared annual)
    faster = d.data & d.finite_period & (observed >= 2) & (observed > MISMATCH_FACTOR * np.maximum(by_period, 1))
    mismatch = (count_text(observed[faster]) + " data updates since " + day_text(start_s[faster])
                + ", more often than declared (" + _declared(d, faster) + ")")
    score = mean_score(d, adherence, among, 1.0, reason,
                       detail={"evaluable": float(among.sum()), "harvest_interval_days": h,
                               "observed_updates": float(observed[among].sum()),
                               "expected_updates": float(expected[among].sum()),
                               "more_often_than_declared": float(faster.sum())})
    return Score(value=score.value, numerator=score.numerator, denominator=score.denominator,
                 failing=score.failing, matches=evidence(d.ids[faster], mismatch), detail=score.detail)


def _seen_seconds(seen: pd.Series) -> np.ndarray:
    """The exploded history dates as float seconds."""
    if isinstance(seen.dtype, pd.DatetimeTZDtype):  # pandas typed the exploded datetimes: seconds at once (making
        return to_seconds(seen)  # each a Timestamp to find the distinct ones was a tenth of compute_all at 300k)
    # other values (text, naive times) made seconds once per distinct value: the history's dates repeat across
    # rows (one per portal update), and to_datetime of every exploded value was a sixth of compute_all at 300k
    codes, distinct = pd.factorize(seen.to_numpy(dtype=object))
    return to_seconds(pd.to_datetime(pd.Series(distinct, dtype=object), utc=True, errors="coerce"))[codes]


# Declared-vs-observed mismatch factor (research 4.1: flag when the observed gap is under half the period).
MISMATCH_FACTOR = 2

# Toronto DQS freshness: an asset loses half its score per full period behind (0 after two).
PERIODS_BEHIND_PENALTY = 0.5


def days_behind(catalog: CityCatalog, as_of: datetime) -> Score:
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
    periods = np.maximum(0.0, np.floor(np.nan_to_num(age / p, nan=np.inf)))  # a future date is not 'ahead'
    score = np.where(np.isnan(age), 0.0, np.maximum(0.0, 1 - PERIODS_BEHIND_PENALTY * periods))
    dept = d.cat["department"].fillna("(no department)").astype(str)
    by_dept = pd.Series(behind[among], index=dept[among].to_numpy()).groupby(level=0).sum()
    detail = {f"dept:{k}": float(v) for k, v in by_dept.sort_values(ascending=False).items()}
    detail["total"] = float(behind[among].sum())
    fail = among & ((behind > 0) | np.isnan(age))  # every asset behind at all, not only those that lost points
    # the day the next update was due (last data update + P), not the days since: see _declared's note
    due = day_text(d.seconds("data_modified")[fail] + p[fail] * 86400.0)
    reasons = np.where(np.isnan(age[fail]), "no data update date",
                       "update due since " + due + ", declared " + _declared(d, fail)).astype(object)
    s = mean_score(d, score, among, 1.0, "", detail=detail)
    return Score(value=s.value, numerator=s.numerator, denominator=s.denominator,
                 failing=evidence(d.ids[fail], reasons), detail=s.detail)


def metadata_conformance(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM4: metadata conformance - dates, contact e-mail and URLs are present and valid.

    Formula: per data asset, six checks: created / metadata_modified / data_modified in [1970-01-01, as_of +
    1 d]; contact_email matches name@domain.tld; landing_url is an http(s) URL; api_url is an http(s) URL
    (checked on tabular assets only: other assets need no API). A check passes when the value is present and
    valid; a missing value is not evident and fails, so leaving a field out never scores better than getting
    it wrong. score = passed / applicable checks; value = 100 * mean over data assets. Detail counts present
    but invalid values ("invalid e-mail", ...) and missing ones ("missing <field>").
    Source: Open Data Portal Watch conformance (CoDa dates, CoCE e-mail, CoAc URLs). Empty: None.
    """
    d = derive(catalog, as_of)
    everyone = np.ones(d.n, dtype=bool)
    checks = []  # (applicable, present, valid, invalid name, missing name)
    limit = (d.as_of + DATE_SKEW).timestamp()
    earliest = EARLIEST_VALID_DATE.timestamp()
    for col in ("created", "metadata_modified", "data_modified"):
        v = d.seconds(col)
        checks.append((everyone, ~np.isnan(v), (v >= earliest) & (v <= limit), f"{col} out of range",
                       f"missing {col}"))
    checks.append((everyone, d.present("contact_email"), d.email_valid, "invalid e-mail", "missing contact_email"))
    for col, applies in (("landing_url", everyone), ("api_url", d.tabular)):
        # checked row by row, not per distinct value: a dataset's landing page and API address are its own, so
        # finding the distinct ones (a hash of every URL) cost more than it saved
        present = d.present(col)
        valid = np.zeros(d.n, dtype=bool)
        valid[present] = _urls_valid(d.cat[col].to_numpy(dtype=object)[present])
        checks.append((applies, present, valid, f"invalid {col}", f"missing {col}"))
    applicable = np.vstack([c[0] for c in checks]).astype(float)
    passed = np.vstack([c[0] & c[1] & c[2] for c in checks]).astype(float)
    n_applicable = applicable.sum(axis=0)  # >= 5 for every asset
    score = passed.sum(axis=0) / n_applicable
    flags = {bad: ap & pr & ~ok for ap, pr, ok, bad, _miss in checks}
    flags.update({miss: ap & ~pr for ap, pr, _ok, _bad, miss in checks})
    reason = reasons_from_flags(flags, "", d.n)
    detail = {name: float((flag & d.data).sum()) for name, flag in flags.items()}
    return mean_score(d, score, d.data, 1.0, reason, detail=detail)


def unique_titles(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM4: duplicate titles - share of public data assets whose title is unique in the catalog.

    Formula: 100 * (data assets whose title, lower-cased with whitespace collapsed, no other data asset
    shares) / data assets; a missing title fails. Source: Sunlight guideline #13 (unique identifiers);
    GetDKAN admin duplicate report ask (research 3). Empty: None.
    """
    d = derive(catalog, as_of)
    norm = d.title_norm
    code, _u = pd.factorize(norm)
    counts_u = np.bincount(code[d.data], minlength=len(_u)) if len(_u) else np.zeros(0, dtype=int)
    n_same = counts_u[code] if len(_u) else np.zeros(d.n)
    ok = (norm != "") & (n_same <= 1)
    counts = pd.Series(counts_u)

    def reason(fail: np.ndarray) -> np.ndarray:
        shared = "title shared with " + count_text(n_same[fail] - 1) + " other asset(s)"
        return np.where(norm[fail] == "", "no title", shared).astype(object)

    return share_score(d, ok, d.data, reason, detail={"duplicated_titles": float((counts > 1).sum())})


def retention(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM4: datasets kept - public assets removed between complete harvest runs.

    Formula: 100 * (1 - removed / (removed + current data assets)), removed = facts.removed (storage's rule:
    a short or suspect crawl's missing assets are not removals). Failing = the removed ids.
    Source: Portal Watch dynamicity (deleted per snapshot); Sunlight guideline #20 (permanent access).
    Empty: None (also before any portal has two complete runs, and while storage can confirm no removal yet:
    a removal takes two complete runs in a row without the dataset, so no score from a single harvest).
    """
    d = derive(catalog, as_of)
    complete: dict[str, int] = {}
    for r in d.facts.runs:
        if r.complete:
            complete[r.portal_key] = complete.get(r.portal_key, 0) + 1
    if max(complete.values(), default=0) < 2 or d.facts.removed is None:
        return Score(value=None, numerator=0.0, denominator=0.0)
    removed = sorted(d.facts.removed)
    current = float(d.data.sum())
    den = current + len(removed)
    return Score(value=100.0 * current / den if den else None, numerator=current, denominator=den,
                 failing={r: "removed since the previous complete harvest" for r in removed},
                 detail={"removed": float(len(removed))})
