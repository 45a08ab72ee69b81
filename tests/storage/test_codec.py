"""storage/codec.py: the encodings of the stored history, pure (no database)."""
from __future__ import annotations

import pytest
import zstandard

from storage import codec
from tests.storage.conftest import chicago_snapshot


def test_members_full_and_as_a_change_against_a_base():
    base = ["abcd-0001", "abcd-0002", "abcd-0003"]
    assert codec.decode_ids(codec.encode_ids(reversed(base))) == base  # stored sorted
    assert codec.decode_ids(codec.encode_ids([])) == [] and codec.decode_ids(None) == []
    added, dropped = codec.ids_delta(["abcd-0004", "abcd-0001", "abcd-0003"], base)
    assert (added, dropped) == (["abcd-0004"], ["abcd-0002"])
    assert codec.apply_ids_delta(codec.encode_ids_delta(added, dropped), base) == ["abcd-0001", "abcd-0003",
                                                                                   "abcd-0004"]


def test_an_unchanged_list_costs_the_same_few_bytes_whatever_its_size():
    small = [f"id-{i:06d}" for i in range(10)]
    large = [f"id-{i:06d}" for i in range(300_000)]
    unchanged_small = codec.encode_ids_delta(*codec.ids_delta(small, small))
    unchanged_large = codec.encode_ids_delta(*codec.ids_delta(large, large))
    assert unchanged_small == unchanged_large and len(unchanged_large) < 40
    assert codec.apply_ids_delta(unchanged_large, large) == large


def test_needs_base_over_half_the_list():
    assert not codec.needs_base(50, 100) and codec.needs_base(51, 100)
    assert not codec.needs_base(0, 0) and codec.needs_base(1, 0)


def test_evidence_change_keeps_values_and_order():
    same = {f"k{i}": "stale" for i in range(5)}  # unchanged entries: 4 changes of 10 stay under half
    base = {"failing": {"b": "no licence", "d": "no contact", "f": "stale", "h": "stale", **same},
            "matches": {"x": "Frequency=Daily"}, "detail": {"n": 4.0}}
    # a new id between kept ones (c), one dropped (d), one reason changed (f), one new at the end (z)
    new = {"failing": {"b": "no licence", "c": "no licence", "f": "no contact", "h": "stale", **same, "z": "stale"},
           "matches": {"x": "Frequency=Daily"}, "detail": {"n": 5.0}}
    delta = codec.evidence_delta(new, base)
    assert delta is not None
    assert delta["failing"] == {"set": {"c": "no licence", "f": "no contact", "z": "stale"}, "drop": ["d"],
                                "at": [1, 9]}
    assert delta["matches"] == {} and delta["detail"] == {"n": 5.0}  # unchanged: nothing; detail in full
    back = codec.apply_evidence_delta(codec.encode_evidence(delta), base)
    assert back == new and list(back["failing"]) == ["b", "c", "f", "h", *same, "z"]


def test_evidence_change_is_none_when_a_base_is_better():
    base = {"failing": {"a": "r", "b": "r", "c": "r"}, "matches": {}, "detail": {}}
    moved = {"failing": {"c": "r", "a": "r", "b": "r"}, "matches": {}, "detail": {}}
    assert codec.evidence_delta(moved, base) is None  # kept entries in another order: not expressible
    new = {"failing": {"a": "r", "x": "r", "y": "r"}, "matches": {}, "detail": {}}  # 2 set + 2 dropped of 3
    assert codec.evidence_delta(new, base) is None


def test_an_unchanged_evidence_is_found_by_its_text_and_its_change_is_empty_maps():
    base = {"failing": {"b": "no licence", "a": "stale"}, "matches": {"x": "Frequency=Daily"}, "detail": {"n": 2.0}}
    stored = codec.StoredEvidence(codec.encode_evidence(base))
    same = {"failing": {"b": "no licence", "a": "stale"}, "matches": {"x": "Frequency=Daily"}, "detail": {"n": 2.0}}
    assert codec.evidence_json(same) == stored.json() and stored.evidence == base
    reordered = {"failing": {"a": "stale", "b": "no licence"}, "matches": same["matches"], "detail": same["detail"]}
    assert codec.evidence_json(reordered) != stored.json()  # the order is part of the evidence
    assert codec.unchanged_delta(same) == {"failing": {}, "matches": {}, "detail": {"n": 2.0}}
    assert codec.unchanged_delta(same) == codec.evidence_delta(same, base)
    assert codec.apply_evidence_delta(codec.encode_evidence(codec.unchanged_delta(same)), base) == base


def test_version_frames_name_the_portal_dictionary_and_need_it():
    snap = chicago_snapshot("2022-06-15")  # 466 real Socrata items: enough to learn from
    dict_id = codec.dictionary_id(7, codec.RAW)
    data = codec.train(list(snap.raws), dict_id)
    assert data is not None and len(data) <= codec.DICT_BYTES_MAX
    packer = codec.Codec().with_dictionary(codec.RAW, dict_id, data)
    frames = packer.pack_many(codec.RAW, list(snap.raws))  # > CHUNK items: the threaded path
    assert [packer.unpack(f) for f in frames] == list(snap.raws)
    assert {zstandard.get_frame_parameters(f).dict_id for f in frames} == {dict_id}
    assert sum(map(len, frames)) < sum(len(codec.Codec().pack(codec.RAW, r)) for r in snap.raws) * 0.75
    with pytest.raises(ValueError, match=f"dictionary {dict_id}"):
        codec.Codec().unpack(frames[0])


def test_too_few_items_train_no_dictionary():
    assert codec.train(list(chicago_snapshot("2022-06-15").raws)[:codec.DICT_MIN_ITEMS - 1], 40_000) is None


def test_a_raw_dictionary_is_learned_only_from_enough_items_for_blocks():
    """Raw items go in blocks, which share their items' common bytes already: a write learns the raw dictionary
    from RAW_DICT_MIN_ITEMS items, the record one from DICT_MIN_ITEMS."""
    from storage import compact

    raws = list(chicago_snapshot("2022-06-15").raws)
    many = (raws * (codec.RAW_DICT_MIN_ITEMS // len(raws) + 1))[:codec.RAW_DICT_MIN_ITEMS]
    assert codec.min_items(codec.RAW) == codec.RAW_DICT_MIN_ITEMS == 2_048
    assert codec.min_items(codec.RECORD) == codec.DICT_MIN_ITEMS == 32
    _, few = compact.trained(codec.Codec(), 3, {codec.RAW: many[:-1], codec.RECORD: many[:-1]})
    assert [d["field"] for d in few] == [codec.RECORD]
    packer, enough = compact.trained(codec.Codec(), 3, {codec.RAW: many})
    assert [(d["field"], d["id"]) for d in enough] == [(codec.RAW, codec.dictionary_id(3, codec.RAW))]
    assert packer.current == {codec.RAW: codec.dictionary_id(3, codec.RAW)}


def test_raw_blocks_hold_items_in_order_and_cost_less_than_a_frame_each():
    """Chicago 06-08: 313 raw items are 2 blocks (256 + 57); item k is item k % 256 of block k // 256. With the
    portal's raw dictionary the two frames are 202,624 bytes against 225,279 for 313 item frames (-10%)."""
    items = list(chicago_snapshot("2022-06-08").raws)
    dict_id = codec.dictionary_id(1, codec.RAW)
    packer = codec.Codec().with_dictionary(codec.RAW, dict_id, codec.train(items, dict_id))
    frames = packer.pack_blocks(items)
    assert len(items) == 313 and codec.RAW_BLOCK_ITEMS == 256 and len(frames) == 2
    assert [packer.unpack_block(f) for f in frames] == [items[:256], items[256:]]
    assert packer.unpack_block(frames[300 // 256])[300 % 256] == items[300]
    assert {zstandard.get_frame_parameters(f).dict_id for f in frames} == {dict_id}
    assert sum(map(len, frames)) < 0.92 * sum(len(packer.pack(codec.RAW, i)) for i in items)
    # empty items and an empty block keep their places
    assert codec.block_items(codec.block_bytes([b"", b"{}", b""])) == [b"", b"{}", b""]
    assert codec.block_items(codec.block_bytes([])) == [] and codec.Codec().pack_blocks([]) == []


def test_raw_hashes_are_stored_in_half_their_text():
    h = "0123456789abcdef0123456789abcdef01234567"  # a sha1 hex digest: 20 bytes
    assert codec.hash_bytes(h) == bytes.fromhex(h) and len(codec.hash_bytes(h)) == 20
    assert codec.hash_text(codec.hash_bytes(h)) == h and codec.hash_text(h) == h  # text stored before 0006
    for other in ("xss", "declared-R/P1M", "Z" * 40):  # not a digest (tests name versions so): its UTF-8
        assert codec.hash_bytes(other) == other.encode() and codec.hash_text(codec.hash_bytes(other)) == other
    with pytest.raises(ValueError, match="sha1 hex digest"):
        codec.hash_bytes("x" * 20)  # would read back as a digest


def test_threads_reading_stored_lists_at_once_each_get_their_own_bytes():
    """zstandard's decompressors are not thread-safe, and `codec.unpack` (run members, evidence) serves every
    thread of a process: harvests, scorings and the dashboard read stored lists at the same time. With one
    decompressor shared, 8 threads decoding these 8 lists 300 times each got another list's bytes (7-18 times a
    run, silently) or "Data corruption detected"."""
    import threading

    lists = [[f"{k}-{i:06d}-{'x' * (k * 7)}" for i in range(20_000 + 3_000 * k)] for k in range(8)]
    blobs = [codec.encode_ids(ids) for ids in lists]
    wrong: list[int] = []
    failed: list[BaseException] = []
    start = threading.Barrier(8)

    def read(k: int) -> None:
        start.wait(30)
        try:
            for n in range(60):
                i = (k + n) % 8
                if codec.decode_ids(blobs[i]) != lists[i]:
                    wrong.append(i)
        except Exception as exc:  # noqa: BLE001 - zstandard's corruption error is what this test looks for
            failed.append(exc)

    threads = [threading.Thread(target=read, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert (wrong, failed) == ([], [])


def test_each_thread_has_its_own_decompressor():
    import threading

    mine = codec._PLAIN._decompressor(0)
    assert codec._PLAIN._decompressor(0) is mine  # reused within a thread
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(codec._PLAIN._decompressor(0)))
    t.start()
    t.join(30)
    assert theirs and theirs[0] is not mine
