"""Meta-test: every portal kind in the one registry (`connectors.CONNECTORS`) has every part a kind needs.

docs/internals.md "Add a portal kind" is the recipe; this test keeps it true. For each kind it checks the
connector module and class, config validation, archive reading (`maturity import`), a recorded fixture named
in the provenance note, the emulator serving that fixture to the real connector, and the kind's own tests.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

from connectors import CONNECTORS, KINDS, make_connector
from connectors.archive import read_items
from connectors.base import ConnectorError, FetchStats, read_document
from maturity import settings
from tests.conftest import FIXTURES
from tests.connectors.conftest import fixture_dirs
from tests.emulator import SERVED_KINDS, Emulator

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "connectors"
RECIPE_TITLE = "## Add a portal kind"
CONNECTOR_MEMBERS = ("fetch", "normalize", "raw_bytes", "raw_hash", "read_archive")

CONFIG = """
[[cities]]
key = "somewhere"
name = "Somewhere"
[[cities.portals]]
kind = "{kind}"
url = "https://portal.example.org"
"""


def smallest_recorded_catalog(kind: str) -> tuple[Path, list[dict]]:
    """The smallest fixture file that reads as a catalog of `kind` with at least one item."""
    files = sorted((f for d in fixture_dirs(kind) for f in d.rglob("*.json*") if ".stats." not in f.name),
                   key=lambda f: f.stat().st_size)
    for f in files:
        try:
            items, _ = read_items(f, kind)
        except ConnectorError:
            continue  # not a catalog (e.g. CKAN's package_list of names)
        if items:
            return f, items
    raise AssertionError(f"no recorded catalog of kind {kind!r} under tests/fixtures/{kind}*/")


def test_the_registry_is_the_list_of_kinds():
    assert KINDS == tuple(CONNECTORS) and len(KINDS) >= 3
    assert set(SERVED_KINDS) == set(KINDS), "tests/emulator.py SERVED_KINDS must list exactly the registry's kinds"


@pytest.mark.parametrize("kind", KINDS)
def test_connector_is_one_module_with_the_protocol(kind):
    cls = CONNECTORS[kind]
    assert cls.kind == kind
    assert cls.__module__ == f"connectors.{kind}", "a kind is one module, connectors/<kind>.py"
    for name in CONNECTOR_MEMBERS:
        assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks {name}"
    assert isinstance(inspect.getattr_static(cls, "stats"), property)
    # a kind's module does not import another kind's module (shared helpers live in connectors.base)
    tree = ast.parse((ROOT / "connectors" / f"{kind}.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    others = {f"connectors.{k}" for k in KINDS if k != kind}
    assert not imported & others, f"connectors/{kind}.py imports {sorted(imported & others)}"
    # paging is connectors.paging.Paginator's loop: a kind's fetch configures it and writes no loop of its own
    fetch = next(n for c in tree.body if isinstance(c, ast.ClassDef) and c.name == cls.__name__
                 for n in c.body if isinstance(n, ast.FunctionDef) and n.name == "fetch")
    assert not any(isinstance(n, ast.While) for n in ast.walk(fetch)), f"{cls.__name__}.fetch has its own loop"


@pytest.mark.parametrize("kind", KINDS)
def test_config_accepts_the_kind(kind, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(kind=kind), encoding="utf-8")
    portal = settings.load(path, environ={}).portal(f"somewhere-{kind}")
    assert portal.kind == kind
    assert isinstance(make_connector(portal), CONNECTORS[kind])


def test_config_refuses_a_kind_not_in_the_registry(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(kind="opendatasoft"), encoding="utf-8")
    with pytest.raises(settings.ConfigError, match=f"'opendatasoft' is not one of {', '.join(KINDS)}$"):
        settings.load(path, environ={})


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_fixture_reads_and_is_in_the_provenance_note(kind):
    dirs = fixture_dirs(kind)
    assert dirs, f"no tests/fixtures/{kind}*/ folder of recorded responses"
    provenance = (FIXTURES / "PROVENANCE.md").read_text(encoding="utf-8")
    for d in dirs:
        assert f"`{d.name}/" in provenance, f"tests/fixtures/PROVENANCE.md says nothing of {d.name}/"
    path, items = smallest_recorded_catalog(kind)
    # archive reading (`maturity import`) goes through the kind's read_archive, which returns fetch's stats type
    _, stats = CONNECTORS[kind].read_archive(read_document(path), path)
    assert isinstance(stats, FetchStats) and stats.items_seen == len(items)
    conn = make_connector(settings.PortalConfig(key="k", city_key="c", kind=kind, url="https://portal.example.org",
                                                domain="portal.example.org"))
    assert all(conn.normalize(raw).source_id for raw in items)


@pytest.mark.parametrize("kind", KINDS)
def test_emulator_serves_the_recorded_fixture_to_the_real_connector(kind):
    _, items = smallest_recorded_catalog(kind)
    ids = {make_connector(settings.PortalConfig(key="k", city_key="c", kind=kind, url="https://x.example",
                                                domain="x.example")).normalize(raw).source_id for raw in items}
    with Emulator() as emu:
        emu.serve(kind, "recorded", items)
        conn = make_connector(emu.portal(kind, "recorded"))
        fetched = list(conn.fetch())
    assert {conn.normalize(raw).source_id for raw in fetched} == ids
    assert conn.stats.items_seen == len(fetched) == len(items)
    assert [p for p, _, _ in emu.requests], "the connector reached the emulator"


@pytest.mark.parametrize("kind", KINDS)
def test_the_kind_has_its_own_emulator_tests(kind):
    # paging, repeats, short catalogs and faults against the emulator: tests/connectors/test_paging.py
    tree = ast.parse((TESTS / "test_paging.py").read_text(encoding="utf-8"))
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert any(n.startswith(f"test_{kind}_") for n in names), f"test_paging.py has no test_{kind}_… test"


def test_the_readme_config_example_lists_every_kind():
    # README "Adding a city": kind = "socrata"   # socrata | ckan | dcat
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = re.search(r'^kind = "\w+"\s+#\s*([\w |]+?)\s*$', readme, re.M)
    assert listed, "README: no `kind = ...  # kind | kind` line in the config example"
    assert tuple(k.strip() for k in listed.group(1).split("|")) == KINDS


def test_the_recipe_names_only_what_exists():
    """Every `module.name` the recipe in docs/internals.md names imports, and it names each part checked here."""
    text = (ROOT / "docs" / "internals.md").read_text(encoding="utf-8")
    assert RECIPE_TITLE in text
    recipe = text.split(RECIPE_TITLE, 1)[1].split("\n## ", 1)[0]
    for part in ("connectors/__init__.py", "CONNECTORS", "read_archive", "SERVED_KINDS", "tests/fixtures/",
                 "PROVENANCE.md", "test_paging.py", "test_kinds.py", "connectors.paging.Paginator"):
        assert part in recipe, f"the recipe does not mention {part}"
    dotted = set(re.findall(r"`((?:connectors|tests)\.[\w.]+)", recipe))
    assert dotted
    for name in dotted:
        module, _, attr = name.rpartition(".")
        try:
            target = importlib.import_module(name)
        except ImportError:
            target = getattr(importlib.import_module(module), attr, None)
        assert target is not None, f"the recipe names {name}, which does not exist"
