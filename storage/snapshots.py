"""A catalog table as one blob, column by column (`encode` / `decode`, pure), and its row in `catalog_snapshots`.

Rebuilding a portal's catalog decodes every dataset's record (a zstd frame of JSON): at 300,000 datasets that is
~20 s of CPU, the largest part of `maturity score`, and from one scoring to the next almost every row comes from
the same version. A snapshot keeps the table the last scoring built with each row's version id; the next one takes
the rows whose latest version it holds and decodes the others (`storage.queries`). Versions are never rewritten,
so a row is valid as long as its version is the latest: which rows make the catalog (members, latest versions,
first seen, modification dates seen) is found afresh every time, not kept here.

Columnar, not pickled: a column of text is its distinct values (one JSON array) and a code per row, so equal
values come back as one object (as `_RecordColumns` shares them) and decoding is a few array operations; times,
numbers and flags are their arrays' bytes. JSON arrays come back as tuples, as the table holds keywords, formats
and schemas. Nothing in the blob is executed when read (no pickle from the database).
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
import zstandard as zstd
from sqlalchemy.engine import Connection

from storage.models import snapshots_t

FORMAT = 1  # bumped when the layout changes: a blob of another format is not read (the table is built again)
LEVEL = 1  # ~3x smaller than the columns' bytes already; higher levels cost more than the write saves
_HEAD = struct.Struct("<II")  # format, length of the JSON header


def encode(frame: pd.DataFrame, version_ids: np.ndarray) -> bytes:
    """The table (its columns in order, any row index dropped) and each row's version id as one zstd frame."""
    parts: list[bytes] = [np.ascontiguousarray(version_ids, dtype=np.int64).tobytes()]
    columns: list[dict[str, Any]] = []
    for name in frame.columns:
        series = frame[name]
        dtype = series.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            kind, blobs = "time", [series.array.asi8.tobytes()]  # NaT is int64's minimum, as numpy keeps it
        elif dtype == np.float64 or dtype == np.bool_:
            kind, blobs = "array", [series.to_numpy().tobytes()]
        else:  # text and objects: distinct values and a code per row (-1: missing)
            kind, blobs = "codes", list(_coded(series))
        col = {"name": name, "kind": kind, "dtype": str(dtype), "sizes": [len(b) for b in blobs]}
        if isinstance(dtype, pd.DatetimeTZDtype):
            col |= {"unit": dtype.unit, "tz": str(dtype.tz)}
        columns.append(col)
        parts += blobs
    head = orjson.dumps({"rows": len(frame), "columns": columns})
    return zstd.ZstdCompressor(level=LEVEL).compress(_HEAD.pack(FORMAT, len(head)) + head + b"".join(parts))


def decode(blob: bytes) -> tuple[pd.DataFrame, np.ndarray] | None:
    """(table, version ids) of `encode`; None for a blob of another format."""
    raw = memoryview(zstd.ZstdDecompressor().decompress(blob))
    fmt, size = _HEAD.unpack_from(raw)
    if fmt != FORMAT:
        return None
    at = _HEAD.size
    head = orjson.loads(raw[at:at + size])
    at += size
    rows = head["rows"]
    version_ids = np.frombuffer(raw[at:at + 8 * rows], dtype=np.int64).copy()
    at += 8 * rows
    data: dict[str, Any] = {}
    for col in head["columns"]:
        blobs = []
        for n in col["sizes"]:
            blobs.append(raw[at:at + n])
            at += n
        if col["kind"] == "time":
            times = np.frombuffer(blobs[0], dtype=np.int64).view(f"M8[{col['unit']}]")
            data[col["name"]] = pd.Series(times).dt.tz_localize(col["tz"])
        elif col["kind"] == "array":
            data[col["name"]] = pd.Series(np.frombuffer(blobs[0], dtype=col["dtype"]).copy())
        else:
            # a text column holds no JSON arrays: its values need no walk for tuples
            data[col["name"]] = pd.Series(_uncoded(blobs[0], blobs[1], tuples=col["dtype"] != "str"),
                                          dtype=col["dtype"])
    # the columns were made here and nothing else holds them: taken as they are, not copied (pandas copies a dict's)
    return pd.DataFrame(data, columns=[c["name"] for c in head["columns"]], copy=False), version_ids


def _coded(series: pd.Series) -> tuple[bytes, bytes]:
    """(JSON array of the distinct values, int32 code per row, -1 for a missing value)."""
    codes, distinct = pd.factorize(series.to_numpy(dtype=object))
    return orjson.dumps(distinct.tolist()), codes.astype(np.int32).tobytes()


def _tuples(value: Any) -> Any:
    """JSON arrays back to tuples, at every depth (keywords, formats, schemas' (name, type) pairs)."""
    return tuple(map(_tuples, value)) if isinstance(value, list) else value


def _uncoded(values: bytes | memoryview, codes: bytes | memoryview, *, tuples: bool = True) -> np.ndarray:
    """An object array of the values by code (None where -1); JSON arrays made tuples when `tuples`."""
    distinct = orjson.loads(values)
    if tuples:
        distinct = [_tuples(v) for v in distinct]
    table = np.empty(len(distinct) + 1, dtype=object)
    table[:-1] = distinct  # an array of tuples must be filled, not built: numpy would make them a 2-D array
    table[-1] = None
    return table[np.frombuffer(codes, dtype=np.int32)]


def load(conn: Connection, portal_key: str) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The portal's snapshot (table, version ids), None when it has none (or one of another format)."""
    blob = conn.execute(sa.select(snapshots_t.c.data).where(snapshots_t.c.portal_key == portal_key)).scalar()
    return None if blob is None else decode(bytes(blob))


def store(conn: Connection, portal_key: str, frame: pd.DataFrame, version_ids: np.ndarray) -> None:
    """Replace the portal's snapshot (in the caller's write transaction)."""
    blob = encode(frame, version_ids)
    conn.execute(sa.delete(snapshots_t).where(snapshots_t.c.portal_key == portal_key))
    conn.execute(sa.insert(snapshots_t).values(portal_key=portal_key, data=blob))
