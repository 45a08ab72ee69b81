"""Topic evidence found by explainable word matching: DM8 disaggregation, PA3 goals and progress, BF1 budget
and spending, RDC7 procurement, and the US City Open Data Census key datasets.

Every match records the words that matched (Score.matches), so a CDO can see why an asset counts.
Word lists live in indicators/data/vocab.json.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from indicators.base import CityCatalog, Score
from indicators.derived import Derived, derive
from indicators.periods import DUE, FRESH
from indicators.scoring import clamp, evidence, share_score
from indicators.tables import vocab
from indicators.words import norm_hit, word_pattern

# An asset without a finite declared period counts as current when its data (or, for stories and measures,
# its metadata) changed within the past 12 months - WWC's "updated within the past 12 months" (2018 DG1) and
# GODI's "timely" question. With a finite period, current = HDX fresh or due.
CURRENT_DAYS = 365
CENSUS_KEY_DATASETS = 20  # US City Open Data Census (2018): 20 key city datasets


# Where topic words are read (the idea, measured by benchmarks/topics.py on hand-labelled titles): a title names
# what a dataset is; tags and categories name what it relates to ("budget" on a payroll table, "police dashboard"
# on a list of recovered guns, "Budget and Finance" over a department's expenses). So every vocabulary phrase
# counts in the title; tags are read only where the title names no topic, and then only phrases of at least
# TAG_MIN_WORDS words ("use of force", "building permits"); categories are not read. Exclusions are read in the
# title.
TAG_MIN_WORDS = 2
# Topics whose matching precision on the hand labels is below this are "possible evidence" (vocab.json
# possible_evidence): shown with their matches, never scored. Project goal from issue 9.
MIN_PRECISION = 0.9
ANY_TOPIC = "*"  # vocab.json exclude key for phrases that void every topic (survey answers are not the records)
PERFORMANCE = "performance"


@dataclass(frozen=True)
class _Rules:
    pattern: re.Pattern[str]
    topics_of: dict[str, tuple[str, ...]]  # vocabulary phrase -> topics it names
    vetoes_of: dict[str, frozenset[str]]  # exclusion phrase -> topics it voids
    measure_words: frozenset[str]  # a title holding one states a measure ("number of", "percent of")
    topics: tuple[str, ...]


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    v = vocab()
    words = {**v["census"], PERFORMANCE: v[PERFORMANCE]}
    topics_of: dict[str, tuple[str, ...]] = {}
    for topic, ws in words.items():
        for w in ws:
            key = norm_hit(w.lower())  # the spelling _found() reports ("p-card" -> "p card")
            topics_of[key] = (*topics_of.get(key, ()), topic)
    vetoes_of: dict[str, frozenset[str]] = {}
    for topic, ws in v.get("exclude", {}).items():
        voided = frozenset(words) if topic == ANY_TOPIC else frozenset({topic})
        for w in ws:
            key = norm_hit(w.lower())
            vetoes_of[key] = vetoes_of.get(key, frozenset()) | voided
    measure_words = frozenset(norm_hit(w.lower()) for w in v.get("measure_words", ()))
    return _Rules(word_pattern(set(topics_of) | set(vetoes_of) | measure_words), topics_of, vetoes_of, measure_words,
                  tuple(words))


def _found(text: str) -> frozenset[str]:
    return frozenset(norm_hit(w) for w in _rules().pattern.findall(text.lower()))


def _explain(title: frozenset[str], tags: frozenset[str]) -> dict[str, str]:
    """Topic -> "words: ..." for one (title phrases, tag phrases) pair, after exclusions."""
    r = _rules()
    voided: set[str] = set()
    for w in title:
        voided |= r.vetoes_of.get(w, frozenset())
    # A title naming a performance measure ("Performance Metrics - ... Business Licenses", "Strategic Measure_
    # ... crashes involving City vehicles") or stating a count or share ("Number of Payments", "Percent of
    # Capital Projects ... within Budget") is a measure about a topic, not the topic's records.
    if any(PERFORMANCE in r.topics_of.get(w, ()) or w in r.measure_words for w in title):
        voided |= set(r.topics) - {PERFORMANCE}
    # Tags stand in for a title that names no topic ("R2R 2014" tagged "response to resistance"); where the
    # title names one, tag phrases do not add others ("Vendors Receiving Payments" tagged "purchase orders").
    if any(w in r.topics_of for w in title):
        tags = frozenset()
    per: dict[str, tuple[list[str], list[str]]] = {}
    for where, found in ((0, title), (1, tags)):
        for w in sorted(found):
            for topic in r.topics_of.get(w, ()):
                if topic in voided or (where == 1 and len(w.split()) < TAG_MIN_WORDS):
                    continue
                per.setdefault(topic, ([], []))[where].append(w)
    out = {}
    for topic, (in_title, in_tags) in per.items():
        parts = ([f"words: {', '.join(in_title)}"] if in_title else []) + (
            [f"tags: {', '.join(in_tags)}"] if in_tags else [])
        out[topic] = "; ".join(parts)
    return out


def _pairs(d: Derived) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(per row: the code of its distinct (title, tags) pair among those that match anything, -1 for none; per
    topic: the explanation per pair code, "" = no match). Computed once per Derived (PA3, BF1, RDC7 and OD3 share
    it) and once per distinct pair; per-row strings are built only for the rows an indicator asks about."""
    cached = d.__dict__.get("_topic_pairs")
    if cached is not None:
        return cached
    t_codes, t_uniq = d.distinct("title")
    k_codes, k_uniq = d.distinct("keywords")
    t_found = [_found(str(u)) for u in t_uniq] + [frozenset()]  # code -1 (missing) -> the trailing empty set
    k_found = [_found(" ; ".join(map(str, u)) if isinstance(u, (tuple, list)) else str(u)) for u in k_uniq]
    k_found.append(frozenset())
    t_any = np.array([bool(f) for f in t_found], dtype=bool)
    k_any = np.array([bool(f) for f in k_found], dtype=bool)
    rows = np.flatnonzero(t_any[t_codes] | k_any[k_codes])
    row_pair = np.full(d.n, -1, dtype=np.int64)
    per_pair: dict[str, np.ndarray] = {topic: np.full(0, "", dtype=object) for topic in _rules().topics}
    if len(rows):
        pair = t_codes[rows].astype(np.int64) * (len(k_found) + 1) + k_codes[rows]
        pair_code, pairs = pd.factorize(pair, sort=False)
        row_pair[rows] = pair_code
        first = np.zeros(len(pairs), dtype=np.int64)
        first[pair_code[::-1]] = rows[::-1]  # a representative row per pair
        per_pair = {topic: np.full(len(pairs), "", dtype=object) for topic in per_pair}
        for j, i in enumerate(first):
            for topic, why in _explain(t_found[t_codes[i]], k_found[k_codes[i]]).items():
                per_pair[topic][j] = why
    d.__dict__["_topic_pairs"] = (row_pair, per_pair)
    return row_pair, per_pair


def topic_hits(d: Derived, topic: str, among: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows in `among` matching `topic`, the explanation for those rows only, in row order)."""
    row_pair, per_pair = _pairs(d)
    table = np.append(per_pair[topic], "")  # code -1 -> ""
    matched = np.append(per_pair[topic] != "", False)
    hit = among & matched[row_pair]
    return hit, table[row_pair[hit]]


def topic_matches(catalog: pd.DataFrame, as_of: datetime) -> dict[str, np.ndarray]:
    """Per topic (the Census keys and "performance"): per row of `catalog`, why it matches ("" = it does not),
    over every row whatever its asset type - what benchmarks/topics.py measures against the hand labels."""
    d = derive(catalog, as_of)
    row_pair, per_pair = _pairs(d)
    return {topic: np.append(table, "")[row_pair] for topic, table in per_pair.items()}


@lru_cache(maxsize=1)
def possible_evidence() -> frozenset[str]:
    """Topics whose matching precision on the hand labels is below MIN_PRECISION (vocab.json; a test keeps the
    list equal to what the labels measure)."""
    return frozenset(vocab().get("possible_evidence", ()))


def scored_title(title: str, *keys: str) -> str:
    """The registry title of an indicator built on topic matches: marked when one of its topics is possible
    evidence."""
    return f"{title} (possible evidence)" if possible_evidence() & set(keys) else title


def scored_weight(weight: float, *keys: str) -> float:
    """The registry weight of an indicator built on topic matches: 0 (shown, not rolled up into its criterion)
    when one of its topics is possible evidence."""
    return 0.0 if possible_evidence() & set(keys) else weight


def _current(d: Derived) -> np.ndarray:
    dm = d.seconds("data_modified")
    last = np.where(np.isnan(dm), d.seconds("metadata_modified"), dm)
    age = (d.as_of_s - last) / 86400.0
    recent = np.nan_to_num(age, nan=np.inf) <= CURRENT_DAYS
    st = d.freshness
    return np.where(d.finite_period, (st == FRESH) | (st == DUE), recent)


# Schema -> (has a column, geographic words, demographic words), kept across calls: a schema's words depend on
# the schema and the pinned vocabulary alone, and `score --all` meets a city's schemas again at every date
# (this indicator was a third of compute_all's time there). Bounded: cleared when it would pass _SCHEMA_MEMO.
_SCHEMA_MEMO = 100_000
_SCHEMA_WORDS: dict[Any, tuple[bool, str, str]] = {}
_SCHEMA_LOCK = threading.Lock()


def _schemas_words(schemas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct schema: has a column, its geographic words, its demographic words (memoized per schema)."""
    keys = schemas.tolist()
    with _SCHEMA_LOCK:
        new = [k for k in keys if k not in _SCHEMA_WORDS]
        if new:
            if len(_SCHEMA_WORDS) + len(new) > _SCHEMA_MEMO:
                _SCHEMA_WORDS.clear()
            has, geo, demo = _schema_words(pd.Series(new, dtype=object))
            _SCHEMA_WORDS.update(zip(new, zip(has.tolist(), geo.tolist(), demo.tolist(), strict=True), strict=True))
        found = [_SCHEMA_WORDS[k] for k in keys]
    has_s = np.array([f[0] for f in found], dtype=bool)
    geo_s = np.array([f[1] for f in found], dtype=object)
    demo_s = np.array([f[2] for f in found], dtype=object)
    return has_s, geo_s, demo_s


def _schema_words(schemas: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per schema (a Series of column tuples): has a column, its geographic words, its demographic words.

    Work per distinct column name and type: names repeat across a catalog's schemas."""
    v = vocab()
    n = len(schemas)
    has_schema = np.zeros(n, dtype=bool)
    gs, ms = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    cols = schemas.reset_index(drop=True).explode()  # index = schema number
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
            out = np.full(n, "", dtype=object)
            hit = words != ""
            if hit.any():
                pairs = pd.DataFrame({"s": sch[hit], "w": words[hit]})
                pairs = (pairs.assign(w=pairs["w"].str.split(", ")).explode("w")
                         .drop_duplicates().sort_values(["s", "w"]))
                joined = pairs.groupby("s", sort=False)["w"].agg(", ".join)
                out[joined.index.to_numpy()] = joined.to_numpy()
            return out

        has_schema[sch] = True
        gs, ms = per_schema(g), per_schema(m)
    return has_schema, gs, ms


def disaggregation(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM8: disaggregation-ready datasets - public tabular assets with geographic or demographic columns.

    Formula: 100 * (tabular data assets with >= 1 column whose name matches a geographic word (tract, ward,
    district, ZIP, community area, latitude, ...) or whose type is a geometry (point, location, polygon ...),
    or a demographic word (race, ethnicity, sex, gender, age, income, ...)) / tabular data assets with columns.
    detail geographic / demographic / both. Source: ODIN disaggregation elements (Open Data Watch);
    word lists in indicators/data/vocab.json. Empty: None.
    """
    d = derive(catalog, as_of)
    schema_code, schemas = d.distinct("columns")
    has_s, geo_s, demo_s = _schemas_words(schemas)
    rows = np.flatnonzero(schema_code >= 0)
    has_cols = np.zeros(d.n, dtype=bool)
    geo_words = np.full(d.n, "", dtype=object)
    demo_words = np.full(d.n, "", dtype=object)
    has_cols[rows] = has_s[schema_code[rows]]
    geo_words[rows] = geo_s[schema_code[rows]]
    demo_words[rows] = demo_s[schema_code[rows]]
    geo = geo_words != ""
    demo = demo_words != ""
    among = d.tabular & has_cols
    ok = geo | demo
    hit = among & ok
    # why a row counts, written once per distinct schema (rows share a few thousand schemas)
    why_s = (np.where(geo_s != "", "geographic: " + geo_s, "") + np.where((geo_s != "") & (demo_s != ""), "; ", "")
             + np.where(demo_s != "", "demographic: " + demo_s, ""))
    why_hit = why_s[schema_code[hit]]
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
    whose title names a performance measure (performance measures / metrics / indicators, KPI, strategic
    measure, goals, scorecard, metrics, stat; read in tags only as a phrase of two words or more; not
    "dashboard" or "progress" alone, not school progress reports, report cards, schools or surveys) - the
    word matches only while "performance" is not possible evidence (vocab.json: precision below 0.9 on the
    hand labels; then they are shown, not counted, and the asset types alone count);
    value = 50 if any candidate + 50 * (current candidates / candidates);
    current = HDX fresh/due for a finite period, else changed within 365 days.
    Source: research M19 (Socrata asset types); WWC PA3. Empty: 0.
    """
    d = derive(catalog, as_of)
    worded, words = topic_hits(d, PERFORMANCE, d.data)
    typed = d.performance_type
    possible = PERFORMANCE in possible_evidence()
    cand = typed if possible else typed | worded
    why = np.full(d.n, "", dtype=object)
    why[worded] = words
    why[typed] = "asset type " + d.asset_type.to_numpy(dtype=object)[typed]
    score = _presence_and_currency(d, cand, why, "performance asset")
    if not possible:
        return score
    shown = worded & ~typed
    return replace(score, matches={**score.matches, **evidence(d.ids[shown], "possible evidence, not counted - "
                                                               + why[shown])},
                   detail={**score.detail, "possible": float(shown.sum())})


def _topic(d: Derived, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(public data assets matching the census topic, "words: ..." for those rows only, in row order)."""
    return topic_hits(d, key, d.data)


# BF1 parts: budget and spending each count half; within a part, 25 for presence and 25 for at least one
# current asset (budgets are annual, one current budget table suffices). Source: US City Open Data Census
# "Budget" and "Spending" key datasets (GODI "exists" and "timely" questions).
BUDGET_PARTS = ("budget", "spending")


def budget_finance(catalog: CityCatalog, as_of: datetime) -> Score:
    """BF1: budget and spending data present and current.

    Formula: for each of budget (budget, appropriations, financial / capital plan) and spending (expenditures,
    expenses, payments, checkbook, purchase cards; not where the title names a budget, taxes, fees, revenue,
    campaigns, elections or lobbying) - US City Open Data Census key datasets, matched on the title and on
    tag phrases of two words or more: 25 if >= 1 public data asset matches + 25 if >= 1 matching asset is
    current (HDX fresh/due, or changed within 365 days); value = sum (0-100).
    Source: US City Open Data Census; GODI timely. Empty: 0.
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

    Formula: candidates = public data assets whose title (or a tag phrase of two words or more) names
    procurement (contracts, procurement, purchase orders, purchasing, bids, solicitations, RFPs; not vendor
    lists, not where they name Business Improvement Districts or FOIA logs);
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

    Formula: 100 * (key datasets with >= 1 matching public data asset) / 20, matched on the title and on tag
    phrases of two words or more (a title naming a performance measure or a survey is not a key dataset);
    a key dataset whose matching precision on the hand labels is below 0.9 ("possible evidence",
    vocab.json) is shown with its matches but not counted - it counts as not found; detail "<key>" = matching
    assets, "<key>:current" = current ones; failing "census:<key>" for key datasets not found or only possible.
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
        possible = key in possible_evidence()
        if hit.any():
            found += not possible
            tag = f"{key} - " + ("possible evidence, not counted - " if possible else "") + why
            prev = combined[hit]
            combined[hit] = np.where(prev == "", tag, prev + "; " + tag)
        if possible:
            failing[f"census:{key}"] = (f"possible evidence only: word matching for this key dataset is below "
                                        f"{MIN_PRECISION:.0%} precision on hand-labelled titles")
        elif not hit.any():
            failing[f"census:{key}"] = "no matching public dataset"
    any_hit = combined != ""
    matches = evidence(d.ids[any_hit], combined[any_hit])
    return Score(value=clamp(100.0 * found / CENSUS_KEY_DATASETS), numerator=float(found),
                 denominator=float(CENSUS_KEY_DATASETS), failing=failing, matches=matches, detail=detail)
