"""Data Management: DM2 comprehensive data inventory and DM3 sharing data."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from indicators.arrays import day_text, on_distinct
from indicators.base import CityCatalog, Score
from indicators.derived import derive
from indicators.scoring import mean_score, reasons_from_flags, share_score

# WWC 2018 inventory criterion (DG1): the inventory covers more than 80% of departments and was updated
# within the past 12 months (WWC Assessment Guide, research/methodologies.md 2.7).
DEPARTMENT_COVERAGE_TARGET = 0.8
INVENTORY_RECENCY_DAYS = 365
# DM3 usage: an asset counts as used with at least this many lifetime page views or downloads.
# Project choice - Socrata Site Analytics and magda report usage without a threshold.
USAGE_MIN_VIEWS = 100
USAGE_MIN_DOWNLOADS = 10


def inventory_fields(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM2: inventory field coverage - each public data asset names its owner, contact, cadence, category, licence.

    Formula: per asset share of [department, contact (e-mail or name), declared frequency (normalised or raw),
    category/theme, licence (text or id)] present; value = 100 * mean over data assets.
    Source: WWC DM2 ("detailed data inventory"); MQA publisher/contact/licence items; GSA POD required fields.
    Empty: None.
    """
    d = derive(catalog, as_of)
    items = {
        "department": d.present("department"),
        "contact": d.has_contact,
        "frequency": d.present("declared_frequency") | d.present("declared_frequency_raw"),
        "category": d.present("theme"),
        "licence": d.present("license") | d.present("license_id"),
    }
    share = np.mean(np.vstack([v.astype(float) for v in items.values()]), axis=0) if d.n else np.zeros(0)
    reasons = reasons_from_flags({k: ~v for k, v in items.items()}, "missing: ", d.n)
    detail = {f"share:{k}": (100.0 * float(v[d.data].mean()) if d.data.any() else 0.0) for k, v in items.items()}
    return mean_score(d, share, d.data, 1.0, reasons, detail=detail)


def _norm_dept(s: pd.Series) -> pd.Series:
    def norm(u: pd.Series) -> pd.Series:
        return u.astype(str).str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()

    return pd.Series(on_distinct(s, norm, ""), index=s.index, dtype=object)


def department_coverage(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM2: department coverage - city departments that publish at least one public data asset.

    Formula: 100 * |config departments named (case- and punctuation-insensitive) as the department of
    >= 1 data asset| / |config departments|; failing keys are "department:<name>". WWC target > 80%.
    Source: WWC 2018 DG1 inventory criterion; research M2. Empty: None (also without a department list in config).
    """
    d = derive(catalog, as_of)
    depts = [str(x) for x in d.facts.departments if str(x).strip()]
    if not depts:
        publishing = _norm_dept(d.cat["department"][d.data]).replace("", np.nan).dropna().nunique()
        return Score(value=None, numerator=float(publishing), denominator=0.0,
                     detail={"publishing_departments": float(publishing)})
    publishing_names = set(_norm_dept(d.cat["department"][d.data]))
    wanted = pd.Series(depts, dtype=object)
    found = _norm_dept(wanted).isin(publishing_names).to_numpy()
    failing = {f"department:{n}": "no public data asset names this department" for n in wanted[~found]}
    return Score(value=100.0 * found.sum() / len(depts), numerator=float(found.sum()), denominator=float(len(depts)),
                 failing=failing, detail={"target_share": DEPARTMENT_COVERAGE_TARGET * 100})


def publisher_attribution(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM2: publisher attribution - share of public data assets that name their department or owner.

    Formula: 100 * (data assets with a department) / data assets.
    Source: research M2 publisher attribution; MQA dct:publisher (10/405). Empty: None.
    """
    d = derive(catalog, as_of)
    counts = d.cat["department"][d.data].dropna().value_counts()
    return share_score(d, d.present("department"), d.data, "no department / owner named",
                       detail={"departments": float(len(counts))})


def inventory_recency(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM2: inventory recency - share of inventory entries reviewed or updated within the past 12 months.

    Formula: 100 * (data assets whose metadata_modified or data_modified is within 365 days of as_of) / data
    assets; detail newest_change_days = days since the newest change in the whole catalog.
    Source: WWC 2018 DG1 ("updated within the past 12 months"). Empty: None.
    """
    d = derive(catalog, as_of)
    last = np.fmax(d.seconds("metadata_modified"), d.seconds("data_modified"))
    age = (d.as_of_s - last) / 86400.0
    ok = np.nan_to_num(age, nan=np.inf) <= INVENTORY_RECENCY_DAYS

    def reason(fail: np.ndarray) -> np.ndarray:
        return "not updated in 12 months; last change " + day_text(last[fail], "never")

    newest = float(np.nanmin(age[d.data])) if d.data.any() and not np.isnan(age[d.data]).all() else float("nan")
    return share_score(d, ok, d.data, reason, detail={"newest_change_days": newest})


# --- DM3 ------------------------------------------------------------------------------------------

def api_access(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM3: share of public data assets reachable through an API endpoint.

    Formula: 100 * (data assets with an api_url, or a distribution in an API format such as Esri REST, WMS,
    WFS, SPARQL - frame.API_FORMATS) / data assets.
    Source: GODI / ODIN download options (API); Sunlight guideline #17. Empty: None.
    """
    d = derive(catalog, as_of)
    return share_score(d, d.has_api, d.data, "no API endpoint")


def bulk_download(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM3: share of public data assets with a bulk download (any format).

    Formula: 100 * (data assets with >= 1 listed format or distribution_count >= 1) / data assets.
    Source: GODI "bulk" (10/100); Sunlight guideline #16. Empty: None.
    """
    d = derive(catalog, as_of)
    return share_score(d, d.has_download, d.data, "no downloadable distribution")


def usage(catalog: CityCatalog, as_of: datetime) -> Score:
    """DM3: share of public data assets that people use (views / downloads the portal reports).

    Formula: 100 * (data assets with views >= 100 or downloads >= 10) / data assets with a usage counter;
    detail total views and downloads. Source: Socrata Site Analytics (asset access); thresholds are project
    choices (USAGE_MIN_VIEWS, USAGE_MIN_DOWNLOADS). Empty: None (also when no asset has a usage counter).
    """
    d = derive(catalog, as_of)
    views = d.cat["views"].to_numpy(dtype=float, na_value=np.nan)
    downloads = d.cat["downloads"].to_numpy(dtype=float, na_value=np.nan)
    known = d.data & (~np.isnan(views) | ~np.isnan(downloads))
    used = (np.nan_to_num(views) >= USAGE_MIN_VIEWS) | (np.nan_to_num(downloads) >= USAGE_MIN_DOWNLOADS)
    return share_score(d, used, known,
                       f"fewer than {USAGE_MIN_VIEWS} views and {USAGE_MIN_DOWNLOADS} downloads",
                       detail={"views": float(np.nansum(views[d.data])),
                               "downloads": float(np.nansum(downloads[d.data]))})


__all__ = ["inventory_fields", "department_coverage", "publisher_attribution", "inventory_recency",
           "api_access", "bulk_download", "usage"]
