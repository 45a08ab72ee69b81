"""Hand-worked normalization of named real records. Each expected value is read off the fixture by eye;
the comment says where it comes from."""
from __future__ import annotations

from datetime import UTC, datetime

from connectors.ckan import CkanConnector
from connectors.dcat import DcatConnector
from connectors.socrata import TABULAR_FORMATS, SocrataConnector
from tests.conftest import FIXTURES
from tests.emulator import load_json, load_socrata_jsonl
from tests.emulator import portal_config as portal


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _socrata_item(path, rid):
    items = load_socrata_jsonl(path) if str(path).endswith(".jsonl.gz") else load_json(path)["results"]
    return next(it for it in items if it["resource"]["id"] == rid)


def test_socrata_2022_scrape_item_chicago_xzkq_xp2w():
    # socrata/latest/data.cityofchicago.org.jsonl.gz, "Current Employee Names, Salaries, and Position Titles"
    raw = _socrata_item(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz", "xzkq-xp2w")
    chicago = portal("socrata", "https://data.cityofchicago.org", domain="data.cityofchicago.org")
    rec = SocrataConnector(chicago).normalize(raw)
    assert rec.source_id == "xzkq-xp2w" and rec.asset_type == "dataset"
    assert rec.title == "Current Employee Names, Salaries, and Position Titles"
    assert rec.landing_url == "https://data.cityofchicago.org/d/xzkq-xp2w"  # permalink
    assert rec.api_url == "https://data.cityofchicago.org/resource/xzkq-xp2w.json"  # metadata.domain + id
    assert rec.theme == "Administration & Finance"  # classification.domain_category
    assert rec.keywords == ("personnel",)  # domain_tags ["personnel"], tags []
    # domain_metadata Metadata_Data-Owner = "Human Resources" (beats attribution "City of Chicago")
    assert rec.department == "Human Resources"
    # Metadata_Frequency = "Data are updated semi-annually"
    assert rec.declared_frequency_raw == "Data are updated semi-annually"
    assert rec.declared_frequency == "P6M"
    assert rec.license == "See Terms of Use" and rec.license_id == "notspecified"
    assert rec.contact_name == "Eric Phillips"  # owner.display_name
    assert rec.contact_email is None  # resource.contact_email null
    assert rec.created == utc(2011, 9, 27, 20, 18, 55)
    assert rec.metadata_modified == utc(2022, 1, 21, 21, 11, 15)
    assert rec.data_modified == utc(2022, 1, 21, 21, 11, 30)
    # 8 columns, all 8 columns_description non-empty
    assert rec.column_count == 8 and rec.described_column_count == 8
    # columns in field-name order (Socrata reorders them between crawls): the file lists typical_hours,
    # annual_salary, salary_or_hourly, job_titles, name, hourly_rate, full_or_part_time, department
    assert rec.columns[0] == ("annual_salary", "Number") and rec.columns[1] == ("department", "Text")
    assert rec.columns[-1] == ("typical_hours", "Number")
    assert rec.formats == TABULAR_FORMATS and rec.distribution_count == 4
    assert rec.is_official is True  # provenance "official"
    assert rec.is_derived is False  # parent_fxf []
    assert rec.views is None and rec.downloads is None  # the scraper moved usage to the .stats file


def test_socrata_2025_discovery_item_dallas_9fxf_t2tr():
    # socrata_catalog/us_catalog_only_dataset_story_2025.json, first result "Dallas Police Active Calls"
    raw = _socrata_item(FIXTURES / "socrata_catalog/us_catalog_only_dataset_story_2025.json", "9fxf-t2tr")
    rec = SocrataConnector(portal("socrata", "https://www.dallasopendata.com")).normalize(raw)
    assert rec.title == "Dallas Police Active Calls"
    # no department custom field (Contact-Email is excluded), so resource.attribution
    assert rec.department == "Dallas Police Department"
    # Additional-Information_Update-Frequency = "Every 2 Minutes"
    assert rec.declared_frequency == "PT2M"
    assert rec.license_id == "ODC-BY-1.0"  # metadata.license "Open Data Commons Attribution License"
    assert rec.views == 9279632  # resource.page_views.page_views_total
    assert rec.downloads == 6311287  # resource.download_count
    assert rec.column_count == 13 and rec.described_column_count == 13
    assert rec.data_modified == utc(2025, 8, 25, 16, 40, 56)
    # domain_tags, sorted (Socrata reorders them between crawls): the file starts "drugs", "street", ...;
    # alphabetically first of the 36 are "abrasion", "accident", "active calls"
    assert len(rec.keywords) == 36 and rec.keywords[:3] == ("abrasion", "accident", "active calls")
    assert rec.contact_name == "Dallas OpenData"


def test_socrata_2025_story_has_no_columns():
    # same file, "COVID-19 Report" (data.ct.gov), resource.type "story", all column arrays []
    raw = _socrata_item(FIXTURES / "socrata_catalog/us_catalog_only_dataset_story_2025.json", "q5as-kyim")
    rec = SocrataConnector(portal("socrata", "https://data.ct.gov")).normalize(raw)
    assert rec.asset_type == "story"
    assert rec.column_count is None and rec.formats == () and rec.api_url is None
    assert rec.department == "Department of Public Health"  # Agency_Agency custom field
    assert rec.declared_frequency == "historical"  # Details_Update-Frequency "Not updated (historical data)"


def test_socrata_portal_fields_come_first():
    # SF-style record: a config frequency_fields entry picks "Data-change" over the table's publishing field
    raw = _socrata_item(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz", "xzkq-xp2w")
    p = portal("socrata", "https://data.cityofchicago.org", frequency_fields=("Metadata_Time-Period",),
               frequency_overrides=(("July 2021", "P1Y"),))
    rec = SocrataConnector(p).normalize(raw)
    assert rec.declared_frequency_raw == "July 2021" and rec.declared_frequency == "P1Y"


def test_birmingham_ckan_package():
    # ckan/birmingham_uk_package_search_purchase_cards_2021.json, result.results[0] "purchase-card-transactions"
    raw = load_json(FIXTURES / "ckan/birmingham_uk_package_search_purchase_cards_2021.json")["result"]["results"][0]
    rec = CkanConnector(portal("ckan", "https://data.birmingham.gov.uk")).normalize(raw)
    assert rec.source_id == "cf552d08-cee9-43bf-8c0f-3196a9311799"
    assert rec.landing_url == "https://data.birmingham.gov.uk/dataset/purchase-card-transactions"
    assert rec.department == "Birmingham City Council"  # no department field: organization.title
    assert rec.contact_name == "Ian Martin"  # maintainer
    assert rec.contact_email == "ian.martin@birmingham.gov.uk"  # maintainer_email, trailing space trimmed
    assert rec.license == "UK Open Government Licence (OGL)" and rec.license_id == "OGL-UK-3.0"  # uk-ogl
    assert rec.keywords == ("payments", "purchase card")
    assert rec.theme == "Council Business"  # groups[0].title
    # 45 resources: 43 "XLS" and 2 "" → one format; num_resources 45
    assert rec.formats == ("XLS",) and rec.distribution_count == 45
    # every resource last_modified is null and there is no "modified" extra → package metadata_modified
    assert rec.data_modified == datetime(2021, 1, 15, 10, 25, 28, 638659, tzinfo=UTC)
    assert rec.created == datetime(2014, 12, 1, 10, 29, 19, 414595, tzinfo=UTC)
    assert rec.declared_frequency is None  # "published monthly" is only prose in notes
    assert rec.access_level == "public" and rec.hidden_from_catalog is False


def test_toronto_scheming_fields():
    # ckan/toronto_package_show_result_death-registry-statistics_2023-05-03.json: top-level refresh_rate
    # "Monthly" and owner_division "City Clerk's Office" (scheming fields, no extras)
    raw = load_json(FIXTURES / "ckan/toronto_package_show_result_death-registry-statistics_2023-05-03.json")
    rec = CkanConnector(portal("ckan", "https://ckan0.cf.opendata.inter.prod-toronto.ca")).normalize(raw)
    assert rec.declared_frequency_raw == "Monthly" and rec.declared_frequency == "P1M"
    assert rec.department == "City Clerk's Office"


def test_hub_data_json_dataset_indianapolis_2019():
    # dcat_us/indianapolis_data_json_arcgis_hub_2019-01-04.json.gz, dataset[0] "Wayne Township Precinct Maps"
    raw = load_json(FIXTURES / "dcat_us/indianapolis_data_json_arcgis_hub_2019-01-04.json.gz")["dataset"][0]
    rec = DcatConnector(portal("dcat", "http://data.indy.gov")).normalize(raw)
    assert rec.source_id == "http://data1-indygis.opendata.arcgis.com/datasets/fcdcb878117c4a2c9981fcd4973f0b59"
    assert rec.department == "City of Indianapolis and Marion County - IndyGIS"  # publisher.name
    assert rec.contact_name == "Indy GIS" and rec.contact_email == "gis@indy.gov"  # mailto: stripped
    assert rec.keywords == ("Precinct Maps", "Current Precinct Maps", "Wayne Township", "Maps")
    # one distribution, format "Web Page" (mediaType text/html)
    assert rec.formats == ("HTML",) and rec.distribution_count == 1
    # a Hub licence *page* URL is no licence id
    assert rec.license.endswith("/fcdcb878117c4a2c9981fcd4973f0b59/license") and rec.license_id is None
    assert rec.created == utc(2018, 12, 18, 15, 22, 18) and rec.data_modified == utc(2018, 12, 18, 15, 35, 54)
    assert rec.api_url == "https://xmaps.indy.gov/ODP/Download/MapLibrary/Wayne Township.zip"  # webService
    assert rec.declared_frequency is None and rec.access_level == "public"


def test_socrata_data_json_dataset_chicago_22u3_xenr():
    # dcat_us/chicago_data_json_socrata_2020-07-22.json.gz, "Building Violations"
    doc = load_json(FIXTURES / "dcat_us/chicago_data_json_socrata_2020-07-22.json.gz")
    raw = next(d for d in doc["dataset"] if d["identifier"].endswith("/22u3-xenr"))
    rec = DcatConnector(portal("dcat", "https://data.cityofchicago.org")).normalize(raw)
    assert rec.source_id == "22u3-xenr"  # identifier https://data.cityofchicago.org/api/views/22u3-xenr
    assert rec.department is None  # publisher.name is the domain "data.cityofchicago.org"
    assert rec.contact_name == "cocadmin" and rec.contact_email == "dataportal@cityofchicago.org"
    # distributions text/csv, application/rdf+xml, application/json, application/xml; 3 carry describedBy
    assert rec.formats == ("CSV", "RDF", "JSON", "XML") and rec.distribution_count == 4
    assert rec.attachment_count == 3
    assert rec.theme == "Buildings" and rec.keywords == ("inspections", "violations")
    assert rec.created == utc(2018, 1, 26) and rec.data_modified == utc(2020, 7, 22)
    assert rec.license is None and rec.license_id is None


def test_socrata_view_object_chicago_zidz_sdfj():
    # socrata_views/chicago_view_zidz-sdfj_2025.json (a bare /api/views object)
    raw = load_json(FIXTURES / "socrata_views/chicago_view_zidz-sdfj_2025.json")
    rec = SocrataConnector(portal("socrata", "https://data.cityofchicago.org")).normalize(raw)
    assert rec.source_id == "zidz-sdfj" and rec.title == "Landmark Districts"
    assert rec.data_modified == datetime.fromtimestamp(1313894849, tz=UTC)  # rowsUpdatedAt
    assert rec.attachment_count == 2  # metadata.attachments
    # the view lists district_name, designation_date; columns are kept in field-name order
    assert rec.columns == (("designation_date", "date"), ("district_name", "text"))
    assert rec.hidden_from_catalog is False  # hideFromCatalog
