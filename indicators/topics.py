"""Topic evidence found by explainable word matching: DM8 disaggregation, PA3 goals and progress, BF1 budget
and spending, RDC7 procurement, and the US City Open Data Census key datasets.

Every match records the words that matched (Score.matches), so a CDO can see why an asset counts.
Word lists live in indicators/data/vocab.json.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from indicators.base import Score
from indicators.frame import DUE, FRESH, clamp, derive, match_words, share_score, vocab, word_pattern

# An asset without a finite declared period counts as current when its data (or, for stories and measures,
# its metadata) changed within the past 12 months - WWC's "updated within the past 12 months" (2018 DG1) and
# GODI's "timely" question. With a finite period, current = HDX fresh or due.
CURRENT_DAYS = 365
CENSUS_KEY_DATASETS = 20  # US City Open Data Census (2018): 20 key city datasets


def _current(d) -> np.ndarray:
    last = d.cat["data_modified"].where(d.cat["data_modified"].notna(), d.cat["metadata_modified"])
    age = ((d.as_of - last) / pd.Timedelta(days=1)).to_numpy(dtype=float, na_value=np.nan)
    recent = np.nan_to_num(age, nan=np.inf) <= CURRENT_DAYS
    st = d.freshness
    return np.where(d.finite_period, (st == FRESH) | (st == DUE), recent)


def _split_camel(s: pd.Series) -> pd.Series:
    return (s.str.replace(r"([a-z])([A-Z])", r"\1 \2", regex=True).str.lower()
            .str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip())


def disaggregation(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """DM8: disaggregation-ready datasets - public tabular assets with geographic or demographic columns.

    Formula: 100 * (tabular data assets with >= 1 column whose name matches a geographic word (tract, ward,
    district, ZIP, community area, latitude, ...) or whose type is a geometry (point, location, polygon ...),
    or a demographic word (race, ethnicity, sex, gender, age, income, ...)) / tabular data assets with columns.
    detail geographic / demographic / both. Source: ODIN disaggregation elements (Open Data Watch);
    word lists in indicators/data/vocab.json. Empty: None.
    """
    d = derive(catalog, as_of)
    v = vocab()
    cols = d.cat["columns"].reset_index(drop=True).explode()
    cols = cols[cols.notna()]
    geo_words = pd.Series("", index=range(d.n), dtype=object)
    demo_words = pd.Series("", index=range(d.n), dtype=object)
    has_cols = np.zeros(d.n, dtype=bool)
    if len(cols):
        rows = cols.index.to_numpy()
        has_cols[rows] = True
        names = cols.map(lambda c: c[0] if isinstance(c, (tuple, list)) and c else str(c)).astype(str)
        types = cols.map(lambda c: c[1] if isinstance(c, (tuple, list)) and len(c) > 1 else "").astype(str)
        names = pd.Series(_split_camel(names).to_numpy(), dtype=object)
        g = match_words(names, word_pattern(v["geographic_columns"]))
        t = pd.Series(types.str.lower().to_numpy(), dtype=object)
        gt = t.where(t.isin(v["geographic_types"]), "")
        g = g.where(gt.eq(""), (g + ", " + gt + " column").str.strip(", "))
        m = match_words(names, word_pattern(v["demographic_columns"]))
        frame = pd.DataFrame({"row": rows, "g": g.to_numpy(), "m": m.to_numpy()})

        def join(s: pd.Series) -> str:
            return ", ".join(sorted({w for x in s if x for w in x.split(", ")}))

        gg = frame[frame["g"] != ""].groupby("row")["g"].agg(join)
        mm = frame[frame["m"] != ""].groupby("row")["m"].agg(join)
        geo_words.iloc[gg.index.to_numpy()] = gg.to_numpy()
        demo_words.iloc[mm.index.to_numpy()] = mm.to_numpy()
    geo = geo_words.ne("").to_numpy()
    demo = demo_words.ne("").to_numpy()
    among = d.tabular & has_cols
    ok = geo | demo
    why = (("geographic: " + geo_words).where(geo, "") + np.where(geo & demo, "; ", "")
           + ("demographic: " + demo_words).where(demo, ""))
    hit = among & ok
    return share_score(
        d, ok, among, "no geographic or demographic column",
        detail={"geographic": float((geo & among).sum()), "demographic": float((demo & among).sum()),
                "both": float((geo & demo & among).sum())},
        matches=dict(zip(d.ids[hit], why.to_numpy(dtype=object)[hit])),
    )


def _presence_and_currency(d, candidates: np.ndarray, why: np.ndarray, label: str) -> Score:
    """value = 50 if any candidate + 50 * share of candidates current; failing = candidates not current."""
    current = _current(d)
    n = float(candidates.sum())
    n_cur = float((candidates & current).sum())
    value = 0.0 if n == 0 else 50.0 + 50.0 * n_cur / n
    fail = candidates & ~current
    failing = dict(zip(d.ids[fail], [f"{label} not updated within its period / 12 months"] * int(fail.sum())))
    if n == 0:
        failing = {label: f"no {label} found"}
    return Score(value=value, numerator=n_cur, denominator=n, failing=failing,
                 matches=dict(zip(d.ids[candidates], why[candidates])),
                 detail={"found": n, "current": n_cur})


def goals_published(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """PA3: goals and progress published - performance assets exist and are kept current.

    Formula: candidates = stories and measures (Socrata Perspectives / Performance) plus public data assets
    whose title, tags or category match a performance word (performance, KPI, goals, targets, scorecard,
    dashboard, progress, ...); value = 50 if any candidate + 50 * (current candidates / candidates);
    current = HDX fresh/due for a finite period, else changed within 365 days.
    Source: research M19 (Socrata asset types); WWC PA3. Empty: 0.
    """
    d = derive(catalog, as_of)
    words = d.matches(vocab()["performance"]).to_numpy(dtype=object)
    typed = d.performance_type
    cand = typed | (d.data & (words != ""))
    why = np.where(typed, "asset type " + d.asset_type.to_numpy(dtype=object).astype(str),
                   "words: " + words.astype(str)).astype(object)
    return _presence_and_currency(d, cand, why, "performance asset")


def _topic(d, key: str) -> tuple[np.ndarray, np.ndarray]:
    w = d.census_matches[key].to_numpy(dtype=object)
    hit = d.data & (w != "")
    return hit, ("words: " + w.astype(str)).astype(object)


# BF1 parts: budget and spending each count half; within a part, 25 for presence and 25 for at least one
# current asset (budgets are annual, one current budget table suffices). Source: US City Open Data Census
# "Budget" and "Spending" key datasets (GODI "exists" and "timely" questions).
BUDGET_PARTS = ("budget", "spending")


def budget_finance(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """BF1: budget and spending data present and current.

    Formula: for each of budget and spending (US City Open Data Census key datasets, matched on title, tags,
    category): 25 if >= 1 public data asset matches + 25 if >= 1 matching asset is current (HDX fresh/due, or
    changed within 365 days); value = sum (0-100). Source: US City Open Data Census; GODI timely. Empty: 0.
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
        matches.update(dict(zip(d.ids[hit], why[hit])))
        if not found:
            failing[part] = f"no {part} dataset found"
        elif not fresh:
            failing.update({i: f"{part} dataset not current" for i in d.ids[hit]})
        detail[f"{part}_found"] = float(hit.sum())
        detail[f"{part}_current"] = float((hit & current).sum())
    return Score(value=value, numerator=value / 25.0, denominator=4.0, failing=failing, matches=matches,
                 detail=detail)


def procurement(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """RDC7: procurement and contract data present and fresh.

    Formula: candidates = public data assets matching procurement words (contracts, procurement, purchase
    orders, bids, solicitations); value = 50 if any + 50 * (current candidates / candidates).
    Source: US City Open Data Census "Procurement Contracts"; HDX freshness. Empty: 0.
    """
    d = derive(catalog, as_of)
    hit, why = _topic(d, "procurement_contracts")
    return _presence_and_currency(d, hit, why, "procurement dataset")


def census_key_datasets(catalog: pd.DataFrame, as_of: datetime) -> Score:
    """OD3: coverage of the 20 US City Open Data Census key datasets.

    Formula: 100 * (key datasets with >= 1 matching public data asset) / 20; detail "<key>" = matching
    assets, "<key>:current" = current ones; failing "census:<key>" for key datasets not found.
    Source: US City Open Data Census (2018 relaunch; Sunlight Foundation / Open Knowledge). Empty: 0.
    """
    d = derive(catalog, as_of)
    current = _current(d)
    found = 0
    parts: list[pd.DataFrame] = []
    failing: dict[str, str] = {}
    detail: dict[str, float] = {}
    for key in vocab()["census"]:
        hit, why = _topic(d, key)
        detail[key] = float(hit.sum())
        detail[f"{key}:current"] = float((hit & current).sum())
        if hit.any():
            found += 1
            parts.append(pd.DataFrame({"id": d.ids[hit], "w": np.char.add(f"{key} - ", why[hit].astype(str))}))
        else:
            failing[f"census:{key}"] = "no matching public dataset"
    matches: dict[str, str] = {}
    if parts:
        joined = pd.concat(parts).groupby("id", sort=False)["w"].agg("; ".join)
        matches = dict(zip(joined.index, joined.to_numpy()))
    return Score(value=clamp(100.0 * found / CENSUS_KEY_DATASETS), numerator=float(found),
                 denominator=float(CENSUS_KEY_DATASETS), failing=failing, matches=matches, detail=detail)
