"""Unknown or misspelt config keys are rejected with file:line and the nearest known key (they were ignored)."""
from __future__ import annotations

import pytest

from maturity import settings

BASE = """[storage]
url = "sqlite:///x.db"

[[cities]]
key = "town"
name = "Town"
[[cities.portals]]
kind = "dcat"
url = "https://town.example/data.json"
"""


def load(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return settings.load(path, environ={}), path


@pytest.mark.parametrize(("line", "where", "text", "hint"), [
    (10, "cities[0].portals[0].shedule", BASE + 'shedule = "0 4 * * *"\n', "did you mean 'schedule'?"),
    (2, "storage.ulr", BASE.replace('url = "sqlite', 'ulr = "sqlite'), "did you mean 'url'?"),
    (6, "cities[0].nmae", BASE.replace('name = "Town"', 'nmae = "Town"\nname = "Town"'), "did you mean 'name'?"),
    (10, "webb", BASE + '[webb]\nport = 8051\n', "did you mean 'web'?"),
    (11, "web.prot", BASE + '[web]\nprot = 8051\n', "did you mean 'port'?"),
], ids=["portal", "storage", "city", "table", "web"])
def test_a_misspelt_key_names_file_line_and_the_nearest_key(tmp_path, line, where, text, hint):
    with pytest.raises(settings.ConfigError) as err:
        load(tmp_path, text)
    assert str(err.value) == f"{tmp_path / 'config.toml'}:{line}: {where}: unknown key; {hint}"


def test_an_unknown_key_far_from_any_lists_the_known_ones(tmp_path):
    with pytest.raises(settings.ConfigError, match=r"cities\[0\]\.portals\[0\]\.colour: unknown key \(known here: .*"
                                                   r"app_token.*schedule.*url"):
        load(tmp_path, BASE + 'colour = "blue"\n')


def test_free_tables_and_every_known_key_load(tmp_path):
    cfg, _ = load(tmp_path, BASE + """schedule = "0 5 * * *"
max_response_mb = 8
request_deadline_s = 60
app_token = { env = "TOKEN" }
[cities.portals.frequency_overrides]
"every full moon" = "P1M"
""")
    portal = cfg.portals[0]
    assert portal.frequency_overrides == (("every full moon", "P1M"),)  # any text is a key in a free table
    assert (portal.max_response_bytes, portal.request_deadline_s) == (8 * 2**20, 60.0)


def test_the_shipped_config_has_no_unknown_key():
    assert settings.load(environ={}).portals
