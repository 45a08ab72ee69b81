"""Indicators -> WWC criteria: a roll-up per criterion with a maturity stage, one status per criterion of the
2022 standard (metadata / manual / open) and an estimate of the certification level.

Thresholds are absolute, so every city is on one scale. Stages step by 20 points (project choice);
"leading" starts at 80, WWC's own bar for inventory department coverage (> 80%, 2018 DG1), and a criterion
counts as evidenced by metadata from "established" (60) on. OD1 needs its policy document: metadata alone
never meets it. Manual evidence (URL, date, note) a CDO records meets any criterion and is shown as such.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import cast

import numpy as np
import pandas as pd

from indicators.base import Score
from indicators.frame import load_json
from indicators.registry import REGISTRY

# Maturity stage from the criterion value (0-100), lower bounds. Project choice in steps of 20; "leading"
# starts at 80, WWC's own bar for inventory department coverage (> 80%, 2018 DG1). NaN -> "not evident".
STAGES = ((80.0, "leading"), (60.0, "established"), (40.0, "developing"), (20.0, "emerging"), (0.0, "not evident"))
STAGE_ORDER = ("not evident", "emerging", "developing", "established", "leading")
# Portal metadata evidences a criterion as met from the "established" stage on.
MET_FROM = 60.0
# Criteria whose core requirement is a document no catalog can show (OD1: a codified open data policy).
# Metadata is shown as supporting evidence; "met" needs a manual record.
NEEDS_DOCUMENT = frozenset({"OD1"})
# Certification bands on the share of criteria met (wwc-criteria.json notes: WWC methodology 2019).
LEVELS = ((0.84, "Platinum"), (0.67, "Gold"), (0.51, "Silver"))
# The seed file writes RD1 where its siblings use RDC (its notes say: treat it as RDC1).
ID_FIXES = {"RD1": "RDC1"}


@lru_cache(maxsize=1)
def wwc_criteria() -> pd.DataFrame:
    """The 2022 WWC criteria shipped in indicators/data/wwc-criteria.json: criterion, practice, title."""
    data = load_json("wwc-criteria.json")
    rows = [{"criterion": ID_FIXES.get(c["id"], c["id"]), "practice": c["practice"], "title": c["title"]}
            for c in data["criteria"]]
    return pd.DataFrame(rows, columns=["criterion", "practice", "title"])


def stage(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not evident"
    return next(name for low, name in STAGES if value >= low)


def rollup(scores: Mapping[str, Score]) -> pd.DataFrame:
    """Per criterion: weighted mean of its indicators' values (None values and weight 0 left out) and stage.

    Columns: criterion, value (0-100 or NaN), stage, indicators (n with a value and weight > 0).
    """
    rows = []
    by_crit: dict[str, list[tuple[float, float]]] = {}
    for ind in REGISTRY:
        by_crit.setdefault(ind.criterion, [])
        s = scores.get(ind.key)
        if s is None or s.value is None or ind.weight <= 0 or math.isnan(s.value):
            continue
        by_crit[ind.criterion].append((float(s.value), ind.weight))
    for crit, vals in by_crit.items():
        if vals:
            v = float(np.average([x for x, _ in vals], weights=[w for _, w in vals]))
        else:
            v = float("nan")
        rows.append({"criterion": crit, "value": v, "stage": stage(v), "indicators": len(vals)})
    return pd.DataFrame(rows, columns=["criterion", "value", "stage", "indicators"])


def _manual_text(rows: pd.DataFrame) -> str:
    """"manual record - url (date): note [source]; ..." for the few records of one criterion."""
    parts = []
    for r in rows.to_dict("records"):  # a handful of manual records, not a catalog
        url = r.get("url") if isinstance(r.get("url"), str) and r.get("url") else "(no URL)"
        date = r.get("date")
        when = ""
        if date is not None and not (isinstance(date, float) and math.isnan(date)) and str(date).strip():
            try:
                when = f" ({pd.Timestamp(date).date()})"
            except (ValueError, TypeError):
                when = f" ({date})"
        note = r.get("note")
        note = f": {note}" if isinstance(note, str) and note.strip() else ""
        source = r.get("source")
        source = f" [{source}]" if isinstance(source, str) and source else ""
        parts.append(f"{url}{when}{note}{source}")
    return "manual record - " + "; ".join(parts)


def statuses(rollup: pd.DataFrame, manual: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per 2022 WWC criterion: criterion, practice, title, status, evidence, met.

    status "metadata" = portal metadata shows the criterion at the established stage or better (value >= 60;
    not for NEEDS_DOCUMENT criteria); "manual" = a CDO recorded evidence (url, date, note); "open" otherwise.
    Metadata wins when both exist (the evidence text then lists both). Manual rows are taken as given.
    """
    crit = wwc_criteria().copy()
    roll = rollup.set_index("criterion") if len(rollup) else pd.DataFrame(columns=["value", "stage", "indicators"])
    roll = roll.assign(value=pd.to_numeric(roll["value"], errors="coerce"))  # stored rows may carry None
    man = manual if manual is not None else pd.DataFrame(columns=["criterion", "url", "date", "note"])
    if len(man):
        man = man.assign(criterion=man["criterion"].astype(str).str.strip().str.upper().replace(ID_FIXES))
    keys_by_crit: dict[str, list[str]] = {}
    for ind in REGISTRY:
        if ind.weight > 0:
            keys_by_crit.setdefault(ind.criterion, []).append(ind.key)
    out = []
    for c in crit.itertuples(index=False):  # 42 criteria
        cid = str(c.criterion)
        # one roll-up row per criterion, so .loc gives the scalar
        value = float(cast(float, roll.loc[cid, "value"])) if cid in roll.index else float("nan")
        st = stage(value)
        m = man[man["criterion"] == c.criterion] if len(man) else man
        evidence: list[str] = []
        if not math.isnan(value):
            evidence.append(f"portal metadata {value:.0f}/100 ({st}) from {', '.join(keys_by_crit[cid])}")
        elif c.criterion in keys_by_crit:
            evidence.append("portal metadata: nothing to measure yet")
        meta_met = (not math.isnan(value)) and value >= MET_FROM and c.criterion not in NEEDS_DOCUMENT
        if len(m):
            evidence.append(_manual_text(m))
        if meta_met:
            status, met = "metadata", True
        elif len(m):
            status, met = "manual", True
        else:
            status, met = "open", False
            if c.criterion in NEEDS_DOCUMENT:
                evidence.append("needs the policy document: record its URL and adoption date")
            elif c.criterion in keys_by_crit:
                evidence.append(f"below {MET_FROM:.0f}: improve the portal or record a document")
            else:
                evidence.append("no portal metadata shows this: record a document (URL, date, note)")
        out.append({"criterion": c.criterion, "practice": c.practice, "title": c.title, "status": status,
                    "evidence": " | ".join(evidence), "met": met})
    return pd.DataFrame(out, columns=["criterion", "practice", "title", "status", "evidence", "met"])


def certification_estimate(statuses: pd.DataFrame) -> dict:
    """An ESTIMATE of the WWC certification level from the share of criteria met.

    Bands (wwc-criteria.json notes, WWC methodology 2019): 51-66% Silver, 67-83% Gold, >= 84% Platinum.
    Real certification also has prerequisite criteria and an assessment; this only counts.
    Returns share_met (0-1), met, total, level (None below Silver), next_level, needed (more criteria for it),
    estimate (True) and label.
    """
    total = int(len(statuses))
    met = int(statuses["met"].sum()) if total else 0
    share = met / total if total else 0.0
    level = next((name for low, name in LEVELS if share >= low), None)
    ladder = [name for _low, name in reversed(LEVELS)]  # Silver, Gold, Platinum
    next_level = ladder[0] if level is None else (ladder[ladder.index(level) + 1]
                                                   if ladder.index(level) + 1 < len(ladder) else None)
    needed = 0
    if next_level is not None:
        low = {name: lo for lo, name in LEVELS}[next_level]
        needed = max(0, math.ceil(low * total - 1e-9) - met)
    label = (f"Estimate: {met} of {total} criteria met ({share:.0%})"
             + (f" - {level} band" if level else " - below the Silver band")
             + (f"; {needed} more for {next_level}" if next_level else "")
             + ". Not a certification: WWC assesses evidence and prerequisites.")
    return {"share_met": share, "met": met, "total": total, "level": level, "next_level": next_level,
            "needed": needed, "estimate": True, "label": label}
