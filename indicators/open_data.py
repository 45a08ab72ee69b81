"""Open Data practice: OD1 open data policy (what metadata shows), OD2 user guidance, OD3 open data portal."""
from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd

from indicators.arrays import by_value, day_text
from indicators.base import CityCatalog, Score
from indicators.derived import Derived, derive
from indicators.scoring import clamp, evidence, mean_score, reasons_from_flags, share_score

# --- OD3 ------------------------------------------------------------------------------------------

# Portal size is scored on a log scale, full marks at this many public data assets. Project choice (no
# anchor publishes a size threshold): Chicago's Socrata catalog held about 600 data assets in the recorded
# 2022 scrape, so a large US city portal sits near full marks and a 10-dataset portal near a third.
DATASET_COUNT_FULL = 1000
# Growth window and target: new public data assets per 90 days (issue 3). Full marks at 3 new assets per
# quarter - project choice; Portal Watch reports dynamicity (adds/deletes per snapshot) without a threshold.
GROWTH_WINDOW_DAYS = 90
GROWTH_FULL = 3
# 5-star openness: a dataset counts as open data at 3 stars (open licence + open machine-readable format),
# Berners-Lee's scheme as implemented by ckanext-qa.
OPEN_DATA_STARS = 3


def portal_api(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD3: the portal answers with a machine-readable catalog API.

    Formula: 100 if facts.reachable (the newest harvest of at least one of the city's portals through the
    Socrata / CKAN / data.json API did not fail) else 0.
    Source: GSA Project Open Data dashboard (data.json fetched and parsed); Portal Watch retrievability (Qr).
    Empty: 0 unless the facts say a portal was reachable.
    """
    facts = catalog.facts
    reachable = facts.reachable
    failing = {} if reachable else {"portal": "the last harvest could not read the catalog API"}
    return Score(value=100.0 if reachable else 0.0, numerator=float(reachable), denominator=1.0,
                 failing=failing, detail={f"kind:{k}": 1.0 for k in sorted(facts.kinds)})


def dataset_count(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD3: how many public data assets the portal publishes.

    Formula: min(100, 100 * log10(1 + n) / log10(1 + DATASET_COUNT_FULL)), n = public data assets
    (asset types dataset/file/map, not derived, not hidden, accessLevel public). 10 -> 35, 100 -> 67, 1000 -> 100.
    Source: project choice (log scale, see DATASET_COUNT_FULL); counting base datasets only follows Open Data
    Portal Watch. Empty: 0.
    """
    d = derive(catalog, as_of)
    n = float(d.data.sum())
    by_type = pd.Series(d.asset_type[d.data]).value_counts()
    value = clamp(100.0 * np.log10(1 + n) / np.log10(1 + DATASET_COUNT_FULL))
    return Score(value=value, numerator=n, denominator=float(DATASET_COUNT_FULL),
                 detail={f"type:{k}": float(v) for k, v in by_type.items()})


def growth(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD3: new public data assets in the last 90 days.

    Formula: new = data assets whose own `created` date falls in (as_of - 90 d, as_of]; value =
    min(100, 100 * new / GROWTH_FULL). When we first saw a dataset says nothing about when it was published:
    a crawl that comes back fuller than the last one "sees" old datasets for the first time. Source: GSA
    dashboard asks ("% growth per quarter"); Portal Watch dynamicity; thresholds are project choices (see
    GROWTH_FULL). Empty: 0; a data asset without a `created` date is not new.
    """
    d = derive(catalog, as_of)
    arrival = d.seconds("created")
    start = d.as_of_s - GROWTH_WINDOW_DAYS * 86400.0
    new = (arrival > start) & (arrival <= d.as_of_s) & d.data  # NaN compares False
    n_new = float(new.sum())
    return Score(value=clamp(100.0 * n_new / GROWTH_FULL), numerator=n_new, denominator=float(GROWTH_FULL),
                 matches=evidence(d.ids[new], "new on " + day_text(arrival[new])),
                 detail={"new_90d": n_new, "window_days": float(GROWTH_WINDOW_DAYS)})


def bulk_open_formats(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD3: share of public data assets downloadable in bulk in a machine-readable, non-proprietary format.

    Formula: 100 * (data assets with >= 1 format rated >= 3 stars and not an image) / data assets.
    Source: format lists pinned in indicators/data/formats.json (ckanext-qa openness table; Portal Watch
    OpMa/OpFo). Empty: None (no data assets).
    """
    d = derive(catalog, as_of)
    _stars, mr, omr = d.stars_by_format
    has_fmt = d.has_download

    def reason(fail: np.ndarray) -> np.ndarray:
        return np.where(~has_fmt[fail], "no download format listed",
                        np.where(mr[fail], "only proprietary machine-readable formats", "no machine-readable format"
                                 )).astype(object)

    return share_score(d, omr, d.data, reason, detail={"machine_readable": float((mr & d.data).sum())})


def five_star(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD3: 5-star openness - share of public data assets at 3 stars or more, with the full distribution.

    Formula: stars = best format stars (ckanext-qa table; unknown format 1, no format 0), set to 0 when the
    licence is not open (ckanext-qa "License not open"); value = 100 * (stars >= 3) / data assets;
    detail stars_0..stars_5. Source: ckanext-qa tasks.py, resource_format_openness_scores.json. Empty: None.
    """
    d = derive(catalog, as_of)
    best, _mr, _omr = d.stars_by_format
    stars = np.where(best < 0, 0.0, best)
    stars = np.where(d.licence_open, stars, 0.0)
    dist = {f"stars_{k}": float(((stars == k) & d.data).sum()) for k in range(6)}

    def reason(fail: np.ndarray) -> np.ndarray:
        best_text = by_value(stars[fail].astype(int), lambda counts: [f"best format {k} star(s)" for k in counts])
        return np.where(~d.licence_open[fail], "licence not open (0 stars)", best_text).astype(object)

    return share_score(d, stars >= OPEN_DATA_STARS, d.data, reason, detail=dist)


# --- OD1 ------------------------------------------------------------------------------------------

def open_licence(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD1: share of public data assets under an open licence.

    Formula: 100 * (data assets whose license_id is an open licence: Open Definition 'approved', or CC
    BY/BY-SA/CC0 of any version, or an open government licence) / data assets. The one licence vocabulary is
    connectors.vocab (registry okfn/licenses @ 98a3a6f8 in connectors/data/opendefinition_licenses_all.json).
    Source: Open Data Portal Watch OpLi; GODI "openly licensed". Empty: None.
    """
    d = derive(catalog, as_of)
    lid = pd.Series(d.licence_id, dtype=object)

    def reason(fail: np.ndarray) -> np.ndarray:
        rows = np.flatnonzero(fail)
        raw = d.cat["license"].iloc[rows].fillna(d.cat["license_id"].iloc[rows]).to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]  # stubs omit None
        ids = d.licence_id[fail]
        not_approved = "licence is not Open Definition approved: " + np.where(pd.isna(ids), "", ids).astype(object)
        return np.where(pd.isna(raw), "no licence stated",
                        np.where(pd.isna(ids), "licence text names no known licence", not_approved)
                        ).astype(object)

    counts = lid[d.data].fillna("(none)").value_counts()
    return share_score(d, d.licence_open, d.data, reason, detail={f"licence:{k}": float(v) for k, v in counts.items()})


def datajson_inventory(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD1: a public, valid data.json inventory (proactive disclosure of the city's data holdings).

    Formula: 100 * (1 - min(1, schema_errors / max(1, entries))) when the data.json was read and its schema
    check is on record (entries = datasets in the document); 0 when the city's data.json portal gave no
    document; None (not evident) when no data.json portal is configured (a Socrata or CKAN city may well
    publish a data.json we do not harvest) or the check is not on record. Failing: each dataset with schema
    errors (its first message), "data.json" for errors of the document itself.
    Source: GSA Project Open Data dashboard (valid_count / total_records, POD v1.1 non-federal schema);
    Sunlight guideline #28 (a public list of all information holdings).
    Empty: None without a data.json portal configured (not checked); otherwise as the formula says (the facts
    decide, not the rows).
    """
    dj = catalog.facts.datajson
    if not dj.checked:
        # not checked: the city has no data.json portal configured, so absence is not evidence either way
        return Score(value=None, numerator=0.0, denominator=0.0)
    if not dj.present:
        return Score(value=0.0, numerator=0.0, denominator=1.0, failing={"data.json": "no data.json inventory found"})
    if not dj.validated:
        return Score(value=None, numerator=0.0, denominator=0.0, failing={"data.json": "schema check not on record"})
    entries = max(1, dj.entries)
    errors = float(dj.error_count)
    valid = max(0.0, entries - errors)
    failing = {(sid or "data.json"): f"{len(msgs)} schema error(s): {msgs[0]}" if msgs else "schema error(s)"
               for sid, msgs in dj.errors.items()}
    if errors and not failing:
        failing = {"data.json": f"{int(errors)} schema error(s)"}
    return Score(value=clamp(100.0 * valid / entries), numerator=valid, denominator=float(entries),
                 failing=failing, detail={"schema_errors": errors, "entries": float(dj.entries),
                                          "datasets_with_errors": float(sum(1 for sid in dj.errors if sid))})


# --- OD2 ------------------------------------------------------------------------------------------

_TAG = re.compile(r"<[^>]+>")
# A description counts when it is at least this long after HTML is stripped (udata
# quality-description-length default, research 4.2) ...
DESCRIPTION_MIN_CHARS = 100
# ... and is not boilerplate: the same text on more than this many data assets (research 4.2).
BOILERPLATE_MAX_SHARED = 5
# Documentation index weights (sum 100), adapted from research/methodologies.md 4.2 to the parts of user
# guidance issue 3 lists (licence, department and frequency belong to the DM2 inventory index instead).
# Sources: description udata/Portal Watch ExDi; column descriptions Toronto DQS desc_columns; attachments
# DCAT-US describedBy / udata resources_documentation; keywords and category MQA (30/405 each);
# contact Portal Watch CoCE.
DOC_WEIGHTS = {"description": 20.0, "dictionary": 25.0, "attachments": 10.0, "keywords": 15.0,
               "category": 15.0, "contact": 15.0}


# Title and description are compared only when the description is shorter than this (a longer text cannot
# equal a title); the comparison collapses whitespace and case.
_COMPARE_MAX_CHARS = 300


def description_ok(d: Derived) -> tuple[np.ndarray, np.ndarray]:
    """Per row: description passes, and the reason it fails ("" when it passes). Text work per distinct text."""
    code, uniq = d.distinct("description")
    texts = [str(x) for x in uniq]
    k = len(texts)
    has_tag = np.fromiter(("<" in x for x in texts), dtype=bool, count=k)
    length = np.fromiter(map(len, texts), dtype=float, count=k)
    for i in np.flatnonzero(has_tag):  # HTML: count the text without its tags
        length[i] = len(" ".join(_TAG.sub(" ", texts[i]).split()))
    norm = np.full(k, None, dtype=object)
    short_u = np.flatnonzero(length < _COMPARE_MAX_CHARS)
    norm[short_u] = [" ".join((_TAG.sub(" ", texts[i]) if has_tag[i] else texts[i]).lower().split()) for i in short_u]
    length[short_u] = [len(norm[i]) for i in short_u]
    ok_code = code >= 0
    safe = np.where(ok_code, code, 0)
    # boilerplate: the identical description text on more than BOILERPLATE_MAX_SHARED public data assets
    shared_u = np.bincount(code[ok_code & d.data], minlength=k) if k else np.zeros(0)
    length_r = np.where(ok_code, length[safe] if k else 0.0, 0.0)
    shared = np.where(ok_code, shared_u[safe] if k else 0, 0)
    # numpy's stubs reject None as a fill value; numpy takes it (an object array)
    norm_r = np.where(ok_code, norm[safe] if k else None, None)  # type: ignore[arg-type]
    empty = ~ok_code | (length_r == 0)
    same = (norm_r == d.title_norm) & ~empty
    short = length_r < DESCRIPTION_MIN_CHARS
    boiler = shared > BOILERPLATE_MAX_SHARED
    reason = np.select([empty, same, short, boiler],
                       ["no description", "description repeats the title",
                        f"description under {DESCRIPTION_MIN_CHARS} characters",
                        f"boilerplate description shared by more than {BOILERPLATE_MAX_SHARED} assets"],
                       default="")
    return reason == "", reason.astype(object)


def dictionary_coverage(d: Derived) -> tuple[np.ndarray, np.ndarray]:
    """Per row: described / columns (0..1, NaN when the asset has no columns), and the applicability mask."""
    cols = d.cat["column_count"].to_numpy(dtype=float, na_value=np.nan)
    desc = d.cat["described_column_count"].to_numpy(dtype=float, na_value=np.nan)
    has_cols = np.nan_to_num(cols) > 0
    cov = np.where(has_cols, np.clip(np.nan_to_num(desc) / np.where(has_cols, cols, 1.0), 0.0, 1.0), np.nan)
    return cov, has_cols


def documentation_index(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD2: documentation index - how well each public data asset is explained to users (0-100).

    Formula: per asset sum(w_i * item_i) / sum(applicable w_i), items: description (present, >= 100 chars
    without HTML, not the title, not shared by > 5 assets) 20; data dictionary = described columns / columns
    25 (for tabular assets and any asset with columns; a tabular asset without a column list scores 0 on it);
    attachment or documentation link 10; >= 1 keyword 15; category 15; contact (valid e-mail or name) 15.
    value = mean over data assets.
    Source: research/methodologies.md 4.2 (udata, Toronto DQS, MQA, Portal Watch), weights in DOC_WEIGHTS.
    Empty: None.
    """
    d = derive(catalog, as_of)
    items, per_asset = _documentation(d)
    missing = {name: ~np.isnan(val) & (np.nan_to_num(val) < 1) for name, val in items.items()}
    reasons = reasons_from_flags(missing, "missing or incomplete: ", d.n)
    detail = {f"share:{k}": float(np.nanmean(v[d.data])) * 100 if d.data.any() and not np.isnan(v[d.data]).all()
              else 0.0 for k, v in items.items()}
    return mean_score(d, per_asset, d.data, 1.0, reasons, detail=detail)


def documentation_per_asset(catalog: pd.DataFrame, as_of: datetime) -> np.ndarray:
    """Each row's OD2 documentation index (0-100): the per-asset value `documentation_index` averages over
    the public data assets, for pages that show it per dataset (one metric, one place)."""
    return 100.0 * _documentation(derive(catalog, as_of))[1]


def _documentation(d: Derived) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per row: each item in 0..1 (NaN where it does not apply), and sum(w_i * item_i) / sum(applicable w_i)."""
    desc_pass, _desc_reason = description_ok(d)
    cov, _has_cols = dictionary_coverage(d)
    att = np.nan_to_num(d.cat["attachment_count"].to_numpy(dtype=float, na_value=np.nan)) >= 1
    items = {
        "description": desc_pass.astype(float),
        # a tabular asset whose columns the portal does not list has no dictionary in evidence: 0, not skipped
        "dictionary": np.where(d.tabular & np.isnan(cov), 0.0, cov),
        "attachments": att.astype(float),
        "keywords": (d.n_keywords >= 1).astype(float),
        "category": d.present("theme").astype(float),
        "contact": d.has_contact.astype(float),
    }
    num = np.zeros(d.n)
    den = np.zeros(d.n)
    for name, val in items.items():
        w = DOC_WEIGHTS[name]
        applicable = ~np.isnan(val)
        num += np.where(applicable, w * np.nan_to_num(val), 0.0)
        den += np.where(applicable, w, 0.0)
    return items, np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _described_text(desc: np.ndarray, cols: np.ndarray) -> np.ndarray | list[str]:
    """"a of b columns described" per row, written once per distinct (a, b): 200,000 failing rows share a few
    hundred pairs. Counts are whole and far within int64 (else written row by row, as int() gives them)."""
    pairs = np.stack([desc, cols], axis=1)
    if not len(pairs) or not (np.abs(pairs) < 2.0 ** 53).all():
        return [f"{int(a)} of {int(b)} columns described" for a, b in zip(desc, cols, strict=True)]
    distinct, at = np.unique(pairs.astype(np.int64), axis=0, return_inverse=True)
    out = np.empty(len(distinct), dtype=object)
    out[:] = [f"{a} of {b} columns described" for a, b in distinct.tolist()]
    return out[at.reshape(-1)]


def data_dictionary(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD2: data dictionary coverage - described columns over all columns of public tabular assets.

    Formula: 100 * sum(described_column_count) / sum(column_count) over tabular data assets with columns
    (a description counts when non-empty and not the column name - the connectors' rule).
    Source: Open Data Toronto DQS metadata dimension (desc_columns). Empty: None.
    """
    d = derive(catalog, as_of)
    cov, has_cols = dictionary_coverage(d)
    among = d.tabular & has_cols
    cols = np.nan_to_num(d.cat["column_count"].to_numpy(dtype=float, na_value=np.nan))
    desc = np.clip(np.nan_to_num(d.cat["described_column_count"].to_numpy(dtype=float, na_value=np.nan)), 0, cols)
    den = float(cols[among].sum())
    num = float(desc[among].sum())
    fail = among & (cov < 1)
    reasons = _described_text(desc[fail], cols[fail])
    return Score(value=100.0 * num / den if den else None, numerator=num, denominator=den,
                 failing=evidence(d.ids[fail], reasons), detail={"assets_with_columns": float(among.sum())})
