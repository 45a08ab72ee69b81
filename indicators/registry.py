"""The one registry: every indicator declared once as a frozen `Indicator` (keys are permanent ids).

The formula text is read from each function's docstring (its `Formula:` paragraph), so the Methodology page,
the stored scores and the code cannot drift apart.

Weights within a criterion's roll-up (project choice): 2 for the measure that carries the criterion
(documentation index for OD2, inventory field coverage for DM2, up-to-date share and cadence adherence for
DM4), 1 for the other direct measures, 0.5 for supporting signals that depend on what a portal exposes or
on crawl luck (growth, usage counters, duplicate titles, removals), 0 for the MQA cross-check (shown, not
rolled up) and for an indicator built on topic matching whose precision on the hand-labelled titles is below
0.9 (its title says "possible evidence"; indicators/topics.py scored_weight).
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from datetime import datetime

from indicators import inventory, mqa, open_data, quality, topics
from indicators.base import CityCatalog, Indicator, Score

LABELS = ("Formula", "Source", "Empty")


def docstring_part(fn: Callable, label: str) -> str:
    """The text after `label:` in fn's docstring, up to the next label (Formula / Source / Empty) or blank line."""
    doc = inspect.getdoc(fn) or ""
    for para in doc.split("\n\n"):
        text = " ".join(line.strip() for line in para.splitlines())
        m = re.search(rf"(?:^|\s){label}:\s*(.*?)(?=\s(?:{'|'.join(LABELS)}):|$)", text)
        if m:
            return m.group(1).strip()
    return ""


def _ind(key: str, title: str, criterion: str, fn: Callable[[CityCatalog, datetime], Score],
         weight: float = 1.0) -> Indicator:
    return Indicator(key=key, title=title, criterion=criterion, formula=docstring_part(fn, "Formula"), fn=fn,
                     weight=weight, source=docstring_part(fn, "Source"))


REGISTRY: tuple[Indicator, ...] = (
    # OD1 open data policy (what metadata can show; the policy itself is manual evidence)
    _ind("od1_open_licence", "Open licence share", "OD1", open_data.open_licence),
    _ind("od1_datajson_inventory", "Valid data.json inventory", "OD1", open_data.datajson_inventory),
    # OD2 user guidance
    _ind("od2_documentation_index", "Documentation index", "OD2", open_data.documentation_index, 2.0),
    _ind("od2_data_dictionary", "Data dictionary coverage", "OD2", open_data.data_dictionary),
    # OD3 open data portal
    _ind("od3_portal_api", "Portal catalog API reachable", "OD3", open_data.portal_api),
    _ind("od3_dataset_count", "Public data assets", "OD3", open_data.dataset_count),
    _ind("od3_growth", "New data assets per 90 days", "OD3", open_data.growth, 0.5),
    _ind("od3_bulk_open_formats", "Bulk download in open machine-readable formats", "OD3",
         open_data.bulk_open_formats),
    _ind("od3_five_star", "5-star openness (3 stars or more)", "OD3", open_data.five_star),
    _ind("od3_census_key_datasets", "US City Open Data Census key datasets", "OD3", topics.census_key_datasets),
    _ind("od3_mqa", "MQA-equivalent metadata quality (0-405)", "OD3", mqa.mqa_points, 0.0),
    # DM2 data inventory
    _ind("dm2_inventory_fields", "Inventory field coverage", "DM2", inventory.inventory_fields, 2.0),
    _ind("dm2_department_coverage", "Departments publishing", "DM2", inventory.department_coverage),
    _ind("dm2_publisher_attribution", "Publisher attribution", "DM2", inventory.publisher_attribution),
    _ind("dm2_inventory_recency", "Inventory entries updated in 12 months", "DM2", inventory.inventory_recency),
    # DM3 sharing data
    _ind("dm3_api_access", "API access", "DM3", inventory.api_access),
    _ind("dm3_bulk_download", "Bulk download", "DM3", inventory.bulk_download),
    _ind("dm3_usage", "Assets in use (views / downloads)", "DM3", inventory.usage, 0.5),
    # DM4 data quality
    _ind("dm4_cadence_declared", "Declared update cadence", "DM4", quality.cadence_declared),
    _ind("dm4_up_to_date", "Up to date (HDX fresh or due)", "DM4", quality.up_to_date, 2.0),
    _ind("dm4_cadence_adherence", "Cadence adherence over history", "DM4", quality.cadence_adherence, 2.0),
    _ind("dm4_days_behind", "Days behind schedule (by department)", "DM4", quality.days_behind),
    _ind("dm4_metadata_conformance", "Valid dates, e-mails and URLs", "DM4", quality.metadata_conformance),
    _ind("dm4_unique_titles", "Unique titles", "DM4", quality.unique_titles, 0.5),
    _ind("dm4_retention", "Data assets kept between harvests", "DM4", quality.retention, 0.5),
    # beyond the card
    _ind("dm8_disaggregation", "Disaggregation-ready datasets", "DM8", topics.disaggregation),
    _ind("pa3_goals_published", "Goals and progress published", "PA3", topics.goals_published),
    _ind("bf1_budget_finance",
         topics.scored_title("Budget and spending data present and current", *topics.BUDGET_PARTS), "BF1",
         topics.budget_finance, topics.scored_weight(1.0, *topics.BUDGET_PARTS)),
    _ind("rdc7_procurement",
         topics.scored_title("Procurement and contract data present and fresh", "procurement_contracts"), "RDC7",
         topics.procurement, topics.scored_weight(1.0, "procurement_contracts")),
)

BY_KEY: dict[str, Indicator] = {i.key: i for i in REGISTRY}
# indicator key -> WWC criterion: what the pipeline hands storage.save_scores (storage does not import indicators)
CRITERION_OF: dict[str, str] = {i.key: i.criterion for i in REGISTRY}
