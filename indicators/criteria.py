"""Indicators -> WWC criteria: a roll-up per criterion with a maturity stage, one overall score and stage per
city, one status per criterion of the 2022 standard and two estimates of the certification level.

Thresholds are absolute, so every city is on one scale. Stages step by 20 points (project choice);
"leading" starts at 80, WWC's own bar for inventory department coverage (> 80%, 2018 DG1), and a criterion
counts as shown by metadata from "established" (60) on.

No score from missing evidence: within a criterion, an indicator that carries it (weight >= 1) and has no
value is "not evident" and counts 0; it is never left out to the criterion's advantage. Supporting signals
(weight under 1) count only when they have a value.

One rule for the overall score and stage: a city's overall score is the mean of the values of every
criterion that has indicators (OVERALL_CRITERIA), a criterion without a value counting 0, and its overall
stage is the stage of that score - the same inputs and the same thresholds as a criterion's stage.

What metadata can prove is data: indicators/data/wwc-criteria.json says per criterion whether portal
metadata can show it fully, partly or not at all (`metadata`, with one line why). Metadata meets a "full"
criterion from the established stage on; a "partial" criterion at that stage is only "supported by metadata"
and counts as met once a manual evidence record (URL, date, note) confirms it; a "none" criterion needs a
record. Manual evidence a CDO records meets any criterion and is shown as such. Two estimates follow:
*proven* (metadata-proven plus recorded evidence) and *if the supported criteria are confirmed*.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, cast

import pandas as pd

from indicators.base import Score
from indicators.registry import BY_KEY, REGISTRY
from indicators.tables import load_json

# Maturity stage from the criterion value (0-100), lower bounds. Project choice in steps of 20; "leading"
# starts at 80, WWC's own bar for inventory department coverage (> 80%, 2018 DG1). NaN -> "not evident".
STAGES = ((80.0, "leading"), (60.0, "established"), (40.0, "developing"), (20.0, "emerging"), (0.0, "not evident"))
STAGE_ORDER = ("not evident", "emerging", "developing", "established", "leading")
# Portal metadata shows a criterion from the "established" stage on.
MET_FROM = 60.0
# An indicator carries its criterion from this weight on: without a value it counts 0 ("not evident").
CARRYING_WEIGHT = 1.0
# What portal metadata can show of a criterion (wwc-criteria.json `metadata`).
METADATA_LEVELS = ("full", "partial", "none")
# Certification bands on the share of criteria met (wwc-criteria.json notes: WWC methodology 2019).
LEVELS = ((0.84, "Platinum"), (0.67, "Gold"), (0.51, "Silver"))
# The seed file writes RD1 where its siblings use RDC (its notes say: treat it as RDC1).
ID_FIXES = {"RD1": "RDC1"}
# The criteria the overall score averages: those with an indicator that counts in its roll-up.
OVERALL_CRITERIA: tuple[str, ...] = tuple(dict.fromkeys(i.criterion for i in REGISTRY if i.weight > 0))


@lru_cache(maxsize=1)
def wwc_criteria() -> pd.DataFrame:
    """The 2022 WWC criteria shipped in indicators/data/wwc-criteria.json: criterion, practice, title, metadata
    ("full" | "partial" | "none": what portal metadata can show of it) and metadata_why (one line)."""
    data = load_json("wwc-criteria.json")
    rows = []
    for c in data["criteria"]:
        if c.get("metadata") not in METADATA_LEVELS or not str(c.get("metadata_why") or "").strip():
            raise ValueError(f"wwc-criteria.json: {c.get('id')}: metadata must be one of {METADATA_LEVELS} "
                             f"with a metadata_why line")
        rows.append({"criterion": ID_FIXES.get(c["id"], c["id"]), "practice": c["practice"], "title": c["title"],
                     "metadata": c["metadata"], "metadata_why": c["metadata_why"]})
    return pd.DataFrame(rows, columns=["criterion", "practice", "title", "metadata", "metadata_why"])


def stage(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not evident"
    return next(name for low, name in STAGES if value >= low)


def _value(s: Score | None) -> float | None:
    if s is None or s.value is None or math.isnan(s.value):
        return None
    return float(s.value)


def rollup(scores: Mapping[str, Score]) -> pd.DataFrame:
    """Per criterion: weighted mean of its indicators' values and the stage of that value.

    An indicator of weight >= CARRYING_WEIGHT without a value (or not scored) counts 0 and is named in
    `not_evident`; one of weight under it counts only with a value; weight 0 never counts (cross-checks).
    Columns: criterion, value (0-100; NaN only when nothing counts), stage, indicators (n with a value and
    weight > 0), not_evident (the carrying indicators counted 0, comma-separated; "" when none).
    """
    parts: dict[str, list[tuple[float, float]]] = {}
    with_value: dict[str, int] = {}
    missing: dict[str, list[str]] = {}
    for ind in REGISTRY:
        parts.setdefault(ind.criterion, [])
        with_value.setdefault(ind.criterion, 0)
        missing.setdefault(ind.criterion, [])
        if ind.weight <= 0:
            continue
        v = _value(scores.get(ind.key))
        if v is not None:
            parts[ind.criterion].append((v, ind.weight))
            with_value[ind.criterion] += 1
        elif ind.weight >= CARRYING_WEIGHT:
            parts[ind.criterion].append((0.0, ind.weight))  # not evident: counts 0, never dropped
            missing[ind.criterion].append(ind.key)
    rows = []
    for crit, vals in parts.items():
        total = sum(w for _, w in vals)
        v = sum(x * w for x, w in vals) / total if total else float("nan")
        rows.append({"criterion": crit, "value": v, "stage": stage(v), "indicators": with_value[crit],
                     "not_evident": ", ".join(missing[crit])})
    return pd.DataFrame(rows, columns=["criterion", "value", "stage", "indicators", "not_evident"])


def stored_rollup(rows: pd.DataFrame) -> pd.DataFrame:
    """The `rollup` shape rebuilt from the stored score rows of one scoring (storage.scores columns criterion,
    indicator ("" = the criterion's row), value, stage): value and stage as stored; indicators and
    not_evident from the stored indicator rows, so the pages and exports say what counted 0."""
    cols = ["criterion", "value", "stage", "indicators", "not_evident"]
    crit = rows[rows["indicator"] == ""]
    if crit.empty:
        return pd.DataFrame(columns=cols)
    stored = {str(k): v for k, v in zip(rows["indicator"], pd.to_numeric(rows["value"], errors="coerce"),
                                         strict=True) if k}
    with_value: dict[str, int] = {}
    missing: dict[str, list[str]] = {}
    for ind in REGISTRY:
        if ind.weight <= 0 or ind.key not in stored:
            continue
        if not pd.isna(stored[ind.key]):
            with_value[ind.criterion] = with_value.get(ind.criterion, 0) + 1
        elif ind.weight >= CARRYING_WEIGHT:
            missing.setdefault(ind.criterion, []).append(ind.key)
    return pd.DataFrame({
        "criterion": crit["criterion"].tolist(), "value": crit["value"].tolist(), "stage": crit["stage"].tolist(),
        "indicators": [with_value.get(str(c), 0) for c in crit["criterion"]],
        "not_evident": [", ".join(missing.get(str(c), [])) for c in crit["criterion"]],
    }, columns=cols)


def overall_score(values: Mapping[str, float | None]) -> float | None:
    """A city's overall score: the mean over OVERALL_CRITERIA of their values, a missing one counting 0.

    `values` maps criterion -> value (a roll-up or the stored criterion rows of one scoring); None when it
    holds none of OVERALL_CRITERIA (never scored). The overall stage is `stage(overall_score(...))`.
    One implementation: this is `overall_frame` on one group.
    """
    rows = pd.DataFrame({"criterion": list(values), "value": list(values.values()), "one": 0})
    out = overall_frame(rows, ["one"])
    return None if out.empty else float(out["value"].iloc[0])


def overall_frame(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """`overall_score` and its stage per group of criterion rows (columns criterion, value and `by`, e.g. the
    stored roll-up rows of many cities and dates): columns *by, value, stage; one row per group that holds any
    of OVERALL_CRITERIA. Vectorised, for the dashboard's history of every city."""
    cols = [*by, "value", "stage"]
    mine = rows[rows["criterion"].isin(OVERALL_CRITERIA)]
    if mine.empty:
        return pd.DataFrame(columns=cols)
    values = pd.to_numeric(mine["value"], errors="coerce").fillna(0.0)  # a criterion without a value counts 0
    # one row per criterion and group: a repeated row must not count twice
    mine = mine.assign(value=values).drop_duplicates([*by, "criterion"], keep="last")
    out = pd.DataFrame(mine.groupby(list(by), as_index=False)["value"].sum())
    out["value"] = out["value"] / len(OVERALL_CRITERIA)
    out["stage"] = [stage(v) for v in out["value"]]
    return out[cols]


def overall(rollup: pd.DataFrame) -> tuple[float | None, str | None]:
    """(overall score, overall stage) of one roll-up (criterion, value columns); (None, None) when empty."""
    values = {str(c): (None if pd.isna(v) else float(v))
              for c, v in zip(rollup["criterion"], rollup["value"], strict=True)} if len(rollup) else {}
    score = overall_score(values)
    return (None, None) if score is None else (score, stage(score))


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


def _titles(keys: list[str]) -> str:
    """Indicator keys as the titles a CDO reads, " · "-joined (a title may hold a comma)."""
    return " · ".join(BY_KEY[k].title if k in BY_KEY else k for k in keys)


def statuses(rollup: pd.DataFrame, manual: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per 2022 WWC criterion: criterion, practice, title, metadata, status, evidence, met,
    met_if_confirmed.

    status "metadata" = metadata can show the whole criterion (`metadata` "full") and shows it at the
    established stage or better (value >= 60); "manual" = a CDO recorded evidence (url, date, note);
    "supported" = metadata shows part of it (`metadata` "partial") at that stage, not met until a record
    confirms it; "open" otherwise. `met` is the proven verdict; `met_if_confirmed` also counts "supported".
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
        not_evident = str(roll.loc[cid, "not_evident"] or "") if "not_evident" in roll and cid in roll.index else ""
        st = stage(value)
        m = man[man["criterion"] == c.criterion] if len(man) else man
        evidence: list[str] = []
        if not math.isnan(value):
            evidence.append(f"portal metadata {value:.0f}/100 ({st}) from {_titles(keys_by_crit[cid])}"
                            + (f"; not evident, counted 0: {_titles(not_evident.split(', '))}"
                               if not_evident else ""))
        elif cid in keys_by_crit:
            evidence.append("portal metadata: nothing to measure yet")
        shown = (not math.isnan(value)) and value >= MET_FROM
        if len(m):
            evidence.append(_manual_text(m))
        if shown and c.metadata == "full":
            status, met, if_confirmed = "metadata", True, True
        elif len(m):
            status, met, if_confirmed = "manual", True, True
        elif shown and c.metadata == "partial":
            status, met, if_confirmed = "supported", False, True
            evidence.append(f"supported by metadata, which shows only part of it ({c.metadata_why}): "
                            "record a document (URL, date, note) to count it as met")
        else:
            status, met, if_confirmed = "open", False, False
            if c.metadata == "none" or cid not in keys_by_crit:
                evidence.append("no portal metadata shows this: record a document (URL, date, note)")
            else:
                evidence.append(f"below {MET_FROM:.0f}: improve the portal or record a document")
        out.append({"criterion": c.criterion, "practice": c.practice, "title": c.title, "metadata": c.metadata,
                    "status": status, "evidence": " | ".join(evidence), "met": met,
                    "met_if_confirmed": if_confirmed})
    return pd.DataFrame(out, columns=["criterion", "practice", "title", "metadata", "status", "evidence", "met",
                                      "met_if_confirmed"])


def _band(met: int, total: int) -> dict[str, Any]:
    """share_met, met, total, level (None below Silver), next_level, needed (more criteria for it)."""
    share = met / total if total else 0.0
    level = next((name for low, name in LEVELS if share >= low), None)
    ladder = [name for _low, name in reversed(LEVELS)]  # Silver, Gold, Platinum
    next_level = ladder[0] if level is None else (ladder[ladder.index(level) + 1]
                                                   if ladder.index(level) + 1 < len(ladder) else None)
    needed = 0
    if next_level is not None:
        low = {name: lo for lo, name in LEVELS}[next_level]
        needed = max(0, math.ceil(low * total - 1e-9) - met)
    return {"share_met": share, "met": met, "total": total, "level": level, "next_level": next_level,
            "needed": needed}


def _band_text(b: Mapping[str, Any]) -> str:
    return (f"{b['met']} of {b['total']} criteria met ({b['share_met']:.0%})"
            + (f" - {b['level']} band" if b["level"] else " - below the Silver band")
            + (f"; {b['needed']} more for {b['next_level']}" if b["next_level"] else ""))


def certification_estimate(statuses: pd.DataFrame) -> dict:
    """Two ESTIMATES of the WWC certification level from the share of criteria met, labelled.

    *Proven*: criteria met by metadata that can show them fully, or by a recorded document. *If the supported
    criteria are confirmed*: also the criteria metadata supports (shows in part at the established stage).
    Bands (wwc-criteria.json notes, WWC methodology 2019): 51-66% Silver, 67-83% Gold, >= 84% Platinum.
    Real certification also has prerequisite criteria and an assessment; this only counts.
    Returns the proven share_met (0-1), met, total, level (None below Silver), next_level, needed (more
    criteria for it), `if_confirmed` (the same keys for the second estimate), `supported` (criteria that a
    record would confirm), estimate (True), label (both, in words), proven_label and if_confirmed_label.
    """
    total = int(len(statuses))
    met = int(statuses["met"].sum()) if total else 0
    col = "met_if_confirmed" if "met_if_confirmed" in statuses else "met"
    met_if = int((statuses[col] | statuses["met"]).sum()) if total else 0
    proven = _band(met, total)
    if_confirmed = _band(met_if, total)
    proven_label = "Proven: " + _band_text(proven) + "."
    if_label = "If the supported criteria are confirmed: " + _band_text(if_confirmed) + "."
    label = (f"Estimate. {proven_label} {if_label} Not a certification: WWC assesses evidence and "
             "prerequisites.")
    return {**proven, "if_confirmed": if_confirmed, "supported": met_if - met, "estimate": True, "label": label,
            "proven_label": proven_label, "if_confirmed_label": if_label}
