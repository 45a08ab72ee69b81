"""config.toml → frozen dataclasses: the shipped file loads, and every kind of mistake is reported with its place."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from connectors import KINDS
from maturity import settings
from maturity.settings import ConfigError

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
[storage]
url = "sqlite:///m.db"

[[cities]]
key = "chicago"
name = "Chicago, IL"
[[cities.portals]]
kind = "socrata"
url = "https://data.cityofchicago.org"
app_token = { env = "SOCRATA_APP_TOKEN" }
frequency_overrides = { "Every Business Day" = "P1D" }

[[cities]]
key = "boston"
name = "Boston, MA"
[[cities.portals]]
kind = "ckan"
url = "https://data.boston.gov/"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_lists_real_cities_of_every_kind():
    cfg = settings.load(ROOT / "config.toml", environ={})
    kinds = {p.kind for p in cfg.portals}
    assert kinds == set(KINDS)  # the registry's kinds
    assert {"chicago", "nyc", "sf", "austin", "boston", "philadelphia", "minneapolis", "indianapolis"} <= {
        c.key for c in cfg.cities}
    chicago = cfg.portal("chicago-socrata")
    assert chicago.domain == "data.cityofchicago.org"
    assert chicago.url == "https://data.cityofchicago.org"


def test_good_config_parses_into_frozen_dataclasses(tmp_path):
    cfg = settings.load(write(tmp_path, GOOD), environ={"SOCRATA_APP_TOKEN": "tok"})
    # a relative SQLite path is resolved against the config file's folder
    assert cfg.storage_url == f"sqlite:///{tmp_path / 'm.db'}"
    socrata = cfg.portal("chicago-socrata")
    assert socrata.domain == "data.cityofchicago.org"  # derived from the URL when not given
    assert socrata.app_token.value({"SOCRATA_APP_TOKEN": "tok"}) == "tok"
    assert socrata.frequency_overrides == (("every business day", "P1D"),)
    assert cfg.portal("boston-ckan").url == "https://data.boston.gov"  # trailing slash dropped
    with pytest.raises(dataclasses.FrozenInstanceError):
        socrata.kind = "ckan"  # frozen


def test_database_url_from_environment_wins(tmp_path):
    cfg = settings.load(write(tmp_path, GOOD), environ={"DATABASE_URL": "postgresql+psycopg://u@h/db"})
    assert cfg.storage_url == "postgresql+psycopg://u@h/db"


def test_config_path_from_environment(tmp_path):
    p = write(tmp_path, GOOD)
    assert settings.config_path(None, {"MATURITY_CONFIG": str(p)}) == p


@pytest.mark.parametrize("bad, where", [
    (GOOD.replace('kind = "ckan"', 'kind = "sokrata"'), ":18: cities[1].portals[0].kind: 'sokrata' is not one of"),
    (GOOD.replace('app_token = { env = "SOCRATA_APP_TOKEN" }', 'app_token = "abc123"'),
     ":11: cities[0].portals[0].app_token: secrets are read from the environment"),
    (GOOD.replace('key = "boston"', 'key = "chicago"'), ":15: cities[1].key: duplicate city key 'chicago'"),
    (GOOD.replace('url = "https://data.boston.gov/"', 'url = "data.boston.gov"'),
     ":19: cities[1].portals[0].url: 'data.boston.gov' is not an http(s) URL"),
    (GOOD.replace('url = "https://data.cityofchicago.org"',
                  'url = "https://data.cityofchicago.org"\nschedule = "every day"'),
     ":11: cities[0].portals[0].schedule: 'every day' is not a 5-field cron expression"),
])
def test_bad_values_name_file_line_key_and_problem(tmp_path, bad, where):
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError) as err:
        settings.load(path, environ={})
    assert str(err.value).startswith(str(path) + where)


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path, GOOD.replace('name = "Boston, MA"', 'name = "Boston, MA'))
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 16"):
        settings.load(path, environ={})


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        settings.load(tmp_path / "nope.toml", environ={})


def test_export_keep_is_optional_and_must_be_positive(tmp_path):
    assert settings.load(write(tmp_path, GOOD), environ={}).export.keep is None  # absent: keep every snapshot
    assert settings.load(ROOT / "config.toml", environ={}).export.keep == 104  # the shipped file: two years
    text = GOOD + '\n[export]\nkeep = 0\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        settings.load(path, environ={})
    line = text.splitlines().index("keep = 0") + 1
    assert str(err.value) == f"{path}:{line}: export.keep: expected a positive integer, got 0"


@pytest.mark.parametrize("section, bad", [
    ("web", 'port = "eighty"'), ("web", "poll_seconds = -5"), ("export", 'schedule = "mondays"'),
])
def test_bad_values_in_plain_tables_name_their_line(tmp_path, section, bad):
    text = GOOD + f"\n[{section}]\n# a comment line\n{bad}\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        settings.load(path, environ={})
    key = bad.split(" =")[0]
    assert str(err.value).startswith(f"{path}:{text.splitlines().index(bad) + 1}: {section}.{key}: ")
