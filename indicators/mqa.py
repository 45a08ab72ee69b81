"""An MQA-equivalent score (0-405): the data.europa.eu Metadata Quality Assessment applied to our records.

A cross-check against the European methodology, not a WWC criterion: it is registered under OD3 with weight
0, so it shows next to the portal criterion without moving its roll-up.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from indicators.base import CityCatalog, Score
from indicators.derived import derive
from indicators.scoring import evidence

MQA_MAX_POINTS = 405
# Points per MQA item (data.europa.eu MQA methodology; research/methodologies.md 2.2). Items we cannot
# measure from catalog metadata alone (spatial / temporal coverage fields the record does not carry, HTTP
# checks of access and download URLs, media types, rights, byte size) score 0 and are listed in
# MQA_UNMEASURED so the gap is explicit.
MQA_POINTS = {
    "keywords": 30, "categories": 30,                                 # findability (of 100)
    "access_url": 50, "download_url": 20,                             # accessibility (of 100)
    "format": 20, "format_vocabulary": 10, "non_proprietary": 20,     # interoperability (of 110)
    "machine_readable": 20, "dcat_compliance": 30,
    "licence": 20, "licence_vocabulary": 10, "access_rights": 10,     # reusability (of 75)
    "access_rights_vocabulary": 5, "contact_point": 20, "publisher": 10,
    "issued": 5, "modified": 5,                                       # contextuality (of 20)
}
MQA_UNMEASURED = {"geo_search": 20, "time_search": 20, "download_url_accessible": 30, "media_type": 10,
                  "rights": 5, "byte_size": 5}
ACCESS_LEVELS = ("public", "restricted public", "non-public")
# MQA rating bands on 0-405: Excellent 351-405, Good 221-350, Sufficient 121-220, Bad 0-120.
MQA_BANDS = ((351, "excellent"), (221, "good"), (121, "sufficient"), (0, "bad"))


def mqa_points(catalog: CityCatalog, as_of: datetime) -> Score:
    """OD3 (cross-check, weight 0): MQA-equivalent metadata quality, 0-405 points normalised to 0-100.

    Formula: points = sum over MQA items of item points * share of public data assets passing it
    (interoperability items on the best distribution); access_url = landing or API URL present (not
    link-checked); dcat_compliance = 30 when the facts say data.json passed the schema with 0 errors;
    value = 100 * points / 405; detail holds raw points per item, the total and the MQA band.
    Source: data.europa.eu MQA methodology (points and bands). Empty: None.
    """
    d = derive(catalog, as_of)
    among = d.data
    n = float(among.sum())
    if not n:
        return Score(value=None, numerator=0.0, denominator=float(MQA_MAX_POINTS))
    stars, mr, omr = d.stars_by_format
    known_fmt = d.format_known
    access = pd.Series(d.per_distinct("access_level", lambda u: u.astype(str).str.lower().str.strip(), ""),
                       dtype=object)
    dj = d.facts.datajson
    dj_ok = dj.present and dj.validated and dj.error_count == 0
    passes = {
        "keywords": d.n_keywords >= 1,
        "categories": d.present("theme"),
        "access_url": d.present("landing_url") | d.present("api_url"),
        "download_url": d.has_download,
        "format": stars >= 0,
        "format_vocabulary": known_fmt,
        "non_proprietary": omr,
        "machine_readable": mr,
        "dcat_compliance": np.full(d.n, dj_ok),
        "licence": d.present("license") | d.present("license_id"),
        "licence_vocabulary": pd.Series(d.licence_id, dtype=object).notna().to_numpy(),
        "access_rights": access.ne("").to_numpy(),
        "access_rights_vocabulary": access.isin(ACCESS_LEVELS).to_numpy(),
        "contact_point": d.has_contact,
        "publisher": d.present("department"),
        "issued": d.cat["created"].notna().to_numpy(),
        "modified": d.cat["metadata_modified"].notna().to_numpy(),
    }
    detail = {k: MQA_POINTS[k] * float((v & among).sum()) / n for k, v in passes.items()}
    total = float(sum(detail.values()))
    detail["points"] = total
    detail["unmeasured_points"] = float(sum(MQA_UNMEASURED.values()))
    band = next(name for low, name in MQA_BANDS if total >= low)
    detail[f"band:{band}"] = 1.0
    # per asset points, for the evidence list: assets scoring under the "sufficient" band
    per = np.zeros(d.n)
    for k, v in passes.items():
        per += MQA_POINTS[k] * v
    fail = among & (per < MQA_BANDS[2][0])
    reasons = np.char.add(np.char.mod("%d", per[fail].astype(int)), " of 405 MQA points").astype(object)
    return Score(value=100.0 * total / MQA_MAX_POINTS, numerator=total, denominator=float(MQA_MAX_POINTS),
                 failing=evidence(d.ids[fail], reasons), detail=detail)
