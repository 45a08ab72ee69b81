"""How history is encoded in the database: pure functions and values, no I/O.

`storage.writes` encodes, `storage.queries` decodes; the SQL that finds a delta's base lives beside them
(`storage.members` for runs, `save_scores`/`score_evidence` for evidence). Three kinds of bytes:

- **Versions** (`dataset_versions.record`, `.raw`; `raw_blocks`): zstd frames. A portal's first write of at least
  `min_items(field)` items trains a zstd dictionary for the field from its own items (`train`); key versions' frames
  name that dictionary in their header, so a frame carries what it needs to be read (`Codec.unpack`). Per-item
  compression alone cannot see what items share (keys, vocabulary, the portal's boilerplate); a dictionary
  learned from the same portal can. A changed dataset is a frame against its key version (`pack_against`).
  Measured on the 4,788 versions of the 10-city 8-week history (19.4 MB raw, 10.8 MB record JSON): zlib-1 raw
  + text record (the previous head) 18.3 MB; zstd-3 without dictionary 12.4 MB; one dictionary per kind
  trained on 288 other cities 7.9 MB; a dictionary per portal and field 6.6 MB (dictionaries counted); and the
  1,725 changed versions against their key versions: 0.61 MB instead of 2.44 MB. The raw items of a key version
  written since migration 0006 are in blocks of RAW_BLOCK_ITEMS (`pack_blocks`, `raw_blocks` rows): a frame per
  item cannot see what items share beyond the dictionary.
- **Members** (`harvest_runs.members`): a run's sorted ids, either in full (a base) or as the ids added and
  dropped against a base run's full list (`ids_delta` / `apply_ids_delta`). An unchanged run stores an empty
  change: a few bytes whatever the catalog size.
- **Evidence** (`scores.failing`): {"failing": {id: reason}, "matches": {...}, "detail": {...}} in full (a
  base) or as the entries set and dropped against a base evidence (`evidence_delta` / `apply_evidence_delta`).

A delta is always against a base that is stored in full, never against another delta: reading costs two
blobs, never a chain. `needs_base(changes, size)` is the one rule for when a new full base is written.
"""
from __future__ import annotations

import functools
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import zstandard as zstd

LEVEL = 3  # zstd's default: level 9 saved 10% of the history's bytes for 4x the CPU, level 19 13% for 50x
DELTA_LEVEL = 9  # a change against a key version is a small frame from few versions: a higher level costs little
RAW, RECORD = "raw", "record"  # the dictionary-compressed fields of a version
FIELDS = (RAW, RECORD)
# A dictionary is learned from at least DICT_MIN_ITEMS items and at most DICT_SAMPLE (spread over the run), so
# training costs a bounded ~0.1 ms an item once per portal, whatever the catalog size. Its size is an eighth of
# the sample's bytes within DICT_BYTES_MIN..DICT_BYTES_MAX: on the 10 cities' histories the best size grew with
# the first snapshot (8 KB for Orlando's 11 items, 16-32 KB for 36-122 items, 64 KB from ~300), and a dictionary
# larger than that cost more than it saved. Training with fixed k/d (zstd's fastcover without the parameter
# search) took a fifth of the time for under 1% more bytes on Chicago's history. f is the log2 of fastcover's
# table of d-mer counts: its default (20: 4 MB, cleared and scanned per training) made training most of a small
# portal's first harvest (29% of the 291-catalog benchmark's); 2**18 entries are plenty for a sample of at most
# DICT_SAMPLE items, and accel 4 (of fastcover's 1-10) samples the d-mers more sparsely: on the 78 of those
# catalogs that train one, their raw frames and dictionaries 9.58 MB instead of 9.57, trained in 0.30 s instead
# of 1.11; the 10-city history 8.10 MB instead of 8.09.
DICT_BYTES_MIN, DICT_BYTES_MAX = 8_192, 65_536
DICT_MIN_ITEMS = 32
# Raw items are stored in blocks (RAW_BLOCK_ITEMS below), which already share what their items have in common: a
# raw dictionary saved 3-21% of a block's bytes on the 78 recorded catalogs of 32-977 items, less than its own
# size on every one of them (NYC's 977 items: blocks 642,928 bytes without, 611,647 + a 65,536-byte dictionary
# with), and training it was 0.45 s CPU of their first harvest (the 291-catalog benchmark's: README). A 64 KB
# dictionary saving ~32 bytes an item (NYC's) pays from ~2,000 items, so a write learns the raw one only from
# RAW_DICT_MIN_ITEMS items (a large portal's first batch of 5,000 still does). The 10-city 8-week history
# without raw dictionaries: 7.00 MB instead of 7.26 (its portals hold 11 to ~1,000 items).
RAW_DICT_MIN_ITEMS = 2_048
DICT_SAMPLE = 1_000
_TRAIN = {"k": 1024, "d": 8, "f": 18, "accel": 4}
_FIRST_DICT_ID = 32_768  # zstd reserves dictionary ids below 32,768
# A delta larger than this share of the full list it describes is stored as a new base instead: the deltas
# against one base grow as the catalog drifts from it, so a base is renewed before a delta costs half a list.
BASE_SHARE = 0.5
CHUNK = 512  # items per compression task on the thread pool (zstd releases the GIL)
THREADS = 4
# Raw items of a write are stored RAW_BLOCK_ITEMS at a time in one frame (`Codec.pack_blocks`): a frame per item
# cannot see what items share beyond the dictionary. Bytes an item, zstd-3 with the portal's raw dictionary, item
# frames / blocks of 64 / 256 / 1,000 / 5,000: NYC's 977 items 691 / 644 / 620 / 602 / 602, Edmonton's 416
# 831 / 776 / 736 / 729 / 729, Chicago's 260 731 / 681 / 650 / 649 / 649 (gzip of each whole catalog: 696, 1,103,
# 806). 256 items take nearly all of the gain and keep reading one item to decompressing ~1 MB. (The scale
# benchmark's portal repeats Chicago's 260 items with fresh ids: blocks of 1,000 or more see those copies and
# shrink to 49-178 bytes an item, which no real catalog would.)
RAW_BLOCK_ITEMS = 256
_BLOCK_COUNT = struct.Struct("<I")


def dictionary_id(run_id: int, field: str) -> int:
    """The id of the dictionary a run trains for a field: unique in a database because run ids are, and known
    before anything is written (it goes into every frame's header)."""
    return _FIRST_DICT_ID + 2 * run_id + FIELDS.index(field)


def min_items(field: str) -> int:
    """How many items a write needs for `field` to learn a dictionary from them."""
    return RAW_DICT_MIN_ITEMS if field == RAW else DICT_MIN_ITEMS


def train(samples: Sequence[bytes], dict_id: int, least: int = DICT_MIN_ITEMS) -> bytes | None:
    """A zstd dictionary learned from the samples, or None when they are fewer than `least`."""
    if len(samples) < least:
        return None
    step = max(1, len(samples) // DICT_SAMPLE)
    picked: list[bytes | bytearray | memoryview] = list(samples[::step][:DICT_SAMPLE])
    try:
        size = min(DICT_BYTES_MAX, max(DICT_BYTES_MIN, sum(map(len, picked)) // 8))
        trained = zstd.train_dictionary(size, picked, dict_id=dict_id, level=LEVEL, **_TRAIN)
    except zstd.ZstdError:  # e.g. samples too small in total for the dictionary size
        return None
    return trained.as_bytes()


class Codec:
    """Compresses a portal's version fields with its current dictionaries and reads any of its frames.

    `dictionaries`: every dictionary of the portal by id (old frames name old ones); `current`: the id used
    for new frames per field (absent: no dictionary). One codec may serve many threads (`_PLAIN` serves every
    thread of a process: harvests, scorings, the dashboard's): its zstd compressors and decompressors are per
    thread, since zstandard's are not thread-safe (one decompressor shared by 8 threads returned other frames'
    bytes, silently, or failed with "Data corruption detected").
    """

    def __init__(self, dictionaries: Mapping[int, bytes] | None = None, current: Mapping[str, int] | None = None):
        self.dictionaries = dict(dictionaries or {})
        self.current = dict(current or {})
        self._dicts = {i: zstd.ZstdCompressionDict(b) for i, b in self.dictionaries.items()}
        self._digested: set[int] = set()
        self._lock = threading.Lock()
        self._local = threading.local()  # .c: this thread's compressors by field, .d: its decompressors by dict id

    def with_dictionary(self, field: str, dict_id: int, data: bytes) -> Codec:
        """A codec that also knows `data` as dictionary `dict_id` and compresses `field` with it."""
        return Codec({**self.dictionaries, dict_id: data}, {**self.current, field: dict_id})

    def _compressor(self, field: str) -> zstd.ZstdCompressor:
        made: dict[str, zstd.ZstdCompressor] | None = getattr(self._local, "c", None)
        if made is None:
            made = self._local.c = {}
        c = made.get(field)
        if c is None:
            dict_id = self.current.get(field)
            if dict_id is not None:
                with self._lock:  # digested once for every thread, on first use (readers never pay it)
                    if dict_id not in self._digested:
                        self._dicts[dict_id].precompute_compress(level=LEVEL)  # 31 instead of 43 us an item
                        self._digested.add(dict_id)
            c = made[field] = zstd.ZstdCompressor(level=LEVEL, write_checksum=False, write_content_size=True,
                                                  dict_data=None if dict_id is None else self._dicts[dict_id])
        return c

    def pack(self, field: str, data: bytes) -> bytes:
        return self._compressor(field).compress(data)

    def pack_many(self, field: str, items: Sequence[bytes]) -> list[bytes]:
        """`pack` of each item, in order, on a few threads for large inputs."""
        if len(items) <= CHUNK:
            return [self.pack(field, b) for b in items]
        chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
        with ThreadPoolExecutor(THREADS, thread_name_prefix="zstd") as pool:
            return [b for part in pool.map(lambda ch: [self.pack(field, b) for b in ch], chunks) for b in part]

    def pack_blocks(self, items: Sequence[bytes]) -> list[bytes]:
        """The raw items in frames of RAW_BLOCK_ITEMS (item k is item k % RAW_BLOCK_ITEMS of frame
        k // RAW_BLOCK_ITEMS), with the portal's raw dictionary; on a few threads for several frames."""
        blocks = [block_bytes(items[i:i + RAW_BLOCK_ITEMS]) for i in range(0, len(items), RAW_BLOCK_ITEMS)]
        if len(blocks) <= 1:
            return [self.pack(RAW, b) for b in blocks]
        with ThreadPoolExecutor(min(THREADS, len(blocks)), thread_name_prefix="zstd") as pool:
            return list(pool.map(lambda b: self.pack(RAW, b), blocks))

    def unpack_block(self, blob: bytes) -> list[bytes]:
        """The items of a `pack_blocks` frame, in order."""
        return block_items(self.unpack(blob))

    def unpack(self, blob: bytes) -> bytes:
        return self._decompressor(zstd.get_frame_parameters(blob).dict_id).decompress(blob)

    def _decompressor(self, dict_id: int) -> zstd.ZstdDecompressor:
        made: dict[int, zstd.ZstdDecompressor] | None = getattr(self._local, "d", None)
        if made is None:
            made = self._local.d = {}
        d = made.get(dict_id)
        if d is None:
            if dict_id and dict_id not in self._dicts:
                raise ValueError(f"frame needs zstd dictionary {dict_id}, which this portal does not have")
            d = made[dict_id] = zstd.ZstdDecompressor(dict_data=self._dicts[dict_id] if dict_id else None)
        return d


_PLAIN = Codec()

HASH_BYTES = 20  # a sha1 digest: connectors.hashing.raw_hash is its 40-character hex text


def hash_bytes(text: str | bytes) -> bytes:
    """How `dataset_versions.raw_hash` is stored: a sha1 hex digest as its 20 bytes (half the text); any other
    text (tests name versions "xss", "declared-P1M") as its UTF-8, which must then not be 20 bytes long."""
    if isinstance(text, bytes):
        return text
    if len(text) == 2 * HASH_BYTES:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    data = text.encode("utf-8")
    if len(data) == HASH_BYTES:
        raise ValueError(f"raw hash {text!r}: neither a sha1 hex digest nor of another length than {HASH_BYTES} bytes")
    return data


def hash_text(stored: bytes | str) -> str:
    """The raw hash a `hash_bytes` value (or text stored before migration 0006, on SQLite) stands for."""
    if isinstance(stored, str):
        return stored
    stored = bytes(stored)
    return stored.hex() if len(stored) == HASH_BYTES else stored.decode("utf-8")


def block_bytes(items: Sequence[bytes]) -> bytes:
    """Items as one byte string: their count and end offsets (little-endian uint32), then the items."""
    ends, end = [], 0
    for item in items:
        end += len(item)
        ends.append(end)
    return struct.pack(f"<{len(items) + 1}I", len(items), *ends) + b"".join(items)


def block_items(data: bytes) -> list[bytes]:
    """The items of `block_bytes`."""
    (n,) = _BLOCK_COUNT.unpack_from(data)
    start = _BLOCK_COUNT.size * (n + 1)
    ends = struct.unpack_from(f"<{n}I", data, _BLOCK_COUNT.size)
    view = memoryview(data)
    out, at = [], start
    for end in ends:
        out.append(bytes(view[at:start + end]))
        at = start + end
    return out


def pack_against(data: bytes, base: bytes) -> bytes:
    """A zstd frame of `data` with `base` (an earlier version of the same item) as its dictionary: what changed
    costs bytes, what did not costs a reference. Measured on the 1,725 changed versions of the 10-city history:
    2.44 MB with the portal dictionaries, 0.61 MB against the dataset's key version."""
    return zstd.ZstdCompressor(level=DELTA_LEVEL, write_checksum=False, write_content_size=True,
                               dict_data=zstd.ZstdCompressionDict(base, dict_type=zstd.DICT_TYPE_RAWCONTENT)
                               ).compress(data)


def unpack_against(blob: bytes, base: bytes) -> bytes:
    return zstd.ZstdDecompressor(
        dict_data=zstd.ZstdCompressionDict(base, dict_type=zstd.DICT_TYPE_RAWCONTENT)).decompress(blob)


def pack(data: bytes) -> bytes:
    """A zstd frame without dictionary (members, evidence)."""
    return _PLAIN.pack(RAW, data)


def unpack(blob: bytes) -> bytes:
    return _PLAIN.unpack(blob)


# ---------------------------------------------------------------- members: a run's ids

def encode_ids(ids: Iterable[str]) -> bytes:
    """The full list: sorted, newline-joined, compressed."""
    return pack("\n".join(sorted(ids)).encode("utf-8"))


def decode_ids(blob: bytes | None) -> list[str]:
    if not blob:
        return []
    text = unpack(blob).decode("utf-8")
    return text.split("\n") if text else []


def ids_delta(ids: Iterable[str], base: Iterable[str]) -> tuple[list[str], list[str]]:
    """(added, dropped) of `ids` against `base`, each sorted."""
    new, old = set(ids), set(base)
    return sorted(new - old), sorted(old - new)


def encode_ids_delta(added: Sequence[str], dropped: Sequence[str]) -> bytes:
    return pack(orjson.dumps({"add": list(added), "drop": list(dropped)}))


def apply_ids_delta(blob: bytes, base: Iterable[str]) -> list[str]:
    """The sorted ids a delta blob describes against its base's ids."""
    change = orjson.loads(unpack(blob))
    return sorted((set(base) - set(change["drop"])) | set(change["add"]))


def needs_base(changes: int, size: int) -> bool:
    """Whether a list or mapping of `size` entries that differs from its base by `changes` entries is better
    stored in full as a new base (BASE_SHARE)."""
    return changes > BASE_SHARE * size


# ---------------------------------------------------------------- evidence of a score

EVIDENCE_MAPS = ("failing", "matches")  # {source_id or name: reason}: large, mostly unchanged from run to run


def evidence_json(evidence: Mapping[str, Any]) -> bytes:
    """The evidence as the JSON text its blob holds: equal evidence (same entries in the same order), equal text."""
    # Evidence has text keys (source ids, detail names): orjson's plain path, ~40% faster on a 300,000-entry map
    # than OPT_NON_STR_KEYS, which gives the same bytes for text keys and stays the fallback for any other key.
    try:
        return orjson.dumps(evidence)
    except TypeError:
        return orjson.dumps(evidence, option=orjson.OPT_NON_STR_KEYS)


def encode_evidence(evidence: Mapping[str, Any]) -> bytes:
    return pack(evidence_json(evidence))


def decode_evidence(blob: bytes | None) -> dict[str, Any]:
    return orjson.loads(unpack(blob)) if blob else {}


class StoredEvidence:
    """A base's evidence blob, read only as far as a scoring needs: its JSON text to find it unchanged (one
    bytes comparison), the dict only when a change must be worked out. At 300,000 datasets an indicator's base
    holds ~200,000 entries: decoding every base of a city cost more than computing its scores."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def json(self) -> bytes:
        return unpack(self.blob)

    @functools.cached_property
    def evidence(self) -> dict[str, Any]:
        return orjson.loads(self.json())


def unchanged_delta(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """`evidence_delta(evidence, evidence)` without comparing: no map changed, every other key in full."""
    return {key: {} if key in EVIDENCE_MAPS else value for key, value in evidence.items()}


def evidence_delta(evidence: Mapping[str, Any], base: Mapping[str, Any], *,
                   any_size: bool = False) -> dict[str, Any] | None:
    """The change from `base` to `evidence`, or None when it is better stored in full (`needs_base`, unless
    `any_size`; or an order of the kept entries that a change cannot express).

    For each of EVIDENCE_MAPS: the entries set (new or with another reason), the keys dropped, and where the new
    keys stand in the new order (the maps' order is the catalog's and is kept: readers list them in it). Every
    other key (the small "detail") in full.
    """
    delta: dict[str, Any] = {}
    changes = 0
    for key, value in evidence.items():
        if key not in EVIDENCE_MAPS:
            delta[key] = value
            continue
        now, old = value or {}, base.get(key) or {}
        if now == old and list(now) == list(old):  # unchanged, found in C: the common case of a large map
            delta[key] = {}
            continue
        drop = [k for k in old if k not in now]
        if [k for k in now if k in old] != [k for k in old if k in now]:
            return None  # the kept entries moved
        put = {k: v for k, v in now.items() if k not in old or old[k] != v}
        at = [i for i, k in enumerate(now) if k not in old]
        delta[key] = {name: part for name, part in (("set", put), ("drop", drop), ("at", at)) if part}  # {}: as base
        changes += len(put) + len(drop)
    return None if not any_size and needs_base(changes, evidence_size(evidence)) else delta


def evidence_size(evidence: Mapping[str, Any]) -> int:
    return sum(len(evidence.get(k) or {}) for k in EVIDENCE_MAPS)


def apply_evidence_delta(blob: bytes, base: Mapping[str, Any]) -> dict[str, Any]:
    """The evidence dict a delta blob describes against its base evidence, in the order it was written."""
    out: dict[str, Any] = {}
    for key, value in decode_evidence(blob).items():
        if key not in EVIDENCE_MAPS:
            out[key] = value
            continue
        old, put = base.get(key) or {}, value.get("set", {})
        dropped = set(value.get("drop", ()))
        kept = iter(k for k in old if k not in dropped)
        new_at = set(value.get("at", ()))
        new = iter(k for k in put if k not in old)
        size = len(new_at) + sum(1 for k in old if k not in dropped)
        order = [next(new) if i in new_at else next(kept) for i in range(size)]
        out[key] = {k: put[k] if k in put else old[k] for k in order}
    return out
