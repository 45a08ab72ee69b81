"""DCAT-US / Project Open Data v1.1 `data.json`: one document, validated against the POD schema as evidence.

Socrata-, ArcGIS Hub- and CKAN-generated documents all occur; their quirks are handled here as data shapes
(publisher.name vs the non-standard publisher.source, mediaType vs format), never by city.
"""
from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors import vocab
from connectors.base import (
    DOCUMENT,
    DatasetRecord,
    FetchStats,
    PortalIncompatible,
    Progress,
    SchemaCheck,
    parse_time,
    unique_items,
)
from connectors.hashing import raw_bytes, raw_hash
from connectors.http import get_json, make_session

SCHEMA_DIR = vocab.DATA_DIR / "pod_schema_v1.1"
SCHEMA_NAME = "POD v1.1 non-federal"
# Schema error messages kept per dataset as evidence (a dataset breaks a handful of rules; a document of
# 100k broken datasets would otherwise store millions); the count is always complete.
SCHEMA_MESSAGES_PER_DATASET = 5
SCHEMA_MESSAGE_CHARS = 200  # portal text ends up in messages; keep each short
# Socrata's identifier is the view URL; its last segment is the 4x4 the Discovery API uses.
_SOCRATA_ID = re.compile(r"/api/views/([a-z0-9]{4}-[a-z0-9]{4})/?$", re.I)
_FOURBYFOUR = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$", re.I)
_HOSTNAME = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}$", re.I)  # Socrata puts the portal's domain in publisher.name


@functools.cache
def _validators() -> tuple[Any, Any]:
    import jsonschema

    catalog = json.loads((SCHEMA_DIR / "non-federal-catalog.json").read_text(encoding="utf-8"))
    dataset = json.loads((SCHEMA_DIR / "non-federal-dataset.json").read_text(encoding="utf-8"))
    # Datasets are validated one by one (so a message can name the dataset); the catalog check skips them.
    catalog["properties"]["dataset"]["items"] = {}
    return jsonschema.Draft4Validator(catalog), jsonschema.Draft4Validator(dataset)


def validate(doc: Any) -> SchemaCheck:
    """POD v1.1 non-federal schema errors of a data.json document, per dataset (by its source id)."""
    catalog_v, dataset_v = _validators()
    count = 0
    errors: dict[str, list[str]] = {}

    def keep(key: str, where: str, message: str) -> None:
        nonlocal count
        count += 1
        kept = errors.setdefault(key, [])
        if len(kept) < SCHEMA_MESSAGES_PER_DATASET:
            kept.append(f"{where}{': ' if where else ''}{message}"[:SCHEMA_MESSAGE_CHARS])

    for error in catalog_v.iter_errors(doc):
        keep(DOCUMENT, "/".join(str(p) for p in error.absolute_path), error.message)
    entries = 0
    if isinstance(doc, dict) and isinstance(doc.get("dataset"), list):
        entries = len(doc["dataset"])
        for i, ds in enumerate(doc["dataset"]):
            key = dataset_id(ds, i) if isinstance(ds, dict) else f"#{i}"
            for error in dataset_v.iter_errors(ds):
                keep(key, "/".join(str(p) for p in error.absolute_path), error.message)
    return SchemaCheck(schema=SCHEMA_NAME, entries=entries, error_count=count,
                       errors={k: tuple(v) for k, v in errors.items()})


def dataset_id(ds: Mapping[str, Any], index: int = 0) -> str:
    """A dataset's id: `identifier` (a Socrata view URL shortened to its 4x4), else landing page, else position."""
    ident = vocab.first_text([ds.get("identifier")])
    if ident:
        m = _SOCRATA_ID.search(ident)
        return m.group(1) if m else ident
    return vocab.first_text([ds.get("landingPage")]) or f"#{index}"


class DcatConnector:
    """One `data.json` document: `fetch()` downloads and validates it, `normalize()` maps one dataset."""

    kind = "dcat"

    def __init__(self, portal: Any, *, session: requests.Session | None = None, progress: Progress | None = None):
        self.portal = portal
        self.session = session or make_session()
        self.progress = progress
        self.url = portal.catalog_url or portal.url.rstrip("/") + "/data.json"
        self._stats = FetchStats()

    raw_bytes = staticmethod(raw_bytes)
    raw_hash = staticmethod(raw_hash)

    @staticmethod
    def source_id(raw: Mapping[str, Any]) -> str:
        """The dataset's `DatasetRecord.source_id` without normalizing it (`dataset_id`)."""
        return dataset_id(raw)

    @property
    def stats(self) -> FetchStats:
        return self._stats

    def fetch(self) -> Iterator[dict[str, Any]]:
        """The document's datasets, each id once; schema errors reported in stats.schema_check, not raised."""
        items, self._stats = read_catalog(get_json(self.session, self.url), self.url)
        if self.progress:
            self.progress(len(items), len(items))
        yield from items

    @staticmethod
    def read_archive(doc: Any, path: Path) -> tuple[list[dict[str, Any]], FetchStats]:
        """A recorded `data.json` document, read as `fetch` reads the live one."""
        return read_catalog(doc, str(path))

    def normalize(self, raw: dict[str, Any], profile: vocab.FieldProfile = vocab.EMPTY_PROFILE) -> DatasetRecord:
        return normalize_dataset(self.portal, raw, profile)

    @staticmethod
    def discover(raws: Iterable[Mapping[str, Any]]) -> vocab.FieldProfile:
        """The run's FieldProfile: the people its contact points name, who are never departments (DCAT-US
        fields are standard, so none is discovered by its values)."""
        sample = [ds for ds in itertools.islice(raws, vocab.DISCOVERY_SAMPLE) if isinstance(ds, Mapping)]
        people = [n for n in map(_contact_name, sample) if n]
        return vocab.discover_fields("dcat", {}, people, [r for r in map(_publisher_root, sample) if r])


def read_catalog(doc: Any, where: str) -> tuple[list[dict[str, Any]], FetchStats]:
    """A data.json document's datasets, each id once, with its schema errors in stats.schema_check."""
    if not isinstance(doc, dict) or not isinstance(doc.get("dataset"), list):
        keys = sorted(doc)[:8] if isinstance(doc, dict) else type(doc).__name__
        raise PortalIncompatible(f"{where}: not a data.json catalog (no 'dataset' list; got {keys})")
    check = validate(doc)
    items, repeats = unique_datasets(doc["dataset"])
    return items, FetchStats(items_seen=len(items), repeats=repeats, reported_total=len(items), pages=1,
                             schema_check=check)


def unique_datasets(datasets: list[Any]) -> tuple[list[dict[str, Any]], int]:
    """Dataset dicts of a data.json, each id once, and how many repeats were dropped (`base.unique_items`; a
    dataset without identifier or landing page is known by its position in the document)."""
    ids = {id(ds): dataset_id(ds, i) for i, ds in enumerate(datasets) if isinstance(ds, dict)}
    return unique_items(datasets, lambda ds: ids[id(ds)])


def _texts(value: Any) -> tuple[str, ...]:
    """A list of strings, or a comma-separated string (some Hub keyword fields), → unique trimmed texts."""
    values = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    seen: dict[str, None] = {}
    for v in values:
        text = vocab.first_text([v]) if isinstance(v, str) else None
        if text:
            seen.setdefault(text, None)
    return tuple(seen)


def raw_department(ds: Mapping[str, Any]) -> str | None:
    """The publisher text as written (name, or the non-standard Hub `source`), None for a bare domain."""
    return _publisher(ds.get("publisher"))


def _publisher(pub: Any) -> str | None:
    if not isinstance(pub, dict):
        return vocab.first_text([pub]) if isinstance(pub, str) else None
    # `source` is the non-standard key of 2020 ArcGIS Hub documents.
    name = vocab.first_text([pub.get("name"), pub.get("source")])
    if name and _HOSTNAME.match(name):
        return None  # Socrata writes the portal's domain here, not a department
    return name


MAX_PUBLISHER_DEPTH = 10  # subOrganizationOf chains are short; a deeper one is a loop in odd data


def _publisher_root(ds: Mapping[str, Any]) -> str | None:
    """The name at the top of a publisher's `subOrganizationOf` chain, None when the publisher has no parent."""
    pub = ds.get("publisher")
    root = None
    for _ in range(MAX_PUBLISHER_DEPTH):
        parent = pub.get("subOrganizationOf") if isinstance(pub, dict) else None
        if not isinstance(parent, dict):
            break
        pub = parent
        root = vocab.first_text([pub.get("name")]) if isinstance(pub.get("name"), str) else root
    return root


def _contact_name(ds: Mapping[str, Any]) -> str | None:
    contact = cp if isinstance(cp := ds.get("contactPoint"), dict) else {}
    fn = vocab.first_text([contact.get("fn")])
    return None if fn in (None, "<Nobody>") else fn


def normalize_dataset(portal: Any, ds: Mapping[str, Any], profile: vocab.FieldProfile = vocab.EMPTY_PROFILE
                      ) -> DatasetRecord:
    """A DCAT-US dataset object → DatasetRecord (pure, total)."""
    dists = [d for d in ds.get("distribution") or [] if isinstance(d, dict)]
    formats: dict[str, None] = {}
    for d in dists:
        name = vocab.format_name(d.get("format") if isinstance(d.get("format"), str) else None) or vocab.format_name(
            d.get("mediaType") if isinstance(d.get("mediaType"), str) else None
        )
        if name:
            formats.setdefault(name, None)
    contact = cp if isinstance(cp := ds.get("contactPoint"), dict) else {}
    contact_name = _contact_name(ds)
    city = vocab.city_names(urlsplit(str(portal.url)).hostname, getattr(portal, "city_key", None)) | profile.roots
    license_raw = vocab.first_text([ds.get("license")]) if isinstance(ds.get("license"), str) else None
    period = ds.get("accrualPeriodicity")
    freq_raw = vocab.first_text([period]) if isinstance(period, str) else None
    described = sum(1 for d in dists if d.get("describedBy")) + (1 if ds.get("describedBy") else 0)
    theme = _texts(ds.get("theme"))
    overrides = tuple(getattr(portal, "frequency_overrides", ()) or ())
    access = vocab.first_text([ds.get("accessLevel")]) if isinstance(ds.get("accessLevel"), str) else None
    return DatasetRecord(
        portal_key=portal.key,
        source_id=dataset_id(ds),
        asset_type="dataset",
        landing_url=vocab.first_text([ds.get("landingPage")]) if isinstance(ds.get("landingPage"), str) else None,
        api_url=vocab.first_text([ds.get("webService")]) if isinstance(ds.get("webService"), str) else None,
        title=vocab.first_text([ds.get("title")]) if isinstance(ds.get("title"), str) else None,
        description=vocab.first_text([ds.get("description")]) if isinstance(ds.get("description"), str) else None,
        keywords=_texts(ds.get("keyword")),
        theme=theme[0] if theme else None,
        department=vocab.department(raw_department(ds), city=city, persons=profile.persons, contact=contact_name),
        contact_name=contact_name,
        contact_email=vocab.contact_email(contact.get("hasEmail")),
        license=license_raw,
        license_id=vocab.license_id(license_raw),
        created=parse_time(ds.get("issued")),
        # DCAT-US `modified` is "the most recent date on which the dataset was changed": the data update.
        data_modified=parse_time(ds.get("modified")),
        declared_frequency=vocab.frequency(freq_raw, overrides),
        declared_frequency_raw=freq_raw,
        formats=tuple(formats),
        distribution_count=len(dists),
        attachment_count=described,
        access_level=access.lower() if access else None,
        raw_hash=raw_hash(dict(ds)),
    )
