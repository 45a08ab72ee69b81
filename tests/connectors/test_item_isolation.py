"""Per-item isolation (connectors/items.py): every connector's normalize, fuzzed with hypothesis over mutated real
records, lets nothing out but the documented `ItemError`, and whatever it returns keeps the record contract.

Real records: the Chicago Discovery scrape (socrata), the Birmingham package_search (ckan) and the Cincinnati
data.json (dcat), see tests/fixtures/PROVENANCE.md. A mutation replaces any value at any depth (or deletes a key, or
replaces a whole object) with a value of another shape: text where an object was, a number as text, NaN, a list…
"""
from __future__ import annotations

import copy
from datetime import datetime
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connectors import make_connector
from connectors.base import DatasetRecord
from connectors.items import (
    ITEM_FAILURE_SHARE,
    ItemError,
    ItemTally,
    Normalized,
    normalize_each,
    normalize_one,
    record_problems,
)
from tests.conftest import FIXTURES
from tests.emulator import load_json, load_socrata_jsonl, portal_config

KINDS = ("socrata", "ckan", "dcat")
EXAMPLES = 150  # per connector; 2 to 7 s each here


@cache
def real_records(kind: str) -> tuple[dict[str, Any], ...]:
    if kind == "socrata":
        items = load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")
    elif kind == "ckan":
        items = load_json(FIXTURES / "ckan/birmingham_uk_package_search_purchase_cards_2021.json")["result"]["results"]
    else:
        items = load_json(FIXTURES / "dcat_us/cincinnati_data_json_socrata_2020-07-22.json.gz")["dataset"]
    return tuple(items)


@cache
def connector(kind: str) -> Any:
    return make_connector(portal_config(kind, "https://portal.example", domain="portal.example"))


def paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value: dict keys and list indexes, at any depth (containers included)."""
    found = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        found.append((*prefix, key))
        found.extend(paths(value, (*prefix, key)))
    return found


ODD_TEXT = st.sampled_from(["", " ", "lots", "x", "null", "-1", "2022-13-45T99:99", "1e309", "NaN", "<b>x</b>",
                            "\u0000", "ø" * 3])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), ODD_TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


@st.composite
def mutated(draw, kind: str) -> dict[str, Any]:
    raw = copy.deepcopy(draw(st.sampled_from(real_records(kind))))
    for _ in range(draw(st.integers(1, 4))):
        places = paths(raw)
        if not places:
            break
        *parent_path, key = draw(st.sampled_from(places))
        parent = raw
        for step in parent_path:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(VALUES)
    return raw


def check_one(kind: str, raw: Any, note=lambda what: None) -> None:
    """The property: a record that keeps the contract, or ItemError. Anything else raised fails the test."""
    try:
        record = normalize_one(connector(kind), raw)
    except ItemError:
        note(f"{kind}: item set aside")
        return
    note(f"{kind}: normalized")
    assert record_problems(record) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_real_record_normalizes_without_an_item_error(kind):
    batch = normalize_each(connector(kind), real_records(kind))
    assert batch.failed == [] and len(batch.records) == len(real_records(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_normalize_of_mutated_real_records_raises_nothing_but_item_error(kind):
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(kind))
    def prop(raw):
        check_one(kind, raw, event)  # --hypothesis-show-statistics reports how many were set aside

    prop()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("raw", [None, "x", 3, [], [{}], {}], ids=repr)
def test_an_item_that_is_not_an_object_is_an_item_error_or_a_record(kind, raw):
    check_one(kind, raw)


def test_record_contract_checks_types_and_time_zones():
    ok = DatasetRecord(portal_key="p", source_id="a", asset_type="dataset", keywords=("x",), views=3,
                       created=datetime.fromisoformat("2022-01-01T00:00:00+00:00"), columns=(("n", "text"),))
    assert record_problems(ok) == []
    bad = DatasetRecord(portal_key="p", source_id="a", asset_type="dataset", keywords=("x", 1),  # type: ignore[arg-type]
                        views="lots", created=datetime(2022, 1, 1), is_official=1,  # type: ignore[arg-type]
                        columns=(("n",),))  # type: ignore[arg-type]
    problems = " | ".join(record_problems(bad))
    for field in ("keywords", "views", "created has no time zone", "is_official", "columns"):
        assert field in problems
    assert record_problems({"title": "x"}) == ["normalize returned dict, not a DatasetRecord"]


def test_the_failure_share_is_what_the_run_tolerates():
    rec = DatasetRecord(portal_key="p", source_id="a", asset_type="dataset")
    err = ItemError("AttributeError: 'str' object has no attribute 'get'")

    def batch(good: int, bad: int) -> ItemTally:
        tally = ItemTally(ok=good // 2)  # items found unchanged count as standing, as normalized ones do
        tally.add(Normalized([rec] * (good - good // 2), [{}] * (good - good // 2), [({}, err)] * bad))
        return tally

    assert ITEM_FAILURE_SHARE == 0.05
    assert not batch(9, 1).too_many_failed  # one odd item never sinks a run, even a small one
    assert not batch(95, 5).too_many_failed  # 5 of 100: at the share
    assert batch(94, 6).too_many_failed  # 6 of 100: over it
    assert batch(0, 2).too_many_failed
    assert batch(94, 6).reason().startswith("ItemError: 6 of 100 items could not be normalized (more than 5%)")
