"""No score from missing evidence, as properties over real catalogs.

Hypothesis draws a slice of a real recorded catalog (tests/fixtures: Socrata Discovery scrapes of several
cities, DCAT-US data.json documents of ArcGIS Hub and Socrata portals, a CKAN package_search), normalized by
the real connectors, with a drawn history. Then it takes evidence away: every declared cadence, or a whole
metadata field a portal might not publish. No criterion may score higher without the evidence than with it.
"""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indicators
from connectors import ckan, dcat, socrata
from connectors.archive import read_items
from connectors.base import RECORD_FIELDS, DatasetRecord, records_frame
from indicators import criteria
from indicators.base import CityCatalog, DatajsonCheck, PortalFacts, RunFact

FIXTURES = Path(__file__).parents[1] / "fixtures"
AS_OF = datetime(2022, 7, 23, 23, 59, 59, tzinfo=UTC)
# Real catalogs of each portal kind (see tests/fixtures/PROVENANCE.md).
CATALOGS = (
    ("socrata", "socrata/latest/data.austintexas.gov.jsonl.gz"),
    ("socrata", "socrata/latest/data.cityofchicago.org.jsonl.gz"),
    ("socrata", "socrata/latest/data.sfgov.org.jsonl.gz"),
    ("socrata", "socrata/latest/data.nashville.gov.jsonl.gz"),
    ("dcat", "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz"),
    ("dcat", "dcat_us/minneapolis_data_json_arcgis_hub_2020-08-04.json.gz"),
    ("ckan", "ckan/birmingham_uk_package_search_purchase_cards_2021.json"),
)
# Fields that say which rows are data assets at all (scope), or who a record is: taking them away changes what
# is measured, not the evidence. Every other record field is metadata a portal may or may not publish.
SCOPE_FIELDS = frozenset({"portal_key", "source_id", "asset_type", "is_official", "is_derived",
                          "hidden_from_catalog", "access_level", "raw_hash"})
METADATA_FIELDS = tuple(f for f in RECORD_FIELDS if f not in SCOPE_FIELDS)
NORMALIZE = {"socrata": socrata.normalize_item, "dcat": dcat.normalize_dataset, "ckan": ckan.normalize_package}


@cache
def real_records(kind: str, path: str) -> tuple[DatasetRecord, ...]:
    portal = SimpleNamespace(key=Path(path).name.split(".json")[0], kind=kind, url="https://example.invalid",
                             domain=None, frequency_overrides=(), frequency_fields=(), department_fields=())
    items, _ = read_items(FIXTURES / path, kind)
    return tuple(NORMALIZE[kind](portal, it) for it in items)


def _without(rec: DatasetRecord, name: str) -> DatasetRecord:
    default = next(f.default for f in dataclasses.fields(DatasetRecord) if f.name == name)
    return dataclasses.replace(rec, **{name: default})  # the contract's "missing": None or ()


@st.composite
def city(draw) -> tuple[list[DatasetRecord], PortalFacts]:
    kind, path = draw(st.sampled_from(CATALOGS))
    pool = real_records(kind, path)
    picked = draw(st.lists(st.integers(0, len(pool) - 1), min_size=1, max_size=40, unique=True))
    start = AS_OF - timedelta(days=draw(st.integers(1, 120)))
    n_runs = draw(st.integers(0, 4))
    runs = tuple(RunFact(run_id=i, portal_key=pool[0].portal_key, as_of=start + timedelta(days=7 * i),
                         status="ok", items=len(picked), complete=True) for i in range(n_runs))
    facts = PortalFacts(
        reachable=True, kinds=frozenset({kind}), history_start=start, runs=runs,
        datajson=DatajsonCheck(checked=kind == "dcat", present=kind == "dcat", validated=kind == "dcat",
                               entries=len(picked), error_count=draw(st.integers(0, len(picked)))),
        removed=frozenset(draw(st.lists(st.sampled_from(["gone-1", "gone-2"]), unique=True))),
        departments=tuple(draw(st.lists(st.sampled_from(["Finance", "Police", "Public Works"]), unique=True))),
    )
    return [pool[i] for i in picked], facts


def criteria_of(records: list[DatasetRecord], facts: PortalFacts) -> pd.Series:
    df = records_frame(records)
    df["city_key"] = "city"
    df["first_seen"] = pd.Timestamp(facts.history_start or AS_OF)
    df["data_modified_seen"] = pd.Series([(r.data_modified,) if r.data_modified else () for r in records],
                                         dtype=object)
    return criteria.rollup(indicators.compute_all(CityCatalog(df, facts), AS_OF)).set_index("criterion")["value"]


REAL = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@REAL
@given(city())
def test_removing_every_declared_cadence_never_raises_dm4(drawn):
    records, facts = drawn
    before = criteria_of(records, facts)
    after = criteria_of([_without(_without(r, "declared_frequency"), "declared_frequency_raw") for r in records],
                        facts)
    assert after["DM4"] <= before["DM4"] + 1e-9, (before["DM4"], after["DM4"])


@REAL
@given(city(), st.sampled_from(METADATA_FIELDS))
def test_removing_any_metadata_field_never_raises_any_criterion(drawn, field):
    records, facts = drawn
    before = criteria_of(records, facts)
    after = criteria_of([_without(r, field) for r in records], facts)
    raised = {c: (before[c], after[c]) for c in before.index if after[c] > before[c] + 1e-9}
    assert not raised, (field, raised)


def test_the_issue_case_no_cadence_is_not_evident_not_met():
    # Austin's real records with every cadence removed (the unseen-city case of issue 9): DM4 must not be met
    records = list(real_records(*CATALOGS[0]))
    facts = PortalFacts(reachable=True, kinds=frozenset({"socrata"}), history_start=AS_OF - timedelta(days=45))
    with_cadence = criteria_of(records, facts)
    without = criteria_of([_without(_without(r, "declared_frequency"), "declared_frequency_raw") for r in records],
                          facts)
    assert without["DM4"] < with_cadence["DM4"]
    assert without["DM4"] < criteria.MET_FROM


def test_a_malformed_email_left_out_scores_no_better_than_kept():
    # Cincinnati's real data.json (2020-07-22) gives qt5k-uq25 the contact "mailto:Jennifer Bohl" - a name, not
    # an address. Kept as the portal said it, it fails conformance; left out, it must not pass either.
    kind, path = CATALOGS[4]
    raws, _ = read_items(FIXTURES / path, kind)
    said = next(r["contactPoint"]["hasEmail"] for r in raws if r["identifier"].endswith("qt5k-uq25"))
    rec = next(r for r in real_records(kind, path) if r.source_id == "qt5k-uq25")
    kept = CityCatalog(records_frame([dataclasses.replace(rec, contact_email=said)]))
    left_out = CityCatalog(records_frame([dataclasses.replace(rec, contact_email=None)]))
    a = indicators.BY_KEY["dm4_metadata_conformance"].fn(kept, AS_OF)
    b = indicators.BY_KEY["dm4_metadata_conformance"].fn(left_out, AS_OF)
    assert said == "mailto:Jennifer Bohl"
    assert a.failing["qt5k-uq25"].startswith("invalid e-mail") and "missing contact_email" in b.failing["qt5k-uq25"]
    assert b.value <= a.value
