"""Topic evidence found by explainable word matching: DM8 disaggregation, PA3 goals and progress, BF1 budget
and spending, RDC7 procurement, and the US City Open Data Census key datasets.

Every match records the words that matched (Score.matches), so a CDO can see why an asset counts.
Word lists live in indicators/data/vocab.json.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from indicators.base import CityCatalog, Score
from indicators.frame import (
    DUE,
    FRESH,
    Derived,
    clamp,
    derive,
    evidence,
    norm_hit,
    share_score,
    vocab,
    word_pattern,
)

# An asset without a finite declared period counts as current when its data (or, for stories and measures,
# its metadata) changed within the past 12 months - WWC's "updated within the past 12 months" (2018 DG1) and
# GODI's "timely" question. With a finite period, current = HDX fresh or due.
CURRENT_DAYS = 365
CENSUS_KEY_DATASETS = 20  # US City Open Data Census (2018): 20 key city datasets


def _current(d: Derived) -> np.ndarray:
    dm = d.seconds("data_modified")
    last = np.where(np.isnan(dm), d.seconds("metadata_modified"), dm)
    age = (d.as_of_s - last) / 86400.0
    recent = np.nan_to_num(age, nan=np.inf) <= CURRENT_DAYS
    st = d.freshness
    return np.where(d.finite_period, (st == FRESH) | (st == DUE), recent)


def disaggregation(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM8: disaggregation-ready datasets - public tabular assets with geographic or demographic columns.

    Formula: 100 * (tabular data assets with >= 1 column whose name matches a geographic word (tract, ward,
    district, ZIP, community area, latitude, ...) or whose type is a geometry (point, location, polygon ...),
    or a demographic word (race, ethnicity, sex, gender, age, income, ...)) / tabular data assets with columns.
    detail geographic / demographic / both. Source: ODIN disaggregation elements (Open Data Watch);
    word lists in indicators/data/vocab.json. Empty: None.
    """
    d = derive(catalog, as_of)
    v = vocab()
    # Work per distinct schema and per distinct column name: schemas and names repeat across a catalog.
    schema_code, schemas = d.distinct("columns")
    geo_words = pd.Series("", index=range(d.n), dtype=object)
    demo_words = pd.Series("", index=range(d.n), dtype=object)
    has_cols = np.zeros(d.n, dtype=bool)
    cols = pd.Series(np.asarray(schemas, dtype=object), dtype=object).explode()  # index = schema number
    cols = cols[cols.notna()]
    if len(cols):
        sch = cols.index.to_numpy()
        name_code, names = pd.factorize(cols.map(lambda c: c[0] if isinstance(c, (tuple, list)) and c else str(c)))
        type_code, types = pd.factorize(
            cols.map(lambda c: str(c[1]).lower() if isinstance(c, (tuple, list)) and len(c) > 1 else ""))
        # camelCase -> words, lower case; one regex pass for geographic and demographic words together
        split = pd.Series(np.asarray(names, dtype=object), dtype=object).astype(str).str.replace(
            r"([a-z])([A-Z])", r"\1 \2", regex=True).str.lower()
        geo_set = {w.lower() for w in v["geographic_columns"]}
        found = split.str.findall(word_pattern(geo_set | {w.lower() for w in v["demographic_columns"]}))
        found = found.map(lambda ws: sorted({norm_hit(w) for w in ws}))
        g_name = found.map(lambda ws: ", ".join(w for w in ws if w in geo_set)).to_numpy(dtype=object)
        m_name = found.map(lambda ws: ", ".join(w for w in ws if w not in geo_set)).to_numpy(dtype=object)
        geo_type = np.array([t if t in v["geographic_types"] else "" for t in types], dtype=object)
        g = g_name[name_code]
        gt = geo_type[type_code]
        g = np.where(gt == "", g, np.where(g == "", gt + " column", g + ", " + gt + " column"))
        m = m_name[name_code]

        def per_schema(words: np.ndarray) -> np.ndarray:
            out = np.full(len(schemas), "", dtype=object)
            hit = words != ""
            if hit.any():
                pairs = pd.DataFrame({"s": sch[hit], "w": words[hit]})
                pairs = (pairs.assign(w=pairs["w"].str.split(", ")).explode("w")
                         .drop_duplicates().sort_values(["s", "w"]))
                joined = pairs.groupby("s", sort=False)["w"].agg(", ".join)
                out[joined.index.to_numpy()] = joined.to_numpy()
            return out

        ok_rows = schema_code >= 0
        has_schema = np.zeros(len(schemas), dtype=bool)
        has_schema[sch] = True
        has_cols[ok_rows] = has_schema[schema_code[ok_rows]]
        gs, ms = per_schema(g), per_schema(m)
        geo_words.iloc[np.flatnonzero(ok_rows)] = gs[schema_code[ok_rows]]
        demo_words.iloc[np.flatnonzero(ok_rows)] = ms[schema_code[ok_rows]]
    geo = geo_words.ne("").to_numpy()
    demo = demo_words.ne("").to_numpy()
    among = d.tabular & has_cols
    ok = geo | demo
    hit = among & ok
    gw, dw = geo_words.to_numpy(dtype=object)[hit], demo_words.to_numpy(dtype=object)[hit]
    why_hit = (np.where(gw != "", "geographic: " + gw, "") + np.where((gw != "") & (dw != ""), "; ", "")
               + np.where(dw != "", "demographic: " + dw, ""))
    return share_score(
        d, ok, among, "no geographic or demographic column",
        detail={"geographic": float((geo & among).sum()), "demographic": float((demo & among).sum()),
                "both": float((geo & demo & among).sum())},
        matches=evidence(d.ids[hit], why_hit),
    )


def _presence_and_currency(d: Derived, candidates: np.ndarray, why: np.ndarray, label: str) -> Score:
    """value = 50 if any candidate + 50 * share of candidates current; failing = candidates not current."""
    current = _current(d)
    n = float(candidates.sum())
    n_cur = float((candidates & current).sum())
    value = 0.0 if n == 0 else 50.0 + 50.0 * n_cur / n
    fail = candidates & ~current
    failing = evidence(d.ids[fail], [f"{label} not updated within its period / 12 months"] * int(fail.sum()))
    if n == 0:
        failing = {label: f"no {label} found"}
    return Score(value=value, numerator=n_cur, denominator=n, failing=failing,
                 matches=evidence(d.ids[candidates], why[candidates]),
                 detail={"found": n, "current": n_cur})


def goals_published(catalog: CityCatalog, as_of: datetime) -> Score:
    """PA3: goals and progress published - performance assets exist and are kept current.

    Formula: candidates = stories and measures (Socrata Perspectives / Performance) plus public data assets
    whose title, tags or category match a performance word (performance, KPI, goals, targets, scorecard,
    dashboard, progress, ...; not school progress reports, report cards or graduation outcomes);
    value = 50 if any candidate + 50 * (current candidates / candidates);
    current = HDX fresh/due for a finite period, else changed within 365 days.
    Source: research M19 (Socrata asset types); WWC PA3. Empty: 0.
    """
    d = derive(catalog, as_of)
    worded, words = d.topic_hits("performance", d.data)
    typed = d.performance_type
    cand = typed | worded
    why = np.full(d.n, "", dtype=object)
    why[worded] = words
    why[typed] = "asset type " + d.asset_type.to_numpy(dtype=object)[typed]
    return _presence_and_currency(d, cand, why, "performance asset")


def _topic(d: Derived, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(public data assets matching the census topic, "words: ..." for those rows only, in row order)."""
    return d.topic_hits(key, d.data)


# BF1 parts: budget and spending each count half; within a part, 25 for presence and 25 for at least one
# current asset (budgets are annual, one current budget table suffices). Source: US City Open Data Census
# "Budget" and "Spending" key datasets (GODI "exists" and "timely" questions).
BUDGET_PARTS = ("budget", "spending")


def budget_finance(catalog: CityCatalog, as_of: datetime) -> Score:
    """BF1: budget and spending data present and current.

    Formula: for each of budget and spending (US City Open Data Census key datasets, matched on title, tags,
    category; spending not where they name campaigns, elections, candidates or lobbying): 25 if >= 1 public
    data asset matches + 25 if >= 1 matching asset is current (HDX fresh/due, or changed within 365 days);
    value = sum (0-100). Source: US City Open Data Census; GODI timely. Empty: 0.
    """
    d = derive(catalog, as_of)
    current = _current(d)
    value = 0.0
    matches: dict[str, str] = {}
    failing: dict[str, str] = {}
    detail: dict[str, float] = {}
    for part in BUDGET_PARTS:
        hit, why = _topic(d, part)
        found = bool(hit.any())
        fresh = bool((hit & current).any())
        value += 25.0 * found + 25.0 * fresh
        matches.update(evidence(d.ids[hit], why))
        if not found:
            failing[part] = f"no {part} dataset found"
        elif not fresh:
            failing.update({i: f"{part} dataset not current" for i in d.ids[hit]})
        detail[f"{part}_found"] = float(hit.sum())
        detail[f"{part}_current"] = float((hit & current).sum())
    return Score(value=value, numerator=value / 25.0, denominator=4.0, failing=failing, matches=matches,
                 detail=detail)


def procurement(catalog: CityCatalog, as_of: datetime) -> Score:
    """RDC7: procurement and contract data present and fresh.

    Formula: candidates = public data assets matching procurement words (contracts, procurement, purchase
    orders, bids, solicitations; not where they name Business Improvement Districts or FOIA logs);
    value = 50 if any + 50 * (current candidates / candidates).
    Source: US City Open Data Census "Procurement Contracts"; HDX freshness. Empty: 0.
    """
    d = derive(catalog, as_of)
    hit, words = _topic(d, "procurement_contracts")
    why = np.full(d.n, "", dtype=object)
    why[hit] = words
    return _presence_and_currency(d, hit, why, "procurement dataset")


def census_key_datasets(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD3: coverage of the 20 US City Open Data Census key datasets.

    Formula: 100 * (key datasets with >= 1 matching public data asset) / 20; detail "<key>" = matching
    assets, "<key>:current" = current ones; failing "census:<key>" for key datasets not found.
    Source: US City Open Data Census (2018 relaunch; Sunlight Foundation / Open Knowledge). Empty: 0.
    """
    d = derive(catalog, as_of)
    current = _current(d)
    found = 0
    combined = np.full(d.n, "", dtype=object)  # per row "topic - words: ...; topic - words: ..."
    failing: dict[str, str] = {}
    detail: dict[str, float] = {}
    for key in vocab()["census"]:
        hit, why = _topic(d, key)
        detail[key] = float(hit.sum())
        detail[f"{key}:current"] = float((hit & current).sum())
        if hit.any():
            found += 1
            tag = f"{key} - " + why
            prev = combined[hit]
            combined[hit] = np.where(prev == "", tag, prev + "; " + tag)
        else:
            failing[f"census:{key}"] = "no matching public dataset"
    any_hit = combined != ""
    matches = evidence(d.ids[any_hit], combined[any_hit])
    return Score(value=clamp(100.0 * found / CENSUS_KEY_DATASETS), numerator=float(found),
                 denominator=float(CENSUS_KEY_DATASETS), failing=failing, matches=matches, detail=detail)
