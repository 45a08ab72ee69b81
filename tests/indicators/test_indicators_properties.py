"""Property tests: values stay in 0-100, improving a record never lowers its criterion, empty catalogs give the
documented result (the "Empty:" part of each docstring)."""
from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indicators
from connectors.base import DatasetRecord, records_frame
from indicators import criteria
from indicators.base import CityCatalog, DatajsonCheck, PortalFacts, RunFact
from indicators.registry import REGISTRY, docstring_part

AS_OF = datetime(2022, 7, 23, 12, tzinfo=UTC)
# Values drawn from the recorded fixtures (licence strings from the 2022 Socrata scrape, asset types from the
# Discovery API, frequencies as the connectors normalise them).
LICENCES = [None, "Public Domain", "See Terms of Use", "Creative Commons Attribution 4.0 International",
            "Creative Commons Attribution | NoDerivatives 4.0 International License", "Open Database License"]
TYPES = ["dataset", "dataset", "file", "map", "chart", "story", "measure", "href", "filter", "calendar"]
FREQS = [None, "P1D", "P1W", "P1M", "P3M", "P6M", "P1Y", "PT1H", "irregular", "as needed", "historical",
         "continuous", "never"]
FORMATS = ["csv", "json", "xlsx", "pdf", "shp", "geojson", "html", "zip", "Esri REST", "weird"]
WORDS = ["budget", "crime", "contracts", "permits", "311", "zoning", "performance", "parks", "salaries", "misc"]
COLUMNS = [("ward", "number"), ("race", "text"), ("location", "point"), ("amount", "number"), ("name", "text"),
           ("zip_code", "text"), ("age", "number"), ("id", "number")]

dates = st.one_of(st.none(), st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2023, 6, 1),
                                          timezones=st.just(UTC)))


@st.composite
def records(draw, i: int) -> DatasetRecord:
    cols = tuple(draw(st.lists(st.sampled_from(COLUMNS), max_size=5, unique=True)))
    n_cols = len(cols) if draw(st.booleans()) else draw(st.one_of(st.none(), st.integers(0, 30)))
    return DatasetRecord(
        portal_key="p", source_id=f"r{i:04d}", asset_type=draw(st.sampled_from(TYPES)),
        landing_url=draw(st.sampled_from([None, "https://data.example.gov/d/x", "not a url"])),
        api_url=draw(st.sampled_from([None, "https://data.example.gov/resource/x.json"])),
        title=draw(st.one_of(st.none(), st.sampled_from(WORDS).map(lambda w: f"{w} {i % 3}"))),
        description=draw(st.one_of(st.none(), st.sampled_from(["short", "x" * 120]))),
        keywords=tuple(draw(st.lists(st.sampled_from(WORDS), max_size=3))),
        theme=draw(st.one_of(st.none(), st.sampled_from(["Finance", "Public Safety"]))),
        department=draw(st.one_of(st.none(), st.sampled_from(["Finance", "Police", "Parks"]))),
        contact_email=draw(st.sampled_from([None, "open@city.gov", "nobody"])),
        license=draw(st.sampled_from(LICENCES)),
        created=draw(dates), metadata_modified=draw(dates), data_modified=draw(dates),
        declared_frequency=draw(st.sampled_from(FREQS)),
        formats=tuple(draw(st.lists(st.sampled_from(FORMATS), max_size=3))),
        column_count=n_cols,
        described_column_count=None if n_cols is None else draw(st.integers(0, max(0, n_cols))),
        columns=cols,
        attachment_count=draw(st.one_of(st.none(), st.integers(0, 2))),
        views=draw(st.one_of(st.none(), st.integers(0, 10_000))),
        downloads=draw(st.one_of(st.none(), st.integers(0, 100))),
        is_derived=draw(st.one_of(st.none(), st.booleans())),
        hidden_from_catalog=draw(st.one_of(st.none(), st.booleans())),
        access_level=draw(st.sampled_from([None, "public", "non-public"])),
    )


@st.composite
def catalogs(draw) -> CityCatalog:
    n = draw(st.integers(0, 25))
    recs = [draw(records(i)) for i in range(n)]
    df = records_frame(recs)
    start = AS_OF - timedelta(days=draw(st.integers(1, 400)))
    df["first_seen"] = pd.to_datetime(pd.Series([start] * n, dtype=object), utc=True)
    df["data_modified_seen"] = pd.Series(
        [tuple(sorted({x for x in (r.data_modified, r.created) if x is not None})) for r in recs], dtype=object)
    if draw(st.booleans()):
        runs = tuple(RunFact(run_id=i, portal_key="p", as_of=start + timedelta(days=7 * i), status="ok", items=n,
                             complete=True) for i in range(draw(st.integers(0, 3))))
        dj = DatajsonCheck(checked=True, present=draw(st.booleans()), validated=True, entries=n,
                           error_count=draw(st.integers(0, 5)))
        facts = PortalFacts(reachable=draw(st.booleans()), kinds=frozenset({"socrata"}), history_start=start,
                            datajson=dj, runs=runs,
                            removed=frozenset(draw(st.lists(st.sampled_from(["gone-1", "gone-2"]), unique=True))),
                            departments=tuple(draw(st.lists(st.sampled_from(["Finance", "Police", "Fire"]),
                                                            unique=True))))
        return CityCatalog(df, facts)
    return CityCatalog(df)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(catalogs())
def test_values_within_0_100(cat):
    before = cat.frame.copy(deep=True)
    scores = indicators.compute_all(cat, AS_OF)
    pd.testing.assert_frame_equal(cat.frame, before)  # pure: the catalog is not modified
    for key, s in scores.items():
        assert s.value is None or 0.0 <= s.value <= 100.0, key
        assert s.denominator >= 0 and s.numerator >= 0, key
    roll = criteria.rollup(scores)
    carrying = roll["criterion"].isin({i.criterion for i in REGISTRY if i.weight > 0})
    assert roll.loc[carrying, "value"].between(0, 100).all()  # every criterion with a carrying indicator has a value
    assert roll.loc[~carrying, "value"].isna().all()  # possible evidence only (weight 0): nothing to roll up
    assert set(roll["stage"]) <= set(criteria.STAGE_ORDER)


def _improve(rec: DatasetRecord, how: str) -> DatasetRecord:
    if how == "description":  # a long, unique description (boilerplate needs > 5 identical texts)
        return dataclasses.replace(
            rec, description=f"{rec.source_id}: " + "what each row means and how it is collected. " * 3)
    if how == "licence":
        return dataclasses.replace(rec, license="Creative Commons Attribution 4.0 International",
                                   license_id="CC-BY-4.0")
    # "columns": describe every column
    return dataclasses.replace(rec, described_column_count=rec.column_count)


@FAST
@given(st.data())
def test_improving_a_record_never_lowers_its_criterion(data):
    n = data.draw(st.integers(1, 20))
    recs = [data.draw(records(i)) for i in range(n)]
    which = data.draw(st.integers(0, n - 1))
    how = data.draw(st.sampled_from(["description", "licence", "columns"]))
    better = list(recs)
    better[which] = _improve(recs[which], how)
    before = criteria.rollup(indicators.compute_all(records_frame(recs), AS_OF)).set_index("criterion")["value"]
    after = criteria.rollup(indicators.compute_all(records_frame(better), AS_OF)).set_index("criterion")["value"]
    for crit, v in before.items():
        if not math.isnan(v):
            assert after[crit] >= v - 1e-9, (crit, how, v, after[crit])


def test_empty_catalog_gives_documented_result():
    empty = records_frame([])
    scores = indicators.compute_all(empty, AS_OF)
    for ind in REGISTRY:
        documented = docstring_part(ind.fn, "Empty")
        value = scores[ind.key].value
        if documented.startswith("None"):
            assert value is None, ind.key
        else:
            assert documented.startswith("0") and value == 0.0, ind.key
    roll = criteria.rollup(scores)
    # nothing is evident, and nothing missing is dropped: every criterion with a carrying indicator is 0,
    # "not evident"; a criterion whose only indicators are "possible evidence" (weight 0) has no value
    carrying = {i.criterion for i in REGISTRY if i.weight > 0}
    valued = roll[roll["criterion"].isin(carrying)]
    assert len(valued) and valued["value"].eq(0.0).all()
    assert roll.loc[~roll["criterion"].isin(carrying), "value"].isna().all()
    assert (roll["stage"] == "not evident").all()
    assert criteria.overall(roll) == (0.0, "not evident")
    est = criteria.certification_estimate(criteria.statuses(roll, None))
    assert est["met"] == 0 and est["level"] is None and est["estimate"] is True


def test_list_valued_columns_score_like_tuples():
    # a catalog read back from JSON may carry lists where records_frame has tuples
    recs = [DatasetRecord(portal_key="p", source_id=f"r{i}", asset_type="dataset", title=f"budget {i}",
                          keywords=("finance",), formats=("csv",), columns=(("ward", "number"),), column_count=1,
                          described_column_count=1, license="Public Domain") for i in range(3)]
    tuples = records_frame(recs)
    lists = tuples.copy()
    for col in ("keywords", "formats"):
        lists[col] = lists[col].map(list)
    lists["columns"] = lists["columns"].map(lambda cs: [list(c) for c in cs])
    a, b = indicators.compute_all(tuples, AS_OF), indicators.compute_all(lists, AS_OF)
    assert {k: v.value for k, v in a.items()} == {k: v.value for k, v in b.items()}
