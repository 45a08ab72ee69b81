"""The one contract every connector produces: `DatasetRecord`, plus the connector protocol and its errors.

Field names follow DCAT-US 1.1 where one exists. Missing is `None` (never ""); times are timezone-aware UTC.
"""
from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

if TYPE_CHECKING:
    import pandas as pd
    import requests

    from connectors.vocab import FieldProfile

# Volatile usage counters: excluded from `raw_hash`, so a weekly page-view tick is not a new version.
USAGE_KEYS = ("page_views", "download_count", "viewCount", "downloadCount", "tracking_summary")


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    # identity
    portal_key: str
    source_id: str
    asset_type: str  # dataset, map, chart, file, link, story, calendar, measure, ...
    landing_url: str | None = None
    api_url: str | None = None
    # description
    title: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    theme: str | None = None
    department: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    license: str | None = None
    license_id: str | None = None
    # time
    created: datetime | None = None
    metadata_modified: datetime | None = None
    data_modified: datetime | None = None
    declared_frequency: str | None = None  # ISO-8601 period ("P1D", "PT1H") or irregular / historical / continuous
    declared_frequency_raw: str | None = None
    # structure
    formats: tuple[str, ...] = ()
    distribution_count: int | None = None
    column_count: int | None = None
    described_column_count: int | None = None
    columns: tuple[tuple[str, str], ...] = ()  # (name, type)
    attachment_count: int | None = None  # documentation attachments / data-dictionary links
    # use
    views: int | None = None
    downloads: int | None = None
    # provenance
    is_official: bool | None = None
    is_derived: bool | None = None
    hidden_from_catalog: bool | None = None
    access_level: str | None = None  # DCAT-US accessLevel: public / restricted public / non-public
    raw_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(DatasetRecord))


class ConnectorError(Exception):
    """Base of the few errors that cross the connector boundary; the message is the run's recorded reason."""


class PortalUnavailable(ConnectorError):
    """The portal did not answer usefully: timeouts, 5xx or 429 after retries, connection refused."""


class PortalIncompatible(ConnectorError):
    """The portal answered, but not in the shape we know: garbage JSON, a changed envelope, short paging."""


class PortalAuthError(ConnectorError):
    """The portal refused us (401/403): a missing or wrong app token."""


# The key of SchemaCheck.errors for errors of the catalog document itself (source ids are never empty).
DOCUMENT = ""


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    """A catalog document checked against its published schema (data.json against POD v1.1 non-federal).

    `errors` maps a dataset's source_id (DOCUMENT for the document itself) to its error messages, cut to a
    few per dataset; `error_count` counts every error. Storage keeps it as data with the run.
    """

    schema: str
    entries: int  # datasets in the document
    error_count: int
    errors: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchStats:
    """What the crawl itself looked like, kept on the harvest run."""

    items_seen: int = 0
    repeats: int = 0
    reported_total: int | None = None
    pages: int = 0
    notes: tuple[str, ...] = ()  # free-text remarks for the operator (nothing parses them back)
    schema_check: SchemaCheck | None = None  # set by connectors whose catalog has a schema (data.json)


# progress(n_items, reported_total) after each page (the CLI draws a bar from it)
Progress = Callable[[int, "int | None"], None]


class Connector(Protocol):
    """What a portal kind's connector class offers (the registry `connectors.CONNECTORS` lists the classes).

    Besides these, the class has `raw_hash(raw)` (see connectors.hashing; equal to the `raw_hash` of the item's
    record), `source_id(raw)` (equal to the `source_id` of the item's record: a re-harvest compares the two with
    what is stored and skips normalizing unchanged items) and the static
    `read_archive(doc, path) -> (items, FetchStats)`: the raw items of a recorded catalog file of its kind,
    parsed (`doc`: one JSON document, or the list of a JSONL file's lines), each id once; `maturity import`
    reads files through it.
    """

    kind: str

    def __init__(self, portal: Any, *, session: requests.Session | None = None,
                 progress: Progress | None = None) -> None: ...

    def fetch(self) -> Iterator[dict[str, Any]]:
        """All I/O and paging: yield raw items, de-duplicated by id; raise a ConnectorError on failure."""

    def discover(self, raws: Iterable[dict[str, Any]]) -> FieldProfile:
        """Pure: what the run's items say about the portal's fields (see vocab.discover_fields), computed over
        the run (at most vocab.DISCOVERY_SAMPLE items, so a streamed harvest can take it from its first pages)
        before any item is normalized, and passed to every normalize() of the run."""

    def normalize(self, raw: dict[str, Any], profile: FieldProfile = ...) -> DatasetRecord:
        """Pure and total: any real item becomes a record (`profile`: the run's discover() result)."""

    def source_id(self, raw: Mapping[str, Any]) -> str:
        """Pure: the `source_id` the item's record has, without normalizing it."""
        ...

    def raw_hash(self, raw: dict[str, Any]) -> str:
        """Pure: the `raw_hash` the item's record has (connectors.hashing), without normalizing it."""
        ...

    @property
    def stats(self) -> FetchStats: ...

    def raw_bytes(self, raw: dict[str, Any]) -> bytes:
        """The orjson bytes of a raw item, as received (connectors.hashing.raw_bytes); storage keeps them."""
        ...

    @staticmethod
    def read_archive(doc: Any, path: Path) -> tuple[list[dict[str, Any]], FetchStats]:
        """The raw items of a parsed recorded catalog file of this kind, each id once."""
        ...


ArchiveReader = Callable[[Any, Path], tuple[list[dict[str, Any]], FetchStats]]


# --- recorded files (maturity import, a kind's read_archive) -------------------------------------------------

GZIP_MAGIC = b"\x1f\x8b"


def read_document(path: str | Path) -> Any:
    """A recorded file (plain or .gz) parsed: its JSON document, or the list of its JSONL lines."""
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    items = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise PortalIncompatible(f"{path}: line {number} is not JSON ({exc})") from exc
    return items


# --- parsing helpers shared by the connectors (pure) --------------------------------------------------------

def parse_time(value: Any) -> datetime | None:
    """ISO-8601 text or Unix epoch seconds → aware UTC datetime; None for anything else."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip().replace(" ", "T", 1) if "T" not in value else value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def unique_items(items: Iterable[Any], key: Callable[[dict[str, Any]], Any]) -> tuple[list[dict[str, Any]], int]:
    """The dict items, each key once in first-seen order, and how many repeats were dropped (non-dicts skipped)."""
    seen: set[Any] = set()
    out: list[dict[str, Any]] = []
    repeats = 0
    for item in items:
        if not isinstance(item, dict):
            continue
        k = key(item)
        if k in seen:
            repeats += 1
            continue
        seen.add(k)
        out.append(item)
    return out, repeats


def record_from_dict(d: dict[str, Any]) -> DatasetRecord:
    """Inverse of `DatasetRecord.as_dict` after a JSON round trip (lists back to tuples, ISO text to datetimes)."""
    out = dict(d)
    for name in ("keywords", "formats"):
        out[name] = tuple(out.get(name) or ())
    out["columns"] = tuple(tuple(c) for c in (out.get("columns") or ()))
    for name in ("created", "metadata_modified", "data_modified"):
        v = out.get(name)
        if isinstance(v, str):
            out[name] = datetime.fromisoformat(v)
    return DatasetRecord(**{k: out[k] for k in RECORD_FIELDS if k in out})


DATETIME_FIELDS = ("created", "metadata_modified", "data_modified")


class RecordLike(Protocol):
    """A DatasetRecord, or a stored one that gives its field dict without being rebuilt."""

    def as_dict(self) -> dict[str, Any]: ...


def records_frame(records: Iterable[RecordLike]) -> pd.DataFrame:
    """The catalog table every indicator and page reads: one row per record, one column per field.

    Datetime fields are `datetime64[ns, UTC]`; tuple fields stay Python tuples (object columns); counts are
    nullable floats so that "unknown" stays distinguishable from 0.
    """
    rows = [r.as_dict() for r in records]
    return columns_frame({name: [row.get(name) for row in rows] for name in RECORD_FIELDS})


def columns_frame(columns: Mapping[str, Sequence[Any]]) -> pd.DataFrame:
    """`records_frame` of records given column by column ({field: values}); datetimes as datetimes or ISO text."""
    import pandas as pd

    df = pd.DataFrame({name: columns[name] for name in RECORD_FIELDS}, columns=list(RECORD_FIELDS))
    for name in DATETIME_FIELDS:
        df[name] = pd.to_datetime(df[name], utc=True, errors="coerce", format="ISO8601")
    for name in ("distribution_count", "column_count", "described_column_count", "attachment_count",
                 "views", "downloads"):
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
    return df
