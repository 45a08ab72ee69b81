"""Members and evidence stored as changes against bases (storage/compact.py), and migration 0005 converting a
database written by the previous head. Both backends."""
from __future__ import annotations

import zlib

import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
import zstandard as zstd

import storage
from indicators.base import Score
from storage import codec, compact
from storage.writes import _versions_of
from tests.storage.conftest import CHICAGO, SETTINGS, chicago_snapshot, day, save

CRITERION_OF = {"freshness": "DM4"}
NO_ROLLUP = pd.DataFrame(columns=["criterion", "value", "stage", "indicators"])


def _runs(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT id, members, members_base FROM harvest_runs ORDER BY id")).all()


def test_runs_store_their_members_as_changes_against_the_first_complete_run(engine):
    """06-08 (313 ids) is the base; 06-15 (466, a superset: 153 added is under half) and the partial 06-22 (256,
    a subset of 06-15) are changes against it; an unchanged repeat of 06-15 stores the same change as 06-15;
    every run reads back as exactly the ids of its file."""
    dates = ("2022-06-08", "2022-06-15", "2022-06-22")
    summaries = [save(engine, chicago_snapshot(d)) for d in dates]
    assert [s.status for s in summaries] == ["ok", "ok", "suspect"]
    again = chicago_snapshot("2022-06-15")
    repeat = save(engine, again.__class__(day("2022-06-16"), again.records, again.raws, again.stats))
    rows = _runs(engine)
    first = summaries[0].run_id
    assert [r.members_base for r in rows] == [None, first, first, first]
    with engine.connect() as conn:
        members = compact.members_of(conn, [r.id for r in rows])
    expected = [sorted({r.source_id for r in chicago_snapshot(d).records}) for d in (*dates, "2022-06-15")]
    assert [members[r.id] for r in rows] == expected
    assert [len(m) for m in expected] == [313, 466, 256, 466]
    # the repeat is 153 added against the base, as 06-15 was: the same bytes
    assert rows[3].members == rows[1].members and repeat.new_versions == 0


def test_an_unchanged_scoring_stores_an_empty_change_against_the_base(engine):
    failing = {f"id-{i:04d}": "no licence" for i in range(1_000)}
    first = {"freshness": Score(value=0.0, numerator=0, denominator=1_000, failing=failing)}
    storage.save_scores(engine, "chicago", day("2022-06-08"), first, NO_ROLLUP, criterion_of=CRITERION_OF)
    storage.save_scores(engine, "chicago", day("2022-06-15"), first, NO_ROLLUP, criterion_of=CRITERION_OF)
    # a flagged scoring never becomes a base: its change, or its evidence in full when smaller (here: 2 entries
    # in full against 1,000 dropped)
    other = {"freshness": Score(value=0.0, numerator=0, denominator=5, failing={"x": "stale", "y": "stale"})}
    storage.save_scores(engine, "chicago", day("2022-06-22"), other, NO_ROLLUP, criterion_of=CRITERION_OF,
                        flag="partial")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT as_of, failing, evidence_base FROM scores ORDER BY as_of")).all()
        bases = conn.execute(sa.text("SELECT COUNT(*) FROM evidence_bases")).scalar()
    assert bases == 1 and rows[0].evidence_base == rows[1].evidence_base is not None and rows[2].evidence_base is None
    unchanged = codec.encode_evidence({"failing": {}, "matches": {}, "detail": {}})
    assert rows[0].failing == rows[1].failing == unchanged
    as_of, ev = storage.score_evidence(engine, "chicago", "freshness")
    assert as_of == day("2022-06-15") and ev == {"failing": failing, "matches": {}, "detail": {}}
    assert list(ev["failing"]) == list(failing)
    assert storage.score_evidence(engine, "chicago", "freshness", day("2022-06-22")) == (day("2022-06-15"), ev)
    flagged = orjson.loads(codec.unpack(rows[2].failing))
    assert flagged == {"failing": {"x": "stale", "y": "stale"}, "matches": {}, "detail": {}}
    # a flagged scoring close to the base stores its change: one id dropped
    near = {"freshness": Score(value=0.0, numerator=0, denominator=999, failing=dict(list(failing.items())[1:]))}
    storage.save_scores(engine, "chicago", day("2022-06-29"), near, NO_ROLLUP, criterion_of=CRITERION_OF,
                        flag="partial")
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT failing, evidence_base FROM scores ORDER BY id DESC LIMIT 1")).one()
    assert last.evidence_base == rows[0].evidence_base
    assert orjson.loads(codec.unpack(last.failing))["failing"] == {"drop": ["id-0000"]}


def test_migration_converts_a_database_of_the_previous_head(db_url):
    """A database written in the previous head's formats (record text, zlib raw, zlib members, zlib evidence),
    upgraded in place: the catalog, removals, raw items and evidence read back as written."""
    from storage.migrate import upgrade as upgrade_to

    upgrade_to(db_url, "0002_item_errors")
    engine = storage.open_db(db_url)
    storage.sync_config(engine, SETTINGS)
    dates = ("2022-06-08", "2022-06-15", "2022-07-23")
    snaps = [chicago_snapshot(d) for d in dates]
    evidence = {"failing": {"28km-gtjn": "data last updated 2011-08-21, declared monthly"},
                "matches": {"22u3-xenr": "Metadata_Frequency=Daily"}, "detail": {"stale": 1.0}}
    with engine.begin() as conn:
        _write_previous_head(conn, snaps, evidence)
    upgrade_to(db_url)
    storage.dispose(db_url)
    engine = storage.open_db(db_url)

    newest = {r.source_id: r for r in snaps[2].records}
    cat = storage.catalog(engine, CHICAGO.key)
    assert sorted(cat["source_id"]) == sorted(newest)
    assert list(cat.set_index("source_id").loc[sorted(newest), "title"]) == [newest[s].title for s in sorted(newest)]
    # ids in 06-08, absent from 06-15 and 07-23 (all three complete here)
    ids = [{r.source_id for r in s.records} for s in snaps]
    assert storage.removed_ids(engine, CHICAGO.key) == sorted(ids[0] - ids[1] - ids[2])
    assert storage.score_evidence(engine, "chicago", "freshness") == (day("2022-07-23"), evidence)
    with engine.connect() as conn:
        packer = compact.portal_codec(conn, CHICAGO.key)
        raws = conn.execute(sa.text("SELECT v.raw FROM dataset_versions v ORDER BY v.id")).scalars().all()
        runs = conn.execute(sa.text("SELECT id, members_base FROM harvest_runs ORDER BY id")).all()
    assert set(packer.current) == {codec.RAW, codec.RECORD}  # 313 versions of the first run: dictionaries learned
    assert [packer.unpack(b) for b in raws[:len(snaps[0].raws)]] == list(_unique(snaps[0]).values())
    # 06-15 adds 153 to 06-08's 313, 07-23 adds 2 and drops 55: both under half a list, changes against 06-08
    assert [r.members_base for r in runs] == [None, runs[0].id, runs[0].id]
    storage.dispose(db_url)


def _unique(snap):
    """{source_id: raw bytes} of a snapshot, the first item of a repeated id winning (as save_harvest does)."""
    out: dict[str, bytes] = {}
    for rec, raw in zip(snap.records, snap.raws, strict=True):
        out.setdefault(rec.source_id, raw)
    return out


def _sql(text: str) -> sa.TextClause:
    """Raw SQL with the times bound as the models store them (naive UTC text on SQLite)."""
    from storage.models import UTCDateTime

    return sa.text(text).bindparams(*(sa.bindparam(n, type_=UTCDateTime()) for n in ("t", "dm") if f":{n}," in text
                                      or f":{n})" in text))


def _write_previous_head(conn, snaps, evidence) -> None:
    """The rows the previous head's save_harvest and save_scores wrote, in its formats (change-only versions)."""
    seen: dict[str, tuple[int, str]] = {}
    for snap in snaps:
        unique = _unique(snap)
        records = {}
        for rec in snap.records:
            records.setdefault(rec.source_id, rec)
        run_id = conn.execute(_sql(
            "INSERT INTO harvest_runs (portal_key, source, as_of, started_at, finished_at, status, items, members) "
            "VALUES (:p, 'import', :t, :t, :t, 'ok', :n, :m) RETURNING id"),
            {"p": CHICAGO.key, "t": snap.as_of, "n": len(unique),
             "m": zlib.compress("\n".join(sorted(unique)).encode())}).scalar_one()
        for sid, raw in unique.items():
            rec = records[sid]
            if sid in seen and seen[sid][1] == rec.raw_hash:
                continue
            if sid not in seen:
                did = conn.execute(sa.text("INSERT INTO datasets (portal_key, source_id, first_run_id, last_run_id) "
                                           "VALUES (:p, :s, :r, :r) RETURNING id"),
                                   {"p": CHICAGO.key, "s": sid, "r": run_id}).scalar_one()
            else:
                did = seen[sid][0]
            seen[sid] = (did, rec.raw_hash or "")
            conn.execute(_sql("INSERT INTO dataset_versions (dataset_id, run_id, as_of, raw_hash, data_modified, "
                                 "record, raw) VALUES (:d, :r, :t, :h, :dm, :rec, :raw)"),
                         {"d": did, "r": run_id, "t": snap.as_of, "h": rec.raw_hash, "dm": rec.data_modified,
                          "rec": orjson.dumps(rec).decode(), "raw": zlib.compress(raw, 1)})
        conn.execute(_sql("INSERT INTO scores (city_key, as_of, criterion, indicator, value, failing) "
                             "VALUES ('chicago', :t, 'DM4', 'freshness', 50, :f)"),
                     {"t": snap.as_of, "f": zlib.compress(orjson.dumps(evidence))})


def test_a_changed_dataset_is_stored_against_its_key_version(engine):
    """Every version of 06-15 that changes a dataset of 06-08 names that dataset's 06-08 version (a key version)
    as its base, and its raw item reads back as the bytes the connector gave."""
    first, second = chicago_snapshot("2022-06-08"), chicago_snapshot("2022-06-15")
    save(engine, first)
    run = save(engine, second).run_id
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT d.source_id, v.id, v.base_version, k.run_id AS key_run, k.base_version AS kb,"
            " k.dataset_id = v.dataset_id AS same FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"
            " LEFT JOIN dataset_versions k ON k.id = v.base_version WHERE v.run_id = :r"), {"r": run}).all()
        packer = compact.portal_codec(conn, CHICAGO.key)
        stored = compact.raws_of(conn, packer, [r.id for r in rows])
    before = {r.source_id: r.raw_hash for r in first.records}
    changed = {r.source_id for r in second.records if r.source_id in before and before[r.source_id] != r.raw_hash}
    against = [r for r in rows if r.base_version is not None]
    assert changed and {r.source_id for r in against} <= changed
    assert len(against) >= 0.9 * len(changed)  # a weekly change is small: nearly all are stored as changes
    assert all(r.kb is None and r.same and r.key_run != run for r in against)
    raws = _unique(second)
    assert len(stored) == len(rows) and all(stored[r.id] == raws[r.source_id] for r in rows)


def test_downgrade_writes_the_previous_formats_and_upgrade_reads_them_again(db_url):
    """Runs stored as changes, versions against key versions and evidence against a base go back to the previous
    head's formats (zlib raw and members, text record, zlib evidence) and forward again, reading the same."""
    from storage.migrate import downgrade
    from storage.migrate import upgrade as upgrade_to

    upgrade_to(db_url)
    engine = storage.open_db(db_url)
    storage.sync_config(engine, SETTINGS)
    snaps = [chicago_snapshot(d) for d in ("2022-06-08", "2022-06-15")]
    for snap in snaps:
        save(engine, snap)
    failing = {f"id-{i:04d}": "no licence" for i in range(10)}
    for d in ("2022-06-08", "2022-06-15"):
        storage.save_scores(engine, "chicago", day(d), {"freshness": Score(value=0.0, numerator=0, denominator=10,
                                                                            failing=failing)},
                            NO_ROLLUP, criterion_of=CRITERION_OF)
    catalog = storage.catalog(engine, CHICAGO.key)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM dataset_versions WHERE base_version IS NOT NULL")).scalar()
    downgrade(db_url, "0002_item_errors")
    with engine.connect() as conn:
        members = [zlib.decompress(m).decode().split("\n")
                   for m in conn.execute(sa.text("SELECT members FROM harvest_runs ORDER BY id")).scalars()]
        versions = conn.execute(sa.text("SELECT d.source_id, v.record, v.raw FROM dataset_versions v "
                                        "JOIN datasets d ON d.id = v.dataset_id WHERE v.run_id = 2")).all()
        evidence = [orjson.loads(zlib.decompress(f)) for f in conn.execute(sa.text(
            "SELECT failing FROM scores ORDER BY as_of")).scalars()]
    assert members == [sorted(_unique(s)) for s in snaps]
    second = _unique(snaps[1])
    assert versions and all(zlib.decompress(raw) == second[sid] for sid, _, raw in versions)
    records = {r.source_id: r for r in snaps[1].records}
    assert all(orjson.loads(rec)["title"] == records[sid].title for sid, rec, _ in versions)
    assert evidence == [{"failing": failing, "matches": {}, "detail": {}}] * 2
    upgrade_to(db_url)
    storage.dispose(db_url)
    engine = storage.open_db(db_url)
    pd.testing.assert_frame_equal(storage.catalog(engine, CHICAGO.key), catalog)
    storage.dispose(db_url)


def test_a_streamed_run_learns_its_dictionaries_from_its_first_batch(engine):
    """RunWriter fed in batches (as pipeline._store does): a first batch of fewer than DICT_MIN_ITEMS new items
    is stored without dictionaries; the first batch with enough teaches the record one, once for the run; later
    batches and the next run use it; no batch holds RAW_DICT_MIN_ITEMS raw items, so raw blocks have no
    dictionary; the catalog and members read back exactly."""
    snap = chicago_snapshot("2022-06-08")
    first, *rest = [list(range(0, 10)), list(range(10, 110)), list(range(110, len(snap.records)))]
    run_id = storage.start_run(engine, CHICAGO.key, as_of=snap.as_of, source="import", started_at=snap.as_of)
    with storage.RunWriter(engine, run_id) as run:
        for part in (first, *rest):
            run.add([snap.records[i] for i in part], [snap.raws[i] for i in part])
        summary = run.finish(snap.stats, finished_at=snap.as_of)
    assert summary.status == "ok" and summary.items == 313
    with engine.connect() as conn:
        dicts = conn.execute(sa.text("SELECT id, run_id FROM codec_dictionaries ORDER BY id")).all()
        frames = conn.execute(sa.text("SELECT data FROM raw_blocks ORDER BY id")).scalars().all()
        named = [zstd.get_frame_parameters(r).dict_id
                 for r in conn.execute(sa.text("SELECT record FROM dataset_versions ORDER BY id")).scalars()]
        members = compact.members_of(conn, [run_id])[run_id]
    assert [d.id for d in dicts] == [codec.dictionary_id(run_id, codec.RECORD)]
    # one raw block per batch (none holds over RAW_BLOCK_ITEMS), none with a dictionary
    assert [zstd.get_frame_parameters(f).dict_id for f in frames] == [0, 0, 0]
    # the records of the first batch (10) without a dictionary, the others with the one the second batch learned
    assert set(named[:10]) == {0} and set(named[10:]) == {codec.dictionary_id(run_id, codec.RECORD)}
    assert members == sorted({r.source_id for r in snap.records})
    kept = {}
    for r in snap.records:  # a repeated id: the first one is stored
        kept.setdefault(r.source_id, r)
    cat = storage.catalog(engine, CHICAGO.key).set_index("source_id")
    assert list(cat.loc[sorted(kept), "title"]) == [kept[s].title for s in sorted(kept)]
    again = save(engine, chicago_snapshot("2022-06-15"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM codec_dictionaries")).scalar() == 1  # none learned again
    assert again.status == "ok"


def test_a_failed_run_leaves_no_raw_block(engine):
    """A run whose first batch wrote its raw blocks (and dictionaries, datasets, versions) and that then fails
    leaves none of them: they are in the run's transaction."""
    snap = chicago_snapshot("2022-06-08")
    run_id = storage.start_run(engine, CHICAGO.key, as_of=snap.as_of, source="import", started_at=snap.as_of)
    with pytest.raises(RuntimeError, match="page 2"):
        with storage.RunWriter(engine, run_id) as run:
            run.add(list(snap.records[:100]), list(snap.raws[:100]))
            with run._guard() as conn:  # written, inside the transaction
                assert conn.execute(sa.text("SELECT COUNT(*) FROM raw_blocks")).scalar() == 1
            raise RuntimeError("page 2 could not be read")
    with engine.connect() as conn:
        counts = [conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar()
                  for t in ("raw_blocks", "dataset_versions", "datasets", "codec_dictionaries")]
    assert counts == [0, 0, 0, 0]


def test_raw_frames_written_before_raw_blocks_still_read(db_url):
    """A database written before migration 0006 (per-version raw frames) is upgraded without rewriting them: they
    read back, and a later run stores its changes against those key versions and its new items in blocks."""
    from storage.migrate import downgrade
    from storage.migrate import upgrade as upgrade_to

    upgrade_to(db_url)
    engine = storage.open_db(db_url)
    storage.sync_config(engine, SETTINGS)
    first, second = chicago_snapshot("2022-06-08"), chicago_snapshot("2022-06-15")
    save(engine, first)
    downgrade(db_url, "0005_compact_history")  # 06-08 as 0005 wrote it: a raw frame on each of its 313 versions
    upgrade_to(db_url)
    storage.dispose(db_url)
    engine = storage.open_db(db_url)
    with engine.connect() as conn:
        old = dict(conn.execute(sa.text("SELECT d.source_id, v.id FROM dataset_versions v JOIN datasets d"
                                        " ON d.id = v.dataset_id WHERE v.raw IS NOT NULL AND v.raw_block IS NULL"
                                        )).all())
        assert len(old) == 313
        packer = compact.portal_codec(conn, CHICAGO.key)
        raws = compact.raws_of(conn, packer, old.values())
    assert {sid: raws[vid] for sid, vid in old.items()} == _unique(first)
    hashes = {r.source_id: r.raw_hash for r in first.records}
    with engine.connect() as conn:  # the hashes 0005 stored (text; bytea after the upgrade on PostgreSQL) read back
        assert {sid: h for sid, (_, _, h) in _versions_of(conn, CHICAGO.key, second.as_of, list(old)).items()
                } == {sid: hashes[sid] for sid in old}
    run = save(engine, second).run_id
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT d.source_id, v.id, v.base_version, v.raw_block FROM dataset_versions v"
                                    " JOIN datasets d ON d.id = v.dataset_id WHERE v.run_id = :r"), {"r": run}).all()
        raws = compact.raws_of(conn, compact.portal_codec(conn, CHICAGO.key), [r.id for r in rows])
    # 06-15 writes 215 versions: 153 new datasets (in blocks) and 62 changes, nearly all against 06-08's frames
    assert len(rows) == 215 and sum(r.source_id not in old for r in rows) == 153
    assert all(r.raw_block is not None for r in rows if r.source_id not in old)
    assert sum(r.base_version in old.values() for r in rows) >= 0.9 * 62
    assert {r.source_id: raws[r.id] for r in rows} == {sid: b for sid, b in _unique(second).items()
                                                       if sid in {r.source_id for r in rows}}
    with engine.connect() as conn:  # new hashes are 20 bytes
        assert conn.execute(sa.text("SELECT DISTINCT length(raw_hash) FROM dataset_versions WHERE run_id = :r"),
                            {"r": run}).scalars().all() == [20]
    storage.dispose(db_url)


def test_changes_against_keys_in_blocks_decode_each_block_once_per_run(engine, monkeypatch):
    """06-15 fed in 3 batches after 06-08 (313 items: raw blocks of 256 + 57): its changed datasets' key raw items
    are in those 2 blocks; the changes wait and are written together, so each block is decoded once in the run,
    not once per batch that holds a change; every raw item reads back."""
    first, second = chicago_snapshot("2022-06-08"), chicago_snapshot("2022-06-15")
    save(engine, first)
    decoded: list[int] = []
    real = codec.Codec.unpack_block
    monkeypatch.setattr(codec.Codec, "unpack_block", lambda self, blob: decoded.append(1) or real(self, blob))
    run_id = storage.start_run(engine, CHICAGO.key, as_of=second.as_of, source="import", started_at=second.as_of)
    n = len(second.records)
    with storage.RunWriter(engine, run_id) as run:
        for part in (range(0, n // 3), range(n // 3, 2 * n // 3), range(2 * n // 3, n)):
            run.add([second.records[i] for i in part], [second.raws[i] for i in part])
        summary = run.finish(second.stats, finished_at=second.as_of)
    assert summary.new_versions == 215 and len(decoded) == 2  # 153 new + 62 changed; the 2 blocks of 06-08
    monkeypatch.undo()
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT d.source_id, v.id, v.base_version FROM dataset_versions v JOIN datasets d"
                                    " ON d.id = v.dataset_id WHERE v.run_id = :r"), {"r": run_id}).all()
        raws = compact.raws_of(conn, compact.portal_codec(conn, CHICAGO.key), [r.id for r in rows])
    assert sum(r.base_version is not None for r in rows) >= 0.9 * 62
    assert {r.source_id: raws[r.id] for r in rows} == {r.source_id: _unique(second)[r.source_id] for r in rows}
