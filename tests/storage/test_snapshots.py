"""Catalog snapshots (storage/snapshots.py): a table survives its blob, and `queries.reused` assembles a table
from a snapshot and newly decoded rows with the dtypes a build from all the records gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectors.base import columns_frame
from storage import snapshots
from storage.queries import reused


def records(**overrides: list) -> pd.DataFrame:
    """A three-row table as the catalog reader builds it (columns_frame), with a few fields set by hand."""
    from connectors.base import RECORD_FIELDS

    base: dict[str, list] = {name: [None, None, None] for name in RECORD_FIELDS}
    base |= {"source_id": ["a", "b", "c"], "title": ["Trees", None, "Trees"],
             "keywords": [("x", "y"), (), ("x", "y")], "columns": [(("id", "number"), ("name", "text")), (), ()],
             "created": ["2022-01-02T03:04:05Z", None, "2021-05-06T00:00:00Z"], "views": [3, None, 1.5],
             "is_official": [True, False, True], "hidden_from_catalog": [None, True, False]}
    return columns_frame(base | overrides)


def test_a_table_and_its_version_ids_come_back_from_their_blob_as_they_were() -> None:
    table = records()
    decoded = snapshots.decode(snapshots.encode(table, np.array([7, 3, 9])))
    assert decoded is not None
    back, ids = decoded
    pd.testing.assert_frame_equal(back, table)
    assert ids.tolist() == [7, 3, 9]
    assert back["columns"][0] == (("id", "number"), ("name", "text"))  # tuples at every depth, not lists
    assert back["title"][0] is back["title"][2]  # an equal text is held once
    empty = records().iloc[:0].reset_index(drop=True)
    decoded = snapshots.decode(snapshots.encode(empty, np.array([], dtype=np.int64)))
    assert decoded is not None
    pd.testing.assert_frame_equal(decoded[0], empty)


def test_a_blob_of_another_format_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = snapshots.encode(records(), np.array([1, 2, 3]))
    monkeypatch.setattr(snapshots, "FORMAT", snapshots.FORMAT + 1)
    assert snapshots.decode(blob) is None


def test_rows_are_taken_from_the_snapshot_and_the_new_ones_from_the_fresh_records() -> None:
    table = records()
    fresh = records(source_id=["d", "e", "f"]).iloc[:2].reset_index(drop=True)
    # the catalog now: c, (new d), a, (new e); b is gone
    out = reused(table, np.array([2, -1, 0, -1]), fresh)
    assert out is not None and out["source_id"].tolist() == ["c", "d", "a", "e"]
    pd.testing.assert_frame_equal(out, pd.concat([table, fresh]).iloc[[2, 3, 0, 4]].reset_index(drop=True))
    with pytest.raises(ValueError):
        reused(table, np.array([0, -1]), None)


def test_new_rows_of_another_type_are_refused_and_missing_values_take_the_snapshot_type() -> None:
    table = records()
    # new rows without a title or a creation date: columns_frame makes them object / another unit; they fit
    fresh = records(source_id=["d", "e", "f"], title=[None, None, None], created=[None, None, None])
    out = reused(table, np.array([0, -1, -1, -1]), fresh)
    assert out is not None and out.dtypes.equals(table.dtypes)
    # a snapshot whose contact_email held no value (object) and new rows with one (text): built whole instead
    assert reused(table, np.array([0, -1]), records(contact_email=["x@y.z", None, None]).iloc[:1]) is None


def test_a_text_column_left_without_a_value_is_none_throughout_as_a_fresh_build_makes_it() -> None:
    table = records()
    out = reused(table, np.array([1]), None)  # only row b, whose title is missing
    assert out is not None
    pd.testing.assert_frame_equal(out, records().iloc[[1]].reset_index(drop=True).pipe(
        lambda f: f.assign(title=pd.Series([None], dtype=object))))
    assert out["title"].dtype == object and out["title"][0] is None
