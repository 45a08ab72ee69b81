"""Socrata: the Discovery API for a domain's whole catalog, optional view metadata through sodapy.

Shapes studied: the 2018 sodapy sample (no `creator`, no `data_updated_at`), the 2022 scrape of every domain
(one `results[]` item per line, usage counters moved to a side file) and the 2025 socratadata mocks. sodapy is
unmaintained, so it is imported here and nowhere else.
"""
from __future__ import annotations

import functools
import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests

from connectors import vocab
from connectors.base import (
    DatasetRecord,
    FetchStats,
    PortalIncompatible,
    Progress,
    parse_time,
    read_document,
    unique_items,
)
from connectors.hashing import raw_bytes
from connectors.hashing import raw_hash as _plain_raw_hash
from connectors.http import call_with_retries, get_json, make_session, policy_of
from connectors.paging import Page, Paginator, PagingState

SOCRATA_PAGE_LIMIT = 10_000  # documented maximum `limit` of the Discovery API
RESULT_SET_CAP = 10_000  # the Discovery API reports resultSetSize as at most this, so it only bounds totals below it
CATALOG_PATH = "/api/catalog/v1"
# Socrata's own data.json lists these exports for every tabular view (rows.csv, rows.json, rows.xml, rows.rdf).
TABULAR_FORMATS = ("CSV", "JSON", "XML", "RDF")
# Discovery `resource.type` values → DatasetRecord.asset_type; others pass through lower-cased.
ASSET_TYPES = {"href": "link", "datalens": "visualization", "blob": "file", "filter": "filter"}
# View metadata: the view fields copied into the raw item under VIEW_KEY by the optional enrichment. Usage
# counters are left out so enrichment does not make a new version on every harvest.
VIEW_KEY = "view"
VIEW_FIELDS = ("rowsUpdatedAt", "licenseId", "license", "hideFromCatalog", "hideFromDataJson", "columns", "metadata")

# Order that carries no meaning, canonicalized before hashing and normalizing (the stored raw bytes keep the
# order as received). Socrata permutes a dataset's columns from crawl to crawl: the parallel
# `resource.columns_*` arrays (name, field_name, datatype, description, format) move together, so they are
# sorted jointly by field name. Of the 313 Chicago datasets in both the 2022-06-08 and 06-15 crawls, 297
# hashed differently and 235 of those differ in nothing but column order. `domain_tags` and
# `domain_metadata` reorder too (NYC: 552 of 849 week-to-week pairs in the 2022 history reorder
# domain_tags). `categories` is left as received: its first entry is the theme when there is no
# domain_category, and no recorded crawl reorders it.
COLUMN_ARRAYS_PREFIX = "columns_"
_IS_COLUMN_ARRAY = re.compile(re.escape(COLUMN_ARRAYS_PREFIX)).match
UNORDERED_TAGS = ("domain_tags", "tags")


class SocrataConnector:
    """One Socrata domain: `fetch()` pages the Discovery API, `normalize()` maps one item to a DatasetRecord."""

    kind = "socrata"

    def __init__(
        self,
        portal: Any,
        *,
        session: requests.Session | None = None,
        progress: Progress | None = None,
        page_limit: int = SOCRATA_PAGE_LIMIT,
        enrich_views: bool = False,
    ) -> None:
        self.portal = portal
        token = portal.app_token.value() if getattr(portal, "app_token", None) else None
        self.session = session or make_session(token)
        self.progress = progress
        self.page_limit = min(page_limit, SOCRATA_PAGE_LIMIT)
        self.enrich_views = enrich_views  # off for a bulk harvest: one extra request per asset
        self.domain = portal.domain or urlsplit(portal.url).hostname or ""
        self._stats = FetchStats()
        self._sodapy: Any = None
        self._views_missing = 0

    raw_bytes = staticmethod(raw_bytes)

    @staticmethod
    def raw_hash(raw: dict[str, Any]) -> str:
        """`hashing.raw_hash` of the item with meaningless order canonicalized (`canonical_item`)."""
        if "resource" not in raw and ("viewType" in raw or "columns" in raw):
            return _plain_raw_hash(canonical_view(raw))
        return _plain_raw_hash(canonical_item(raw))

    @staticmethod
    def source_id(raw: Mapping[str, Any]) -> str:
        """The item's `DatasetRecord.source_id` without normalizing it (a Discovery item's resource id, a bare
        view's id)."""
        if "resource" not in raw and ("viewType" in raw or "columns" in raw):
            return str(raw.get("id") or "")
        resource = raw.get("resource")
        return str((resource.get("id") if isinstance(resource, dict) else None) or "")

    @property
    def stats(self) -> FetchStats:
        return self._stats

    # --- I/O -------------------------------------------------------------------------------------------

    def fetch(self) -> Iterator[dict[str, Any]]:
        """Every asset of the domain, all types, paged with `scroll_id`; each id once.

        Raises PortalIncompatible on a changed envelope, a page of only already-seen ids, or fewer items than a
        (below-cap) `resultSetSize`.
        """
        url = self.portal.url.rstrip("/") + CATALOG_PATH
        self._stats = FetchStats()
        self._views_missing = 0

        def get_page(scroll_id: str | None) -> Page:
            params: dict[str, Any] = {"domains": self.domain, "limit": self.page_limit}
            if scroll_id is not None:
                params["scroll_id"] = scroll_id
            body = get_json(self.session, url, params)
            results = _results(body, url)
            size = body.get("resultSetSize")
            return Page(results, size if isinstance(size, int) and not isinstance(size, bool) else None)

        def next_cursor(_scroll_id: str | None, page: Page, _state: PagingState) -> str | None:
            # A short page is the last; otherwise scroll past the last id served (Discovery orders by id).
            return None if len(page.items) < self.page_limit else _item_id(page.items[-1], url)

        def on_page(state: PagingState) -> None:
            notes = (f"views_missing={self._views_missing}",) if self._views_missing else ()
            self._stats = state.stats(notes)
            if self.progress:
                self.progress(state.unique, state.reported)

        pages = Paginator(
            url, None, get_page, lambda item: _item_id(item, url), next_cursor,
            describe=lambda scroll_id, n: f"page {n} (scroll_id={scroll_id})",
            # The portal's total counts the items it served, repeats included (the real Chicago crawl: 295
            # lines, 260 unique, resultSetSize 295), and at the cap it is no count at all.
            total_counts_repeats=True, total_cap=RESULT_SET_CAP, keep_largest_total=True, on_page=on_page,
        )
        for item in pages:
            yield self._enrich(item) if self.enrich_views else item

    def view_metadata(self, source_id: str) -> dict[str, Any]:
        """`/api/views/{id}.json` through sodapy, with the project's session and retries."""
        client = self._client()
        url = f"{self.portal.url.rstrip('/')}/api/views/{source_id}.json"
        view = call_with_retries(self.session, lambda: client.get_metadata(source_id), url)
        if not isinstance(view, dict):
            raise PortalIncompatible(f"{url}: expected a view object, got {type(view).__name__}")
        return view

    def _client(self) -> Any:
        if self._sodapy is None:
            from sodapy import Socrata

            parts = urlsplit(self.portal.url)
            # sodapy builds URLs as "https://" + domain + path. Its `session_adapter` option is the supported
            # way to change that prefix (it mounts the adapter and uses its prefix), and "domain" may carry a
            # port and base path, so "http://127.0.0.1:PORT" works. We then hand it our session so requests
            # carry the project's User-Agent and app token; retries come from call_with_retries.
            adapter = requests.adapters.HTTPAdapter()
            # sodapy logs a warning when built without a token; the token it would set goes on its own
            # session, which is replaced below, so our session's header (or its absence) is what is sent.
            client = Socrata(
                parts.netloc + parts.path.rstrip("/"),
                self.session.headers.get("X-App-Token") or "unused",
                session_adapter={"prefix": f"{parts.scheme}://", "adapter": adapter},
                timeout=policy_of(self.session).timeout_s,
            )
            client.session = self.session
            self._sodapy = client
        return self._sodapy

    def _enrich(self, item: dict[str, Any]) -> dict[str, Any]:
        """Add view metadata only where the catalog lacks a field (data update time, licence)."""
        resource = item.get("resource") or {}
        if resource.get("data_updated_at") and (item.get("metadata") or {}).get("license"):
            return item
        try:
            view = self.view_metadata(str(resource.get("id")))
        except PortalIncompatible:
            # One missing or odd view (HTTP 404 for an asset deleted mid-harvest) must not fail the run: the
            # item keeps its catalog fields and the count is noted on the run.
            self._views_missing += 1
            return item
        return {**item, VIEW_KEY: {k: view[k] for k in VIEW_FIELDS if k in view}}

    @staticmethod
    def read_archive(doc: Any, path: Path) -> tuple[list[dict[str, Any]], FetchStats]:
        """A recorded Socrata catalog file: a Discovery envelope `{"results": [...]}`, a list of items, JSONL
        (one item per line, as the 2022 git scrape), a `{"datasets": [view, ...]}` dump of view objects or one
        view. A scrape's `<name>.stats.jsonl[.gz]` side file next to `<name>.jsonl[.gz]` is merged back into
        each item's `resource.page_views` / `resource.download_count` (the live API's place for them)."""
        raw, reported = _archive_items(doc, path)
        items, repeats = unique_items(raw, _archive_id)
        stats_path = _stats_file(path)
        if stats_path is not None:
            items = _merge_usage(items, stats_path)
        return items, FetchStats(items_seen=len(items), repeats=repeats, reported_total=reported, pages=1)

    # --- pure ------------------------------------------------------------------------------------------

    def normalize(self, raw: dict[str, Any], profile: vocab.FieldProfile = vocab.EMPTY_PROFILE) -> DatasetRecord:
        """Discovery item (any recorded vintage) or a bare view object → DatasetRecord."""
        if "resource" not in raw and ("viewType" in raw or "columns" in raw):
            return normalize_view(self.portal, raw, profile)
        return normalize_item(self.portal, raw, profile)

    @staticmethod
    def discover(raws: Iterable[Any]) -> vocab.FieldProfile:
        """The run's FieldProfile, computed from the run's items before they are normalized (`discover_fields`)."""
        return discover_fields(raws)


def _results(body: Any, url: str) -> list[Any]:
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        keys = sorted(body)[:8] if isinstance(body, dict) else type(body).__name__
        raise PortalIncompatible(f"{url}: unexpected Discovery response shape (no 'results' list; got {keys})")
    return body["results"]


def _item_id(item: Any, url: str) -> str:
    rid = (item.get("resource") or {}).get("id") if isinstance(item, dict) else None
    if not isinstance(rid, str) or not rid:
        raise PortalIncompatible(f"{url}: a catalog item has no resource.id")
    return rid


def _archive_id(item: dict[str, Any]) -> Any:
    return (item.get("resource") or {}).get("id") or item.get("id")


def _archive_items(doc: Any, path: Path) -> tuple[list[Any], int | None]:
    if isinstance(doc, list):
        return doc, None
    if isinstance(doc, dict):
        if isinstance(doc.get("results"), list):
            size = doc.get("resultSetSize")
            reported = size if isinstance(size, int) and size < RESULT_SET_CAP else None
            return doc["results"], reported
        if isinstance(doc.get("datasets"), list):
            return doc["datasets"], None
        if "resource" in doc or "viewType" in doc:
            return [doc], None
    raise PortalIncompatible(f"{path}: not a Socrata catalog file (no results list, item or view)")


def _stats_file(path: Path) -> Path | None:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl"):
        if name.endswith(suffix) and not name.endswith(".stats" + suffix):
            for candidate_suffix in (".stats.jsonl.gz", ".stats.jsonl"):
                candidate = path.with_name(name[: -len(suffix)] + candidate_suffix)
                if candidate.exists():
                    return candidate
    return None


def _merge_usage(items: list[dict[str, Any]], stats_path: Path) -> list[dict[str, Any]]:
    usage = {}
    for row in read_document(stats_path):
        if isinstance(row, dict) and isinstance(row.get("stats"), dict):
            usage[row.get("id")] = row["stats"]
    out = []
    for item in items:
        stats = usage.get(_archive_id(item))
        resource = item.get("resource")
        if stats and isinstance(resource, dict) and "page_views" not in resource:
            page_views = {k: v for k, v in stats.items() if k.startswith("page_views")}
            extra: dict[str, Any] = {"page_views": page_views}
            if "download_count" in stats:
                extra["download_count"] = stats["download_count"]
            item = {**item, "resource": {**resource, **extra}}
        out.append(item)
    return out


# --- normalization helpers (pure) --------------------------------------------------------------------------

# Short texts repeat across a catalog (the same tags, custom-field values, licences, owners and departments on
# thousands of datasets), and the vocab functions are pure: memoized per process, bounded. Titles and
# descriptions are mostly unique and are not cached.
TEXT_CACHE_SIZE = 65_536


@functools.lru_cache(maxsize=TEXT_CACHE_SIZE)
def _cached_text(value: str) -> str | None:
    return vocab.first_text([value])


def _text(value: Any) -> str | None:
    """`vocab.first_text([value])`, memoized for text."""
    return _cached_text(value) if type(value) is str else vocab.first_text([value])


def _memo(fn: Callable[..., Any]) -> Callable[..., Any]:
    cached = functools.lru_cache(maxsize=TEXT_CACHE_SIZE)(fn)

    def call(*args: Any) -> Any:
        try:
            return cached(*args)
        except TypeError:  # an unhashable argument (a list in odd data): computed, not cached
            return fn(*args)
    call.cache_clear = cached.cache_clear  # type: ignore[attr-defined]  # benchmarks swap the vocabulary tables
    return call


_frequency = _memo(vocab.frequency)
_department = _memo(lambda text, aliases, city, persons, contact: vocab.department(
    text, aliases, city=city, persons=persons, contact=contact))
_license_id = _memo(vocab.license_id)


def _sorted_columns(resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` with its parallel `columns_*` arrays permuted jointly into field-name order (same object if
    already)."""
    names = resource.get("columns_field_name") or resource.get("columns_name")
    if type(names) is not list or len(names) < 2:
        return resource
    n = len(names)
    try:  # the hot path: distinct text names (every recorded item)
        order = sorted(range(n), key=names.__getitem__) if len(set(names)) == n else None
    except TypeError:  # unhashable or mixed-type names
        order = None
    if order is None:  # duplicate or odd names: text labels, ties broken by the whole column
        keys = sorted(k for k, v in resource.items() if k.startswith(COLUMN_ARRAYS_PREFIX) and isinstance(v, list))
        if any(len(resource[k]) != n for k in keys):
            return resource
        labels = [str(x) for x in names]
        order = sorted(range(n), key=lambda i: (labels[i], orjson.dumps([resource[k][i] for k in keys],
                                                                       option=orjson.OPT_SORT_KEYS)))
    if order == list(range(n)):
        return resource
    keys = [k for k in _column_arrays(tuple(resource)) if type(resource[k]) is list]
    if any(len(resource[k]) != n for k in keys):
        return resource  # arrays that do not pair up are left as received (never seen in 14,453 recorded items)
    out = dict(resource)
    pick = operator.itemgetter(*order)
    for k in keys:
        out[k] = list(pick(resource[k]))
    return out


@functools.lru_cache(maxsize=1_024)
def _column_arrays(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The `columns_*` names among a resource's keys. A portal's items share a few key layouts, and every item's
    hash is computed on every harvest: matching the names once per layout took a quarter of `_sorted_columns`."""
    return tuple(filter(_IS_COLUMN_ARRAY, keys))


def _sorted_tags(values: Any) -> Any:
    if type(values) is not list or len(values) < 2:
        return values
    try:
        ordered = sorted(values)
    except TypeError:  # mixed types: left as received
        return values
    return values if ordered == values else ordered


_KEY_VALUE = operator.itemgetter("key", "value")


def _pair_json(p: Any) -> bytes:
    return orjson.dumps([p.get("key"), p.get("value")] if isinstance(p, dict) else [p], option=orjson.OPT_SORT_KEYS)


def _sorted_pairs(pairs: Any) -> Any:
    """domain_metadata [{key, value}] by key, then value (so a repeated key picks the same value every time)."""
    if type(pairs) is not list or len(pairs) < 2:
        return pairs
    try:  # text keys and values: plain tuple order
        ordered = sorted(pairs, key=_KEY_VALUE)
    except (TypeError, KeyError):  # None, numbers, dicts, missing or non-dict entries: order by their JSON
        ordered = sorted(pairs, key=_pair_json)
    return pairs if all(a is b for a, b in zip(ordered, pairs, strict=True)) else ordered


def canonical_item(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The Discovery item with meaningless order canonicalized: columns jointly by field name, tags and
    domain_metadata sorted (an enriched view's columns by field name). Shallow copies; the input is untouched."""
    out = raw if isinstance(raw, dict) else dict(raw)
    resource = out.get("resource")
    if isinstance(resource, dict):
        sorted_resource = _sorted_columns(resource)
        if sorted_resource is not resource:
            out = {**out, "resource": sorted_resource}
    classification = out.get("classification")
    if isinstance(classification, dict):
        changed = {k: _sorted_tags(classification.get(k)) for k in UNORDERED_TAGS if k in classification}
        pairs = classification.get("domain_metadata")
        changed["domain_metadata"] = _sorted_pairs(pairs)
        changed = {k: v for k, v in changed.items() if v is not classification.get(k)}
        if changed:
            out = {**out, "classification": {**classification, **changed}}
    view = out.get(VIEW_KEY)
    if isinstance(view, dict) and isinstance(view.get("columns"), list):
        columns = _sorted_view_columns(view["columns"])
        if columns is not view["columns"]:
            out = {**out, VIEW_KEY: {**view, "columns": columns}}
    return out


def _sorted_view_columns(columns: list[Any]) -> list[Any]:
    if len(columns) < 2 or not all(isinstance(c, dict) for c in columns):
        return columns
    key = lambda c: (str(c.get("fieldName") or c.get("name")), orjson.dumps(c, option=orjson.OPT_SORT_KEYS))  # noqa: E731
    ordered = sorted(columns, key=key)
    return columns if all(a is b for a, b in zip(ordered, columns, strict=True)) else ordered


def canonical_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """A bare view object with its columns by field name and its tags sorted (see canonical_item)."""
    out = view if isinstance(view, dict) else dict(view)
    changed: dict[str, Any] = {}
    columns, tags = out.get("columns"), out.get("tags")
    if isinstance(columns, list) and (ordered := _sorted_view_columns(columns)) is not columns:
        changed["columns"] = ordered
    if (sorted_tags := _sorted_tags(tags)) is not tags:
        changed["tags"] = sorted_tags
    return {**out, **changed} if changed else out


def custom_value(pairs: Mapping[str, Any], portal_fields: tuple[str, ...], role: str,
                 discovered: tuple[str, ...] = ()) -> str | None:
    """The first non-empty custom field for `role` ("frequency" / "department"): portal config, then the
    kind's table, then a key whose words name the role (its field's name before its fieldset's, then key
    order), then the fields the run's profile found by their values (`discovered`)."""
    ranks = _field_ranks(role, tuple(portal_fields))
    best_rank: float = float("inf")
    best = None
    # A dataset has a handful of custom fields and the table lists ~50 keys: look its keys up in the table.
    for key, value in pairs.items():
        rank = ranks.get(key)
        if rank is not None and rank < best_rank and value:
            text = _text(value)
            if text:
                best_rank, best = rank, text
    if best is not None:
        return best
    for key, value in pairs.items():
        word_rank = vocab.key_rank("socrata", role, key)
        if word_rank is not None and word_rank < best_rank and value:
            text = _text(value)
            if text:
                best_rank, best = word_rank, text
    if best is not None:
        return best
    for key in discovered:
        text = _text(pairs.get(key))
        if text:
            return text
    return None


@functools.lru_cache(maxsize=256)
def _field_ranks(role: str, portal_fields: tuple[str, ...]) -> dict[str, int]:
    """{custom field key: priority} for a role, portal fields first, then the kind's table."""
    ranks: dict[str, int] = {}
    for i, key in enumerate((*portal_fields, *vocab.field_table("socrata").get(role, ()))):
        ranks.setdefault(key, i)
    return ranks


def _domain_metadata(classification: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in classification.get("domain_metadata") or ():
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            out.setdefault(pair["key"], pair.get("value"))
    return out


def _view_custom_fields(view: Mapping[str, Any]) -> dict[str, Any]:
    """View `metadata.custom_fields.<Fieldset>.<Field>` flattened to the Discovery key form `<Fieldset>_<Field>`."""
    out: dict[str, Any] = {}
    fields = ((view.get("metadata") or {}).get("custom_fields")) or {}
    if isinstance(fields, dict):
        for fieldset, values in fields.items():
            if isinstance(values, dict):
                for name, value in values.items():
                    if isinstance(value, str):
                        out[f"{fieldset}_{name}".replace(" ", "-")] = value
    return out


def _keywords(*lists: Any) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for values in lists:
        for value in values or ():
            text = _text(value)
            if text:
                seen.setdefault(text, None)
    return tuple(seen)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _portal_overrides(portal: Any) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    return (
        tuple(getattr(portal, "frequency_fields", ()) or ()),
        tuple(getattr(portal, "department_fields", ()) or ()),
        tuple(getattr(portal, "frequency_overrides", ()) or ()),
    )


def _custom_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A Discovery item's or bare view's custom fields as `<Fieldset>_<Field>` -> value."""
    if "resource" not in raw:  # a bare view object
        return _view_custom_fields(raw)
    return {**_view_custom_fields(raw.get(VIEW_KEY) or {}), **_domain_metadata(raw.get("classification") or {})}


def raw_department(portal: Any, raw: Mapping[str, Any], profile: vocab.FieldProfile = vocab.EMPTY_PROFILE
                   ) -> str | None:
    """The department text as the portal wrote it: a department custom field, else the attribution."""
    if "resource" not in raw:  # a bare view object
        return _department_text(portal, _custom_fields(raw), raw.get("attribution"), profile)
    raw = canonical_item(raw)  # as normalize_item sees it (a repeated custom key: the same value wins)
    return _department_text(portal, _custom_fields(raw), (raw.get("resource") or {}).get("attribution"), profile)


def _department_text(portal: Any, custom: Mapping[str, Any], fallback: Any,
                     profile: vocab.FieldProfile = vocab.EMPTY_PROFILE) -> str | None:
    fields = tuple(getattr(portal, "department_fields", ()) or ())
    return custom_value(custom, fields, "department", profile.department) or _text(fallback)


def _owner_name(raw: Mapping[str, Any]) -> Any:
    owner = raw.get("owner") or raw.get("creator") or {}
    return owner.get("display_name") or owner.get("displayName") if isinstance(owner, dict) else None


def discover_fields(raws: Iterable[Any]) -> vocab.FieldProfile:
    """The run's FieldProfile (vocab.discover_fields) over at most vocab.DISCOVERY_SAMPLE items: each custom
    field's values, and the owners' names (people, never departments)."""
    values: dict[str, list[Any]] = {}
    persons: set[str] = set()
    for raw in itertools.islice(raws, vocab.DISCOVERY_SAMPLE):
        if not isinstance(raw, Mapping):
            continue
        for key, value in _custom_fields(raw).items():
            values.setdefault(key, []).append(value)
        name = _owner_name(raw)
        if isinstance(name, str):
            persons.add(name)
    return vocab.discover_fields("socrata", values, persons)


def _department_of(portal: Any, text: str | None, profile: vocab.FieldProfile, contact: str | None) -> str | None:
    domain = getattr(portal, "domain", None) or urlsplit(str(getattr(portal, "url", "") or "")).hostname
    city = vocab.city_names(domain, getattr(portal, "city_key", None))
    return _department(text, (), city, profile.persons, contact)


def normalize_item(portal: Any, raw: Mapping[str, Any], profile: vocab.FieldProfile = vocab.EMPTY_PROFILE
                   ) -> DatasetRecord:
    """A Discovery API item → DatasetRecord (pure, total); meaningless order is canonicalized first. `profile`
    is the run's discover_fields() result (custom fields found by their values, the run's people)."""
    raw = canonical_item(raw)
    resource = raw.get("resource") or {}
    classification = raw.get("classification") or {}
    metadata = raw.get("metadata") or {}
    view = raw.get(VIEW_KEY) or {}
    freq_fields, _, freq_overrides = _portal_overrides(portal)
    custom = {**_view_custom_fields(view), **_domain_metadata(classification)}

    names = resource.get("columns_field_name") or resource.get("columns_name") or []
    types = resource.get("columns_datatype") or []
    descriptions = resource.get("columns_description") or []
    rtype = str(resource.get("type") or "dataset").lower()
    asset_type = ASSET_TYPES.get(rtype, rtype)
    has_columns = bool(names) or rtype == "dataset"
    # Column descriptions: the catalog's parallel array, else the enriched view's columns[].description.
    try:  # all text (every recorded item): counted at C speed
        described = sum(map(bool, map(str.strip, descriptions)))
    except TypeError:
        described = sum(1 for d in descriptions if isinstance(d, str) and d.strip())
    if not descriptions and isinstance(view.get("columns"), list):
        described = sum(1 for c in view["columns"] if isinstance(c, dict) and str(c.get("description") or "").strip())

    blob = resource.get("blob_mime_type")
    if blob:
        formats: tuple[str, ...] = tuple(f for f in [vocab.format_name(blob)] if f)
    elif rtype == "dataset" and resource.get("lens_view_type") in (None, "tabular"):
        formats = TABULAR_FORMATS
    else:
        formats = ()

    license_raw = metadata.get("license") or ((view.get("license") or {}).get("name")) or view.get("licenseId")
    freq_raw = custom_value(custom, freq_fields, "frequency", profile.frequency)
    dept_raw = _department_text(portal, custom, resource.get("attribution"), profile)  # = raw_department(...)
    owner = raw.get("owner") or raw.get("creator") or {}
    contact_name = _text(owner.get("display_name"))
    page_views = resource.get("page_views") or {}
    parents = resource.get("parent_fxf")
    domain = metadata.get("domain")
    rid = str(resource.get("id") or "")
    provenance = resource.get("provenance")
    attachments = ((view.get("metadata") or {}).get("attachments")) if view else None

    return DatasetRecord(
        portal_key=portal.key,
        source_id=rid,
        asset_type=asset_type,
        landing_url=vocab.first_text([raw.get("permalink"), raw.get("link")]),
        api_url=f"https://{domain}/resource/{rid}.json" if domain and rid and formats == TABULAR_FORMATS else None,
        title=vocab.first_text([resource.get("name")]),
        description=vocab.first_text([resource.get("description")]),
        keywords=_keywords(classification.get("domain_tags"), classification.get("tags")),
        theme=_text(classification.get("domain_category")) or vocab.first_text(classification.get("categories") or []),
        department=_department_of(portal, dept_raw, profile, contact_name),
        contact_name=contact_name,
        contact_email=vocab.contact_email(resource.get("contact_email")),
        license=_text(license_raw),
        license_id=_license_id(license_raw),
        created=parse_time(resource.get("createdAt")),
        metadata_modified=parse_time(resource.get("metadata_updated_at") or resource.get("updatedAt")),
        # data_updated_at exists from ~2019; the 2018 shape only has updatedAt (the later of data and
        # metadata updates), an enriched view has rowsUpdatedAt (epoch seconds).
        data_modified=parse_time(resource.get("data_updated_at") or view.get("rowsUpdatedAt")
                                 or resource.get("updatedAt")),
        declared_frequency=_frequency(freq_raw, freq_overrides),
        declared_frequency_raw=freq_raw,
        formats=formats,
        distribution_count=len(formats) if formats else None,
        column_count=len(names) if has_columns else None,
        described_column_count=described if has_columns else None,
        columns=tuple(zip(map(str, names), map(str, types), strict=False)),  # a portal may omit some types
        attachment_count=len(attachments) if isinstance(attachments, list) else None,
        views=_int(page_views.get("page_views_total")),
        downloads=_int(resource.get("download_count")),
        is_official=(provenance == "official") if isinstance(provenance, str) else None,
        is_derived=bool(parents) if isinstance(parents, list) else None,
        hidden_from_catalog=view.get("hideFromCatalog") if isinstance(view.get("hideFromCatalog"), bool) else None,
        # The anonymous Discovery API lists public assets only.
        access_level="public",
        raw_hash=_plain_raw_hash(raw),
    )


def normalize_view(portal: Any, view: Mapping[str, Any], profile: vocab.FieldProfile = vocab.EMPTY_PROFILE
                   ) -> DatasetRecord:
    """A bare `/api/views/{id}.json` object → DatasetRecord (archived view dumps, e.g. Austin 2015)."""
    view = canonical_view(view)
    freq_fields, _, freq_overrides = _portal_overrides(portal)
    custom = _view_custom_fields(view)
    columns = [c for c in view.get("columns") or [] if isinstance(c, dict)]
    freq_raw = custom_value(custom, freq_fields, "frequency", profile.frequency)
    dept_raw = raw_department(portal, view, profile)
    license_raw = (view.get("license") or {}).get("name") or view.get("licenseId")
    owner = view.get("owner") or {}
    attachments = (view.get("metadata") or {}).get("attachments")
    display = str(view.get("displayType") or "")
    asset_type = str(view.get("assetType") or ("map" if display == "map" else "dataset")).lower()
    provenance = view.get("provenance")
    rid = str(view.get("id") or "")
    return DatasetRecord(
        portal_key=portal.key,
        source_id=rid,
        asset_type=ASSET_TYPES.get(asset_type, asset_type),
        landing_url=f"{portal.url.rstrip('/')}/d/{rid}" if rid else None,
        title=vocab.first_text([view.get("name")]),
        description=vocab.first_text([view.get("description")]),
        keywords=_keywords(view.get("tags")),
        theme=vocab.first_text([view.get("category")]),
        department=_department_of(portal, dept_raw, profile, vocab.first_text([owner.get("displayName")])),
        contact_name=vocab.first_text([owner.get("displayName")]),
        license=_text(license_raw),
        license_id=_license_id(license_raw),
        created=parse_time(view.get("createdAt")),
        metadata_modified=parse_time(view.get("viewLastModified")),
        data_modified=parse_time(view.get("rowsUpdatedAt")),
        declared_frequency=_frequency(freq_raw, freq_overrides),
        declared_frequency_raw=freq_raw,
        formats=(view_formats := TABULAR_FORMATS if view.get("viewType") == "tabular" and display == "table" else ()),
        distribution_count=len(view_formats) if view_formats else None,
        column_count=len(columns),
        described_column_count=sum(1 for c in columns if str(c.get("description") or "").strip()),
        columns=tuple((str(c.get("fieldName") or c.get("name")), str(c.get("dataTypeName") or "")) for c in columns),
        attachment_count=len(attachments) if isinstance(attachments, list) else None,
        views=_int(view.get("viewCount")),
        downloads=_int(view.get("downloadCount")),
        is_official=(provenance == "official") if isinstance(provenance, str) else None,
        hidden_from_catalog=view.get("hideFromCatalog") if isinstance(view.get("hideFromCatalog"), bool) else None,
        raw_hash=_plain_raw_hash(view),
    )
