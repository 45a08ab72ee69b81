"""The real connectors against the local emulator: complete paging, repeats, short catalogs and each fault."""
from __future__ import annotations

import pytest

from connectors import make_connector
from connectors.base import PortalAuthError, PortalIncompatible, PortalUnavailable
from connectors.ckan import CkanConnector
from connectors.socrata import SocrataConnector
from tests.conftest import FIXTURES
from tests.emulator import ckan_package_from_dcat, load_json, load_socrata_jsonl
from tests.emulator import portal_config as portal

CHICAGO = "data.cityofchicago.org"
NYC = "data.cityofnewyork.us"


@pytest.fixture(scope="module")
def chicago_items():
    # 295 lines, 260 unique ids, 35 verbatim repeats (fixtures PROVENANCE "Known traps")
    return load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")


@pytest.fixture(scope="module")
def nyc_items():
    # 1004 lines, 27 repeats → 977 unique (PROVENANCE "Known traps")
    return load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofnewyork.us.jsonl.gz")


def socrata(emu, session, domain, **kw):
    return SocrataConnector(portal("socrata", emu.url, domain=domain), session=session, **kw)


# --- Socrata -------------------------------------------------------------------------------------------------

def test_socrata_pages_until_complete(emulator, session, nyc_items):
    emu = emulator(socrata={NYC: nyc_items})
    progress = []
    conn = SocrataConnector(portal("socrata", emu.url, domain=NYC), session=session, page_limit=100,
                            progress=lambda n, total: progress.append((n, total)))
    ids = [it["resource"]["id"] for it in conn.fetch()]
    assert len(ids) == len(set(ids)) == 977
    assert set(ids) == {it["resource"]["id"] for it in nyc_items}
    assert conn.stats.items_seen == 977 and conn.stats.reported_total == 977
    assert conn.stats.pages >= 10  # 977 unique at ≤100 a page
    assert progress[-1] == (977, 977) and len(progress) == conn.stats.pages
    calls = [params for path, params, _ in emu.requests if path == "/api/catalog/v1"]
    assert all(p["limit"] == "100" and p["domains"] == NYC for p in calls)
    assert "scroll_id" not in calls[0] and all("scroll_id" in p for p in calls[1:])
    # each scroll_id is the last id of the page before (ids ascend)
    assert [p["scroll_id"] for p in calls[1:]] == sorted(p["scroll_id"] for p in calls[1:])


def test_socrata_repeats_count_once(emulator, session, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    conn = socrata(emu, session, CHICAGO)  # default limit: one page holds all 295 lines
    ids = [it["resource"]["id"] for it in conn.fetch()]
    assert len(ids) == 260 and conn.stats.repeats == 35 and conn.stats.pages == 1


def test_socrata_short_catalog_fails(emulator, session, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.reported[CHICAGO] = 300  # 295 lines delivered (260 unique + 35 repeats): 5 short
    with pytest.raises(PortalIncompatible, match=r"catalog came back short: got 295 of 300 \(260 unique\)"):
        list(socrata(emu, session, CHICAGO, page_limit=100).fetch())


def test_socrata_capped_total_is_not_trusted(emulator, session, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.reported[CHICAGO] = 25_000  # reported as resultSetSize 10,000 (the cap): says nothing about the total
    assert len(list(socrata(emu, session, CHICAGO, page_limit=100).fetch())) == 260


def test_socrata_repeated_page_fails(emulator, session, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.fault("/api/catalog/v1", repeat_page=True, after=1, times=1)  # page 2 = page 1 again
    with pytest.raises(PortalIncompatible, match="page repeated: page 2"):
        list(socrata(emu, session, CHICAGO, page_limit=100).fetch())


def test_socrata_changed_envelope_fails(emulator, session, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.fault("/api/catalog/v1", shape=True)
    with pytest.raises(PortalIncompatible, match="no 'results' list"):
        list(socrata(emu, session, CHICAGO).fetch())


def test_socrata_500s_on_page_two_recover(emulator, session, sleeps, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.fault("/api/catalog/v1", status=500, after=1, times=2)
    assert len(list(socrata(emu, session, CHICAGO, page_limit=100).fetch())) == 260
    assert sleeps.calls == [0.01, 0.02]


def test_socrata_429_retry_after_while_paging(emulator, session, sleeps, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.fault("/api/catalog/v1", status=429, retry_after="2", after=2, times=1)
    assert len(list(socrata(emu, session, CHICAGO, page_limit=100).fetch())) == 260
    assert sleeps.calls == [2.0]


def test_socrata_truncated_page_fails(emulator, session, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.fault("/api/catalog/v1", truncate=True, after=1)
    with pytest.raises(PortalIncompatible, match="not valid JSON"):
        list(socrata(emu, session, CHICAGO, page_limit=100).fetch())


def test_socrata_timeout_fails_unavailable(emulator, session, chicago_items):
    emu = emulator(socrata={CHICAGO: chicago_items})
    emu.fault("/api/catalog/v1", timeout_s=0.8)  # client timeout is 0.5 s
    with pytest.raises(PortalUnavailable, match="timed out after 0.5 s after 4 attempts"):
        list(socrata(emu, session, CHICAGO).fetch())


def test_socrata_unknown_domain_is_an_empty_catalog(emulator, session):
    emu = emulator(socrata={})
    conn = socrata(emu, session, "data.nowhere.gov")
    assert list(conn.fetch()) == [] and conn.stats.reported_total == 0


def test_sodapy_view_metadata_through_the_emulator(emulator, session):
    view = load_json(FIXTURES / "socrata_views/chicago_view_zidz-sdfj_2025.json")
    emu = emulator(views=[view])
    conn = socrata(emu, session, CHICAGO)
    assert conn.view_metadata("zidz-sdfj") == view
    path, _, headers = emu.requests[-1]
    assert path == "/api/views/zidz-sdfj.json" and headers["User-Agent"].startswith("city-maturity/")
    assert "X-App-Token" not in headers and "X-App-token" not in headers  # no token configured, none sent


def test_sodapy_view_errors_are_connector_errors(emulator, session):
    emu = emulator(views=[])
    emu.fault("/api/views/", status=403)
    with pytest.raises(PortalAuthError):
        socrata(emu, session, CHICAGO).view_metadata("zidz-sdfj")


def test_view_enrichment_only_where_the_catalog_lacks_a_field(emulator, session):
    # Austin 2022 lines that also have a 2015 view: 51 (one id twice → 50 unique); only x442-h34c lacks
    # metadata.license, so only it is looked up (its 2015 view has rowsUpdatedAt 1442858916 and no licence either).
    views = load_json(FIXTURES / "socrata_views/austin_views_datasets_2015.json.gz")["datasets"]
    view_ids = {v["id"] for v in views}
    items = [it for it in load_socrata_jsonl(FIXTURES / "socrata/latest/data.austintexas.gov.jsonl.gz")
             if it["resource"]["id"] in view_ids]
    emu = emulator(socrata={"data.austintexas.gov": items}, views=views)
    conn = socrata(emu, session, "data.austintexas.gov", enrich_views=True)
    raws = {it["resource"]["id"]: it for it in conn.fetch()}
    assert len(raws) == 50 and conn.stats.repeats == 1
    assert [p for p, _, _ in emu.requests if p.startswith("/api/views/")] == ["/api/views/x442-h34c.json"]
    assert raws["x442-h34c"]["view"]["rowsUpdatedAt"] == 1442858916


def test_view_enrichment_tolerates_a_missing_view(emulator, session):
    # the 2018 sample items have no data_updated_at, and no recorded view: each lookup is a 404
    items = load_json(FIXTURES / "socrata_catalog/multi_domain_catalog_sample_2018.json")["results"]
    domain = items[0]["metadata"]["domain"]
    mine = [it for it in items if it["metadata"]["domain"] == domain]
    emu = emulator(socrata={domain: mine})
    conn = socrata(emu, session, domain, enrich_views=True)
    assert len(list(conn.fetch())) == len(mine)
    assert conn.stats.notes == (f"views_missing={len(mine)}",)


# --- CKAN ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def derived_packages():
    """2,475 CKAN packages derived from real data.json datasets (Chicago 2020: 801, Cincinnati 2020: 145,
    NYC 2016: 1,529) through catalog.data.gov's DCAT-US → CKAN mapping."""
    out = []
    for name, org in [("chicago_data_json_socrata_2020-07-22", "chicago"),
                      ("cincinnati_data_json_socrata_2020-07-22", "cincinnati"),
                      ("nyc_data_json_2016-08-03", "nyc")]:
        doc = load_json(FIXTURES / f"dcat_us/{name}.json.gz")
        organization = {"id": f"org-{org}", "name": org, "title": f"City of {org.title()}", "type": "organization"}
        out += [ckan_package_from_dcat(ds, organization=organization, harvested_at="2020-08-01T00:00:00")
                for ds in doc["dataset"]]
    return out


def ckan(emu, session, site="city", **kw):
    return CkanConnector(portal("ckan", emu.ckan_url(site)), session=session, **kw)


def test_ckan_pages_past_1000(emulator, session, derived_packages):
    emu = emulator(ckan={"city": derived_packages})
    conn = ckan(emu, session)
    ids = [p["id"] for p in conn.fetch()]
    assert len(ids) == len(set(ids)) == 2475
    # rows=1000 (CKAN maximum): starts 0, 1000, 2000 → 3 pages
    assert conn.stats.pages == 3 and conn.stats.reported_total == 2475
    starts = [p["start"] for path, p, _ in emu.requests if path.endswith("/package_search")]
    assert starts == ["0", "1000", "2000"]
    # organization_list was read; each organization is a whole city ("City of X"), which is no unit of one
    assert conn.organizations == {"chicago": "City of Chicago", "cincinnati": "City of Cincinnati",
                                  "nyc": "City of Nyc"}
    assert conn.departments == ()


def test_ckan_real_birmingham_page_in_small_rows(emulator, session):
    # the recorded page holds 10 packages (its count says 38; here the emulator reports what it serves)
    pkgs = load_json(FIXTURES / "ckan/birmingham_uk_package_search_purchase_cards_2021.json")["result"]["results"]
    emu = emulator(ckan={"birmingham": pkgs})
    conn = ckan(emu, session, "birmingham", rows=4)
    recs = [conn.normalize(p) for p in conn.fetch()]
    assert len(recs) == 10 and conn.stats.pages == 3  # 4 + 4 + 2
    assert {r.department for r in recs} == {"Birmingham City Council"}


def test_ckan_short_catalog_fails(emulator, session, derived_packages):
    emu = emulator(ckan={"city": derived_packages[:1200]})
    emu.reported["city"] = 1300
    with pytest.raises(PortalIncompatible, match="catalog came back short: got 1200 of 1300"):
        list(ckan(emu, session).fetch())


def test_ckan_success_false_fails(emulator, session, derived_packages):
    emu = emulator(ckan={"city": derived_packages})
    emu.fault("/ckan/city/api/3/action/package_search", body={
        "help": "x", "success": False, "error": {"__type": "Validation Error", "message": "bad rows"}})
    with pytest.raises(PortalIncompatible, match="success=false.*Validation Error: bad rows"):
        list(ckan(emu, session).fetch())


def test_ckan_repeated_page_fails(emulator, session, derived_packages):
    emu = emulator(ckan={"city": derived_packages})
    emu.fault("/ckan/city/api/3/action/package_search", repeat_page=True, after=1, times=1)
    with pytest.raises(PortalIncompatible, match="page repeated: start=1000"):
        list(ckan(emu, session).fetch())


def test_ckan_changed_shape_fails(emulator, session, derived_packages):
    emu = emulator(ckan={"city": derived_packages})
    emu.fault("/ckan/city/api/3/action/package_search", shape=True)
    with pytest.raises(PortalIncompatible, match="no 'results' list"):
        list(ckan(emu, session).fetch())


def test_ckan_organization_list_failure_is_tolerated(emulator, session, derived_packages):
    emu = emulator(ckan={"city": derived_packages[:10]})
    emu.fault("/ckan/city/api/3/action/organization_list", status=500)
    conn = ckan(emu, session)
    assert len(list(conn.fetch())) == 10
    assert conn.departments == ()
    assert conn.stats.notes[0].startswith("organization_list failed:")


def test_derived_package_normalizes_like_its_dcat_source(derived_packages):
    # first Chicago 2020 dataset through the derivation and the CKAN connector: frequency absent, the
    # data.json `modified` extra becomes data_modified (resources carry no last_modified)
    pkg = derived_packages[0]
    rec = CkanConnector(portal("ckan", "https://catalog.example")).normalize(pkg)
    modified = next(e["value"] for e in pkg["extras"] if e["key"] == "modified")
    assert rec.data_modified.date().isoformat() == modified
    assert rec.department == "data.cityofchicago.org"  # extras publisher = the Socrata domain, verbatim
    assert rec.distribution_count == len(pkg["resources"])


# --- DCAT ----------------------------------------------------------------------------------------------------

def test_dcat_one_document_with_schema_errors_as_evidence(emulator, session):
    # Indianapolis 2020 Hub: 1,210 datasets, each with publisher {"source": …} and no required "name"
    doc = load_json(FIXTURES / "dcat_us/indianapolis_data_json_arcgis_hub_2020-08-04.json.gz")
    emu = emulator(dcat={"indy": doc})
    conn = make_connector(portal("dcat", emu.dcat_url("indy")), session=session)
    items = list(conn.fetch())
    assert len(items) == 1210 and conn.stats.reported_total == 1210 and conn.stats.pages == 1
    check = conn.stats.schema_check
    assert check is not None and (check.entries, check.error_count) == (1210, 1210)
    # one error per dataset, reported under the dataset's own source id (as its record carries it)
    assert len(check.errors) == 1210 and all(len(m) == 1 for m in check.errors.values())
    first = conn.normalize(items[0]).source_id
    assert check.errors[first] == ("publisher: 'name' is a required property",)
    assert conn.stats.notes == ()  # nothing to parse back from text
    assert conn.normalize(items[0]).department is not None  # publisher.source still read


def test_dcat_catalog_url_is_used(emulator, session):
    doc = load_json(FIXTURES / "dcat_us/indianapolis_data_json_arcgis_hub_2019-01-04.json.gz")
    emu = emulator(dcat={"indy": doc})
    conn = make_connector(portal("dcat", "http://unused.invalid", catalog_url=emu.dcat_url("indy") + "/data.json"),
                          session=session)
    assert len(list(conn.fetch())) == 229
    assert conn.stats.schema_check is not None and conn.stats.schema_check.error_count == 0
    assert conn.stats.schema_check.errors == {} and conn.stats.schema_check.entries == 229


def test_dcat_changed_shape_and_garbage_fail(emulator, session):
    doc = load_json(FIXTURES / "dcat_us/indianapolis_data_json_arcgis_hub_2019-01-04.json.gz")
    emu = emulator(dcat={"indy": doc})
    conn = make_connector(portal("dcat", emu.dcat_url("indy")), session=session)
    emu.fault("/dcat/indy/data.json", shape=True, times=1)
    with pytest.raises(PortalIncompatible, match="not a data.json catalog"):
        list(conn.fetch())
    emu.fault("/dcat/indy/data.json", truncate=True, times=1)
    with pytest.raises(PortalIncompatible, match="not valid JSON"):
        list(conn.fetch())
