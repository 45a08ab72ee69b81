"""Vocabulary tables: real spellings from the shared fixtures (PROVENANCE "Known traps") map as expected."""
from __future__ import annotations

import pytest

from connectors import vocab


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the spellings named in fixtures/PROVENANCE.md "Free-text frequencies"
        ("Data is updated as needed", "as needed"),
        ("Data are updated daily.", "P1D"),
        ("Historical data", "historical"),
        ("Every 6 months", "P6M"),
        ("Not updated (historical only)", "historical"),
        ("Streaming", "continuous"),
        ("Biannually ", "P6M"),
        # more real values (Chicago, NYC, SF, Austin, Dallas custom fields)
        ("Data are updated semi-annually", "P6M"),  # must not fall into "annually"
        ("Annually", "P1Y"),
        ("Quarterly", "P3M"),
        ("Weekly", "P1W"),
        ("bi-weekly", "P2W"),  # must not fall into "weekly"
        ("Hourly", "PT1H"),
        ("Every 2 Minutes", "PT2M"),
        ("Data are updated every 15 minutes", "PT15M"),
        ("Data are updated multiple times per hour", "PT30M"),
        ("Data was updated daily before becoming historical", "historical"),
        ("Monthly or data are updated as needed", "P1M"),
        ("Static - not updated", "historical"),
        ("One-time", "never"),
        ("Irregular", "irregular"),
        ("Census Period", "P10Y"),
        # ISO-8601 and EU codes
        ("R/P1D", "P1D"),
        ("R/PT1H", "PT1H"),
        ("P3M", "P3M"),
        ("http://publications.europa.eu/resource/authority/frequency/IRREG", "irregular"),
        # not a frequency
        ("N/A", None),
        ("10/11/2011", None),
        ("", None),
        (None, None),
    ],
)
def test_frequency(raw, expected):
    assert vocab.frequency(raw) == expected


def test_frequency_portal_override_wins():
    assert vocab.frequency("Per Council cycle", overrides=(("per council cycle", "P1M"),)) == "P1M"
    assert vocab.frequency("Daily", overrides=(("daily", "PT1H"),)) == "PT1H"


@pytest.mark.parametrize(
    ("raw", "expected", "is_open"),
    [
        ("Public Domain", "other-pd", True),
        ("See Terms of Use", "notspecified", False),
        ("Open Data Commons Attribution License", "ODC-BY-1.0", True),
        ("Creative Commons 1.0 Universal (Public Domain Dedication)", "CC0-1.0", True),
        ("Creative Commons Attribution 3.0 Unported", "CC-BY-3.0", True),  # open, not in the pinned OD list
        ("uk-ogl", "OGL-UK-3.0", True),
        ("cc-zero", "CC0-1.0", True),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0", True),
        ("CC-BY-NC-4.0", "CC-BY-NC-4.0", False),  # straight from the OD list by id; not conformant
        ("https://hub.arcgis.com/api/v2/datasets/fcdcb878117c4a2c9981fcd4973f0b59/license", None, False),
        (None, None, False),
    ],
)
def test_license(raw, expected, is_open):
    assert vocab.license_id(raw) == expected
    assert vocab.is_open_license(vocab.license_id(raw)) is is_open


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("text/csv", "CSV"), ("CSV", "CSV"), ("Web Page", "HTML"), ("application/vnd.geo+json", "GeoJSON"),
     ("xls", "XLS"), ("POWERPOINT", "PPT"), ("Esri REST", "Esri REST"), ("parquet", "PARQUET"), ("", None)],
)
def test_format_name(raw, expected):
    assert vocab.format_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Austin Police ", "Austin Police"),  # trailing space, real Austin value
        ("Chicago Transit Authority ", "Chicago Transit Authority"),
        ("Chicago Police Department", "Police"),  # alias table: Chicago's two spellings merge
        ("Business Affairs and Consumer Protection", "Business Affairs & Consumer Protection"),
        ("Parks & Recreaction", "Parks & Recreation"),  # real typo
        ("N/A", None),
        ("<Nobody>", None),
        ("OpenDataGov@Mtahq.org", None),  # an e-mail is no department
        ("  ", None),
    ],
)
def test_department(raw, expected):
    assert vocab.department(raw) == expected


def test_department_portal_alias():
    assert vocab.department("SFMTA", aliases=(("sfmta", "Municipal Transportation Agency"),)) == (
        "Municipal Transportation Agency"
    )


def test_email():
    assert vocab.email("mailto:gis@indy.gov") == "gis@indy.gov"
    assert vocab.email("ian.martin@birmingham.gov.uk ") == "ian.martin@birmingham.gov.uk"
    assert vocab.email("mailto:Nick Lucius") is None
