"""Hand-worked indicator values on small catalogs of named real records.

Records come from tests/fixtures/socrata/latest/ (the 2022-07-23 scrape of the Socrata Discovery API,
simonw/scrape-open-data; see tests/fixtures/PROVENANCE.md) through the test helper `_real.record`.
AUSTIN is ten data.austintexas.gov datasets chosen for their ten different licence strings. Scoring time is
the end of the scrape's last day, 2022-07-23T23:59:59Z.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

import indicators
from indicators import inventory, mqa, open_data, quality, topics
from indicators.base import CityCatalog, DatajsonCheck, PortalFacts, RunFact
from tests.indicators._real import frame

AS_OF = datetime(2022, 7, 23, 23, 59, 59, tzinfo=UTC)
# id: licence text | Additional-Information_Frequency | department (City-of-Austin_Department-)
AUSTIN = [
    "3syk-w9eu",  # Issued Construction Permits: Public Domain | Daily | Development Services
    "nv4a-hc9c",  # ARR Fiscal Year 2021 Expenses: (no licence) | Annually | Austin Resource Recovery
    "nyhn-669r",  # Roadway Markings Work Orders: CC 1.0 Universal (PD Dedication) | Daily | Austin Transportation
    "q3br-d6uu",  # SNAP Enrollment for Travis County: ODC PDDL | Monthly | Austin Public Health
    "qzi7-nx8g",  # Recycle Drop Off Locations: Open Database License | As Needed | Watershed Protection
    "s2py-ceb7",  # Community Survey: Public Domain U.S. Government | (none) | Financial Services
    "u5za-5ipm",  # Strategic Measure_EOA.D.1 ...: See Terms of Use | Annually | Housing and Planning Department
    "uxwx-55kj",  # Current Small Business Enterprise, SBE, Certfied Vendors: ODC ODbL | Weekly | Financial Services
    "v7vh-gbi6",  # Mobility Management Center Issues: CC Attribution 4.0 International | Daily | Austin Transportation
    "ykxk-t5y9",  # Board of Adjustment Cases: ODC Attribution License | (none) | Development Services
]


@pytest.fixture(scope="module")
def austin():
    return frame("data.austintexas.gov", AUSTIN)


def test_od1_open_licence(austin):
    # Open Definition approved: other-pd (3syk, s2py), CC0-1.0 (nyhn), PDDL-1.0 (q3br), ODbL-1.0 (qzi7, uxwx),
    # CC-BY-4.0 (v7vh), ODC-BY-1.0 (ykxk) = 8; nv4a has none, u5za "See Terms of Use" names none -> 8/10.
    s = open_data.open_licence(austin, AS_OF)
    assert s.value == pytest.approx(80.0)
    assert (s.numerator, s.denominator) == (8, 10)
    assert s.failing == {"nv4a-hc9c": "no licence stated", "u5za-5ipm": "licence text names no known licence"}


def test_od3_five_star_and_bulk(austin):
    # every record is tabular, so the helper lists csv+json (3 stars); a licence that is not open sets 0 stars
    # (ckanext-qa): 8 open-licence records at 3 stars, nv4a and u5za at 0 -> 80.
    s = open_data.five_star(austin, AS_OF)
    assert s.value == pytest.approx(80.0)
    assert s.detail["stars_3"] == 8 and s.detail["stars_0"] == 2
    b = open_data.bulk_open_formats(austin, AS_OF)  # od3_bulk_open_formats: csv on all 10 -> 100
    assert b.value == pytest.approx(100.0) and b.failing == {}


def test_od3_dataset_count_and_growth(austin):
    # od3_dataset_count: 100 * log10(1 + 10) / log10(1 + 1000) = 100 * 1.041393 / 3.000434 = 34.708
    s = open_data.dataset_count(austin, AS_OF)
    assert s.value == pytest.approx(34.708, abs=1e-3)
    # od3_growth: no first_seen, so arrival = created; the newest is nv4a (2021-11-11), older than 90 days -> 0
    g = open_data.growth(austin, AS_OF)
    assert g.value == 0 and g.numerator == 0


def test_od2_documentation_index_two_records(austin):
    df = austin[austin.source_id.isin(["3syk-w9eu", "qzi7-nx8g"])]
    # 3syk: description 365 chars (20) + dictionary 46/81 columns described (25 * 0.5679 = 14.198) + no
    #       attachment (0) + 13 tags (15) + category (15) + no contact (0) = 64.198 / 100
    # qzi7: description 192 chars (20) + 1/22 described (1.136) + 0 + no tags (0) + category (15) + 0 = 36.136
    # mean = (0.641975 + 0.361364) / 2 = 0.501669 -> 50.167
    s = open_data.documentation_index(df, AS_OF)
    assert s.value == pytest.approx(50.167, abs=1e-3)
    assert "keywords" in s.failing["qzi7-nx8g"] and "contact" in s.failing["3syk-w9eu"]


def test_od2_data_dictionary(austin):
    # described / columns, from each record's columns_description:
    # (46+0+22+0+1+0+0+0+22+57) / (81+2+22+10+22+251+2+14+24+67) = 148 / 495 = 29.899 %
    s = open_data.data_dictionary(austin, AS_OF)
    assert (s.numerator, s.denominator) == (148, 495)
    assert s.value == pytest.approx(29.899, abs=1e-3)
    assert s.failing["nv4a-hc9c"] == "0 of 2 columns described"


def test_dm2_inventory_fields_and_attribution(austin):
    # dm2_inventory_fields per record, 5 fields: department 10/10, contact 0/10, frequency 8/10 (s2py, ykxk
    # have none), category 10/10, licence 9/10 (nv4a) -> (10+0+8+10+9) / 50 = 74.0
    s = inventory.inventory_fields(austin, AS_OF)
    assert s.value == pytest.approx(74.0)
    # dm2_publisher_attribution: all ten name a department -> 100
    assert inventory.publisher_attribution(austin, AS_OF).value == pytest.approx(100.0)


def test_dm2_department_coverage(austin):
    # config list of 5; three of them publish here (Austin Transportation, Development Services, Austin Public
    # Health), Aviation and Austin Energy do not -> 3/5 = 60
    df = CityCatalog(austin, PortalFacts(departments=("Austin Transportation", "development services",
                                                       "Austin Public Health", "Aviation", "Austin Energy")))
    s = inventory.department_coverage(df, AS_OF)
    assert s.value == pytest.approx(60.0)
    assert set(s.failing) == {"department:Aviation", "department:Austin Energy"}
    assert inventory.department_coverage(austin, AS_OF).value is None  # no list in config


def test_dm2_inventory_recency(austin):
    # changed (metadata or data) after 2021-07-23T23:59:59: 3syk, nv4a (2021-11-13), nyhn, u5za (2022-01-31),
    # uxwx, v7vh, ykxk = 7; q3br and qzi7 (2021-04-14), s2py (2021-07-08) not -> 70
    s = inventory.inventory_recency(austin, AS_OF)
    assert s.value == pytest.approx(70.0)
    assert set(s.failing) == {"q3br-d6uu", "qzi7-nx8g", "s2py-ceb7"}


def test_dm3_api_bulk_usage(austin):
    # dm3_api_access and dm3_bulk_download: every tabular record has a SODA endpoint and csv -> 100
    assert inventory.api_access(austin, AS_OF).value == pytest.approx(100.0)
    assert inventory.bulk_download(austin, AS_OF).value == pytest.approx(100.0)
    # dm3_usage, from the scrape's stats side file (page_views_total / download_count): 3syk 298107 / 33646,
    # u5za 168 / 177, uxwx 9229 / 7686, v7vh 786 / 365, ykxk 838 / 2010 -> all >= 100 views: 5/5 = 100;
    # the other five have no stats line (unknown, not counted). views = 298107+168+9229+786+838 = 309128
    s = inventory.usage(austin, AS_OF)
    assert (s.value, s.numerator, s.denominator) == (100.0, 5, 5)
    assert s.detail == {"views": 309128, "downloads": 43884}


def test_dm4_cadence_and_freshness(austin):
    # dm4_cadence_declared: a normalised frequency on 8 of 10 (s2py, ykxk have none) -> 80;
    # 7 carry a period, qzi7 "as needed" is named only
    c = quality.cadence_declared(austin, AS_OF)
    assert c.value == pytest.approx(80.0) and c.detail == {"with_period": 7, "named_only": 1}
    # dm4_up_to_date, age = 2022-07-23T23:59:59 - data_modified:
    #   3syk P1D age 1.52 -> due (1 <= age < 2); nyhn P1D 1.23 -> due; v7vh P1D 1.74 -> due
    #   nv4a P1Y 252.8 -> fresh; u5za P1Y 173.8 -> fresh; uxwx P1W 5.3 -> fresh
    #   q3br P1M (30.42 d) age 1446.2 >= 30.42 + 15.1 + 15.1 -> delinquent
    # (fresh + due) / 7 = 6/7 = 85.714
    s = quality.up_to_date(austin, AS_OF)
    assert s.value == pytest.approx(600 / 7)
    assert {k: s.detail[k] for k in ("fresh", "due", "overdue", "delinquent")} == \
        {"fresh": 3, "due": 3, "overdue": 0, "delinquent": 1}
    assert list(s.failing) == ["q3br-d6uu"]
    # dated, not aged: a year later the delinquent asset's reason is the same words (its evidence is unchanged)
    assert s.failing["q3br-d6uu"] == "delinquent: last data update 2018-08-07, declared monthly"
    assert quality.up_to_date(austin, AS_OF.replace(year=AS_OF.year + 1)).failing["q3br-d6uu"] == \
        s.failing["q3br-d6uu"]


def test_dm4_days_behind(austin):
    # periods behind floor(age / P): 3syk 1, nyhn 1, v7vh 1 -> 0.5 each; nv4a, u5za, uxwx 0 -> 1 each;
    # q3br floor(1446.16 / 30.417) = 47 -> 0. mean = (3 * 0.5 + 3) / 7 = 4.5 / 7 = 64.286
    s = quality.days_behind(austin, AS_OF)
    assert s.value == pytest.approx(450 / 7)
    # Austin Public Health (q3br): 1446.1615 - 30.4167 = 1415.745 days behind
    assert s.detail["dept:Austin Public Health"] == pytest.approx(1415.745, abs=1e-3)
    # the reason is dated, not counted to the scoring date: data_modified = AS_OF - 1446.1615 d = 2018-08-07
    # ~20:07 UTC, due one month (30.4167 d) later = 2018-09-07 ~06:07
    assert s.failing["q3br-d6uu"] == "update due since 2018-09-07, declared monthly"
    # the same reason a year later: the evidence of an unchanged catalog does not change with the calendar
    later = quality.days_behind(austin, AS_OF.replace(year=AS_OF.year + 1))
    assert later.failing["q3br-d6uu"] == s.failing["q3br-d6uu"]


def test_dm4_days_behind_future_dates_are_not_ahead(austin):
    # scored as of 2022-07-01, 3syk's data_modified (2022-07-22) lies in the future: 0 periods behind, not
    # "ahead" (a hypothesis run found values above 100 before the clamp)
    from datetime import timedelta
    s = quality.days_behind(austin, AS_OF - timedelta(days=22, hours=23, minutes=59, seconds=59))
    assert 0 <= s.value <= 100
    assert "3syk-w9eu" not in s.failing


def test_dm4_metadata_conformance(austin):
    # all three dates present and between 1970 and as_of, https landing and API URLs (every record is tabular):
    # 5 checks pass; no record states a contact e-mail, and a missing value fails its check (not evident) ->
    # 5/6 per asset -> 83.333. Nothing present is invalid.
    s = quality.metadata_conformance(austin, AS_OF)
    assert s.value == pytest.approx(500 / 6)
    assert set(s.failing.values()) == {"missing contact_email"} and len(s.failing) == 10
    assert s.detail["missing contact_email"] == 10 and s.detail["invalid e-mail"] == 0


def test_dm4_unique_titles_nyc():
    # data.cityofnewyork.us: "Tourism Grants" is the title of rma9-fm39 and x4ud-jhxu, "2016 NYC Open Data Plan:
    # Future Releases" of tyjc-nqc2 and vdem-2i66; with one more record of its own title: 1/5 unique -> 20
    ids = ["rma9-fm39", "x4ud-jhxu", "tyjc-nqc2", "vdem-2i66", "ic3t-wcy2"]
    s = quality.unique_titles(frame("data.cityofnewyork.us", ids), AS_OF)
    assert s.value == pytest.approx(20.0)
    assert s.failing["rma9-fm39"] == "title shared with 1 other asset(s)"


def _run(run_id: int, day: str, status: str = "ok", complete: bool = True) -> RunFact:
    return RunFact(run_id=run_id, portal_key="data.austintexas.gov", as_of=datetime.fromisoformat(day + "T12:00+00:00"),
                   status=status, items=10, complete=complete)


def test_dm4_retention_from_facts(austin):
    # facts.removed lists 2 ids removed between complete runs: 10 / (10 + 2) = 83.333
    two_runs = (_run(1, "2022-07-16"), _run(2, "2022-07-23"))
    df = CityCatalog(austin, PortalFacts(runs=two_runs, removed=frozenset({"abcd-0001", "abcd-0002"})))
    s = quality.retention(df, AS_OF)
    assert s.value == pytest.approx(1000 / 12)
    assert set(s.failing) == {"abcd-0001", "abcd-0002"}
    assert quality.retention(austin, AS_OF).value is None  # no history known
    # nothing removed between two complete runs: all kept -> 100
    assert quality.retention(CityCatalog(austin, PortalFacts(runs=two_runs, removed=frozenset())), AS_OF).value == 100
    # a single harvest has nothing to compare with (removed None): no "kept 100" from it
    one = CityCatalog(austin, PortalFacts(runs=(_run(1, "2022-07-23"),), removed=None))
    assert quality.retention(one, AS_OF).value is None


def test_dm8_disaggregation(austin):
    # geographic words in column names: 3syk location_zip/latitude, nyhn location_name, qzi7 zip_code/latitude,
    # s2py neighborhood_planning_zoning, uxwx zip, v7vh location, ykxk zoning_district/longitude = 7;
    # q3br recipients_ages_65 ... (demographic "ages") = 1; nv4a (expense_dollars, expense_source) and
    # u5za (date, units) have neither -> 8/10 = 80
    s = topics.disaggregation(austin, AS_OF)
    assert s.value == pytest.approx(80.0)
    assert set(s.failing) == {"nv4a-hc9c", "u5za-5ipm"}
    assert s.matches["q3br-d6uu"] == "demographic: ages"
    assert "zip" in s.matches["uxwx-55kj"]


def test_pa3_bf1_rdc7(austin, monkeypatch):
    # the matching itself, whichever topics the hand labels currently put under "possible evidence"
    monkeypatch.setattr(topics, "possible_evidence", lambda: frozenset())
    # pa3_goals_published: u5za "Strategic Measure_EOA.D.1 ..." matches "strategic measure"; P1Y, age 173.8
    # -> fresh, so current: 50 + 50 * 1/1 = 100
    p = topics.goals_published(austin, AS_OF)
    assert p.value == pytest.approx(100.0)
    assert p.matches == {"u5za-5ipm": "words: strategic measure"}
    # bf1_budget_finance: spending = nv4a ("... Fiscal Year 2021 Expenses", P1Y, age 252.8: fresh) -> 25 + 25;
    # no budget: the category "Budget and Finance" over nv4a and uxwx is not read (it says where a dataset
    # sits, not what it is) -> 50
    b = topics.budget_finance(austin, AS_OF)
    assert b.value == pytest.approx(50.0)
    assert b.detail == {"budget_found": 0, "budget_current": 0, "spending_found": 1, "spending_current": 1}
    # rdc7_procurement: uxwx "Current Small Business Enterprise, SBE, Certfied Vendors" is a vendor list, not
    # procurement (its single-word tag "vendor" is not read) -> no procurement asset -> 0
    r = topics.procurement(austin, AS_OF)
    assert r.value == 0 and r.failing == {"procurement dataset": "no procurement dataset found"}


def test_od3_census_key_datasets(austin):
    # matched: spending (nv4a "Expenses") and construction_permits (3syk "Issued Construction Permits"); ykxk
    # "Board of Adjustment Cases" has "zoning" only as a single-word tag, which is not read. A key dataset whose
    # matching is "possible evidence" (vocab.json: below 0.9 precision on the hand labels) is shown, not
    # counted -> (2 - those) of 20
    s = topics.census_key_datasets(austin, AS_OF)
    found = {k for k in s.detail if ":" not in k and s.detail[k] > 0}
    assert found == {"spending", "construction_permits"}
    possible = found & topics.possible_evidence()
    assert s.value == pytest.approx(100.0 * len(found - possible) / 20)
    assert all(s.failing[f"census:{k}"].startswith("possible evidence only") for k in possible)
    assert "census:crime_reports" in s.failing


def test_od3_mqa(austin):
    # points = keywords 30 * 8/10 (qzi7, v7vh have none) 24 + categories 30 + access URL 50 + download URL 20
    # + format 20 + format vocabulary 10 + non-proprietary 20 + machine-readable 20 + DCAT compliance 0 (no
    # data.json facts) + licence 20 * 9/10 = 18 + licence vocabulary 10 * 8/10 = 8 + access rights 0 + 0
    # + contact 0 + publisher 10 + issued 5 + modified 5 = 240 of 405 -> 59.259, band "good" (221-350)
    s = mqa.mqa_points(austin, AS_OF)
    assert s.detail["points"] == pytest.approx(240.0)
    assert s.value == pytest.approx(24000 / 405)
    assert s.detail["band:good"] == 1


def test_od1_datajson_and_od3_portal_api(austin):
    # od1_datajson_inventory on the facts of Cincinnati's real 2020-07-22 data.json (tests/fixtures/dcat_us):
    # 145 entries, 7 schema errors on 6 datasets (five empty descriptions, qt5k-uq25 also a name as e-mail)
    # -> 100 * (145 - 7) / 145 = 95.172
    from connectors.archive import read_items
    from tests.indicators._real import FIXTURES

    _, stats = read_items(FIXTURES.parent / "dcat_us" / "cincinnati_data_json_socrata_2020-07-22.json.gz", "dcat")
    check = stats.schema_check
    dj = DatajsonCheck(checked=True, present=True, validated=True, entries=check.entries,
                       error_count=check.error_count, errors=check.errors)
    df = CityCatalog(austin, PortalFacts(reachable=True, kinds=frozenset({"dcat"}), datajson=dj))
    s = open_data.datajson_inventory(df, AS_OF)
    assert s.value == pytest.approx(100 * 138 / 145) and (s.numerator, s.denominator) == (138, 145)
    assert s.failing["qt5k-uq25"].startswith("2 schema error(s): contactPoint/hasEmail: 'mailto:Jennifer Bohl'")
    assert s.failing["2m7r-a93f"] == "1 schema error(s): description: '' should be non-empty"
    assert len(s.failing) == 6 and s.detail["datasets_with_errors"] == 6
    assert open_data.datajson_inventory(CityCatalog(austin), AS_OF).value is None  # no data.json portal: not checked
    # checked and absent -> 0; present without a check on record -> not evident (None), never "valid"
    assert open_data.datajson_inventory(CityCatalog(austin, PortalFacts(datajson=DatajsonCheck(checked=True))),
                                        AS_OF).value == 0.0
    unchecked = CityCatalog(austin, PortalFacts(datajson=DatajsonCheck(checked=True, present=True)))
    assert open_data.datajson_inventory(unchecked, AS_OF).value is None
    # od3_portal_api: reachable -> 100; an unreachable portal -> 0
    assert open_data.portal_api(df, AS_OF).value == 100.0
    assert open_data.portal_api(CityCatalog(austin, PortalFacts(reachable=False)), AS_OF).value == 0.0


def test_compute_all_covers_registry(austin):
    scores = indicators.compute_all(austin, AS_OF)
    assert set(scores) == {i.key for i in indicators.REGISTRY}
    assert scores["od1_open_licence"].value == pytest.approx(80.0)


def test_topic_exclusions_on_real_chicago_titles(monkeypatch):
    monkeypatch.setattr(topics, "possible_evidence", lambda: frozenset())  # the matching alone
    # xika-473c "Lobbyist Data - Expenditures - Large" (tags ethics, lobbyists): "expenditures" is a spending
    # word, but "lobbyist" is a spending exclusion (indicators/data/vocab.json) - lobbying, not city spending; it
    # still counts as the census "lobbyist_activity" key dataset. s4vu-giwb "Payments" (tags payments, vendors,
    # P1D, data 2022-07-22: fresh) is spending, not procurement (paying vendors is not buying from them).
    # 9xs2-f89t "Chicago Public Schools - Progress Report Cards (2011-2012)": not a performance measure.
    # sbt5-2ec8 "Performance Metrics - ... Pothole Repair" (P1W, data 2014: not current) is the one PA3 asset.
    c = frame("data.cityofchicago.org", ["xika-473c", "s4vu-giwb", "9xs2-f89t", "sbt5-2ec8"])
    b = topics.budget_finance(c, AS_OF)  # no budget asset; spending found and current: 25 + 25
    assert b.value == pytest.approx(50.0) and b.matches == {"s4vu-giwb": "words: payments"}
    assert (b.detail["spending_found"], b.detail["spending_current"], b.detail["budget_found"]) == (1, 1, 0)
    p = topics.goals_published(c, AS_OF)  # one candidate, not current: 50 + 50 * 0/1
    assert p.value == pytest.approx(50.0) and p.matches == {"sbt5-2ec8": "words: performance metrics"}
    r = topics.procurement(c, AS_OF)
    assert r.value == 0 and r.matches == {}
    k = topics.census_key_datasets(c, AS_OF)
    assert k.matches["xika-473c"] == "lobbyist_activity - words: lobbyist"
    assert (k.detail["lobbyist_activity"], k.detail["spending"]) == (1, 1)
