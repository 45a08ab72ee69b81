"""How many versions the eight real weekly Chicago crawls store, now that column and tag order do not count."""
from __future__ import annotations

import storage
from tests.storage.conftest import CHICAGO, CHICAGO_DATES, chicago_snapshot, save

# New versions per import, oldest first. Worked out independently of the connector's hashing with a
# throwaway script: read each file in date order, keep the first line of each id, turn the item into an
# order-free form (usage counters dropped, the columns_* arrays as a {field_name: column} mapping,
# domain_tags/tags sorted, domain_metadata as a sorted list of pairs) and count the ids whose form is new
# or differs from the last one stored for that id (suspect runs store their versions too). The first crawl
# stores all 313 datasets; before column order was canonicalized the same import stored
# 313, 450, 249, 94, 94, 191, 288, 252 = 1,931 versions, nearly every dataset every week.
NEW_VERSIONS = {"2022-06-08": 313, "2022-06-15": 215, "2022-06-22": 54, "2022-06-29": 37,
                "2022-07-06": 33, "2022-07-13": 52, "2022-07-20": 70, "2022-07-23": 48}


def test_eight_weekly_crawls_store_change_only_versions(engine):
    written = {d: save(engine, chicago_snapshot(d)).new_versions for d in CHICAGO_DATES}
    assert written == NEW_VERSIONS
    assert storage.row_counts(engine)["dataset_versions"] == sum(NEW_VERSIONS.values()) == 822
    # 468 distinct ids over the eight crawls, one dataset row each
    assert storage.row_counts(engine)["datasets"] == 468


def test_stored_raw_is_the_item_as_received(engine):
    """The compressed raw of a version reads back as the bytes the connector gave, columns in the order Socrata
    sent them (only the hash and the record are order-free). Both are zstd frames; the record's names the
    dictionary the portal's first write learned (466 items: enough to learn a record dictionary from, too few for a
    raw one, storage/codec.py), the raw block's none."""
    import orjson
    import sqlalchemy as sa
    import zstandard

    from storage import codec, compact

    snap = chicago_snapshot("2022-06-15")
    summary = save(engine, snap)
    # tw3a-q9j2 "Libraries - 2019 Wi Fi Usage": 06-15 lists month, ytd, number_of_sessions
    i = next(k for k, r in enumerate(snap.records) if r.source_id == "tw3a-q9j2")
    with engine.connect() as conn:
        vid, record, block = conn.execute(sa.text(
            "SELECT v.id, v.record, b.data FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
            "JOIN raw_blocks b ON b.id = v.raw_block WHERE d.source_id = 'tw3a-q9j2'")).one()
        packer = compact.portal_codec(conn, CHICAGO.key)
        raw = compact.raws_of(conn, packer, [vid])[vid]
    assert packer.current == {codec.RECORD: codec.dictionary_id(summary.run_id, codec.RECORD)}
    assert zstandard.get_frame_parameters(record).dict_id == packer.current[codec.RECORD]
    assert zstandard.get_frame_parameters(block).dict_id == 0  # its raw block's frame
    assert raw == snap.raws[i]
    resource = orjson.loads(raw)["resource"]
    assert resource["columns_field_name"] == ["month", "ytd", "number_of_sessions"]
    assert orjson.loads(packer.unpack(record))["columns"] == [["month", "Text"], ["number_of_sessions", "Number"],
                                                              ["ytd", "Number"]]


class _CountingRaws:
    """A lazy raws sequence (as pipeline.harvest passes) that records which items storage read."""

    def __init__(self, raws):
        self.raws, self.read = raws, set()

    def __len__(self):
        return len(self.raws)

    def __getitem__(self, i):
        self.read.add(i)
        return self.raws[i]


def test_raw_bytes_are_read_only_for_versions_written(engine):
    first, again = chicago_snapshot("2022-06-08"), chicago_snapshot("2022-06-15")
    save(engine, first)
    raws = _CountingRaws(again.raws)
    run_id = storage.start_run(engine, "chicago-socrata", as_of=again.as_of, started_at=again.as_of)
    summary = storage.save_harvest(engine, run_id, list(again.records), raws, again.stats, finished_at=again.as_of)
    # 215 versions written (NEW_VERSIONS above), so 215 raw items read, out of 532 lines (466 unique ids)
    assert summary.new_versions == 215 and len(raws.read) == 215
