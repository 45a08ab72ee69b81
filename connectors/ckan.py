"""CKAN Action API: `package_search` paged with rows/start, `organization_list` for the departments.

Custom fields sit at the top level on scheming portals (Toronto `refresh_rate`, `owner_division`) and in
`extras[{key, value}]` on others and on harvested DCAT records (catalog.data.gov), so both are read.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors import vocab
from connectors.base import (
    ConnectorError,
    DatasetRecord,
    FetchStats,
    PortalIncompatible,
    Progress,
    parse_time,
    unique_items,
)
from connectors.hashing import raw_bytes, raw_hash
from connectors.http import get_json, make_session
from connectors.paging import Page, Paginator, PagingState

CKAN_ROWS_MAX = 1000  # CKAN's default ckan.search.rows_max: package_search never returns more per page
ACTION_PATH = "/api/3/action/"
# A stable order, so that rows/start paging does not shuffle items between pages while the index is live.
SEARCH_SORT = "id asc"


def _result(body: Any, url: str) -> Any:
    if not isinstance(body, dict) or "success" not in body:
        keys = sorted(body)[:8] if isinstance(body, dict) else type(body).__name__
        raise PortalIncompatible(f"{url}: not a CKAN action response (got {keys})")
    if body.get("success") is not True:
        error = err if isinstance(err := body.get("error"), dict) else {}
        raise PortalIncompatible(
            f"{url}: CKAN returned success=false ({str(error.get('__type') or '')}: "
            f"{str(error.get('message') or '')[:200]})"
        )
    return body.get("result")


def _package_id(pkg: Any, url: str) -> str:
    pid = pkg.get("id") if isinstance(pkg, dict) else None
    if not isinstance(pid, str) or not pid:
        raise PortalIncompatible(f"{url}: a package has no id")
    return pid


class CkanConnector:
    """One CKAN site: `fetch()` pages package_search, `normalize()` maps one package dict."""

    kind = "ckan"

    def __init__(
        self,
        portal: Any,
        *,
        session: requests.Session | None = None,
        progress: Progress | None = None,
        rows: int = CKAN_ROWS_MAX,
    ) -> None:
        self.portal = portal
        self.session = session or make_session()
        self.progress = progress
        self.rows = max(1, min(rows, CKAN_ROWS_MAX))
        self.base = portal.url.rstrip("/") + ACTION_PATH
        self._stats = FetchStats()
        self.organizations: dict[str, str] = {}  # organization name → title, after fetch (may stay empty)

    raw_bytes = staticmethod(raw_bytes)
    raw_hash = staticmethod(raw_hash)

    @staticmethod
    def source_id(raw: Mapping[str, Any]) -> str:
        """The package's `DatasetRecord.source_id` without normalizing it: its id, else its name."""
        name = raw.get("name")
        return str(raw.get("id") or (vocab.first_text([name]) if isinstance(name, str) else None) or "")

    @property
    def stats(self) -> FetchStats:
        return self._stats

    @property
    def departments(self) -> tuple[str, ...]:
        """Organization titles from organization_list (the portal's own list of publishers) that are units of
        the city."""
        city = vocab.city_names(urlsplit(str(self.portal.url)).hostname, getattr(self.portal, "city_key", None))
        return tuple(sorted(t for t in (vocab.department(v, city=city) for v in self.organizations.values()) if t))

    def fetch(self) -> Iterator[dict[str, Any]]:
        """Every package once; fails when the pages repeat or add up to less than the reported `count`."""
        self._stats = FetchStats()
        notes = self._load_organizations()
        url = self.base + "package_search"

        def get_page(start: int) -> Page:
            params = {"rows": self.rows, "start": start, "sort": SEARCH_SORT, "include_private": "false"}
            result = _result(get_json(self.session, url, params), url)
            if not isinstance(result, dict) or not isinstance(result.get("results"), list):
                raise PortalIncompatible(f"{url}: package_search result has no 'results' list")
            count = result.get("count")
            if not isinstance(count, int) or isinstance(count, bool):
                raise PortalIncompatible(f"{url}: package_search result has no integer 'count'")
            return Page(result["results"], count)

        def next_cursor(start: int, page: Page, state: PagingState) -> int | None:
            start += len(page.items)  # rows/start paging, in a stable sort order
            return start if state.reported is not None and start < state.reported else None

        def on_page(state: PagingState) -> None:
            self._stats = state.stats(notes)
            if self.progress:
                self.progress(state.unique, state.reported)

        yield from Paginator(url, 0, get_page, lambda pkg: _package_id(pkg, url), next_cursor,
                             describe=lambda start, _n: f"start={start}", on_page=on_page)

    def _load_organizations(self) -> tuple[str, ...]:
        """organization_list?all_fields=true; a failure is noted, not fatal (packages carry their organization)."""
        url = self.base + "organization_list"
        try:
            body = get_json(self.session, url, {"all_fields": "true"})
            result = _result(body, url)
        except ConnectorError as exc:  # only costs the department list: packages carry their organization
            return (f"organization_list failed: {str(exc)[:200]}",)
        if not isinstance(result, list):
            return ("organization_list failed: result is not a list",)
        self.organizations = {
            str(o.get("name")): str(o.get("title") or o.get("display_name") or o.get("name"))
            for o in result
            if isinstance(o, dict) and o.get("name")
        }
        return ()

    @staticmethod
    def read_archive(doc: Any, path: Path) -> tuple[list[dict[str, Any]], FetchStats]:
        """A recorded CKAN file: a `package_search` response `{"result": {"results": [...]}}`, a bare result, a
        list of packages, `package_show` (`{"result": {package}}`) or one package dict."""
        raw, reported = _archive_packages(doc, path)
        items, repeats = unique_items(raw, lambda p: p.get("id") or p.get("name"))
        return items, FetchStats(items_seen=len(items), repeats=repeats, reported_total=reported, pages=1)

    def normalize(self, raw: dict[str, Any], profile: vocab.FieldProfile = vocab.EMPTY_PROFILE) -> DatasetRecord:
        return normalize_package(self.portal, raw, self.organizations, profile)

    @staticmethod
    def discover(raws: Iterable[Mapping[str, Any]]) -> vocab.FieldProfile:
        """The run's FieldProfile: the people it names (maintainer, author), who are never departments. CKAN
        keeps its fields under standard or scheming names, so no field is discovered by its values."""
        people = (p.get(k) for p in itertools.islice(raws, vocab.DISCOVERY_SAMPLE) if isinstance(p, Mapping)
                  for k in ("maintainer", "author"))
        return vocab.discover_fields("ckan", {}, [n for n in people if isinstance(n, str) and not vocab.email(n)])


def _archive_packages(doc: Any, path: Path) -> tuple[list[Any], int | None]:
    if isinstance(doc, dict) and "result" in doc:
        doc = doc["result"]
    if isinstance(doc, list):
        return doc, None
    if isinstance(doc, dict):
        if isinstance(doc.get("results"), list):
            count = doc.get("count")
            return doc["results"], count if isinstance(count, int) else None
        if "id" in doc and ("resources" in doc or "name" in doc):
            return [doc], None
    raise PortalIncompatible(f"{path}: not a CKAN package_search / package_show file")


def _fields(pkg: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level scalar fields plus extras (first value of a duplicated extras key wins)."""
    out: dict[str, Any] = {k: v for k, v in pkg.items() if isinstance(v, (str, int, float))}
    for extra in pkg.get("extras") or ():
        if isinstance(extra, dict) and isinstance(extra.get("key"), str):
            out.setdefault(extra["key"], extra.get("value"))
    return out


def _first_field(fields: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = fields.get(key)
        text = vocab.first_text([value]) if isinstance(value, str) else None
        if text:
            return text
    return None


def raw_department(portal: Any, pkg: Mapping[str, Any], organizations: Mapping[str, str] | None = None,
                   fields: Mapping[str, Any] | None = None) -> str | None:
    """The department text as the portal wrote it: a department field (top level or extras), else the
    organization's title. `fields`: the package's `_fields`, when the caller has them."""
    table = vocab.field_table("ckan")
    fields = _fields(pkg) if fields is None else fields
    org = o if isinstance(o := pkg.get("organization"), dict) else {}
    org_title = vocab.first_text([org.get("title"), (organizations or {}).get(str(org.get("name") or ""))])
    keys = (*getattr(portal, "department_fields", ()), *table.get("department", ()))
    return _first_field(fields, keys) or org_title


def normalize_package(portal: Any, pkg: Mapping[str, Any], organizations: Mapping[str, str] | None = None,
                      profile: vocab.FieldProfile = vocab.EMPTY_PROFILE) -> DatasetRecord:
    """A CKAN package dict → DatasetRecord (pure, total)."""
    table = vocab.field_table("ckan")
    fields = _fields(pkg)
    resources = [r for r in pkg.get("resources") or [] if isinstance(r, dict)]
    freq_raw = _first_field(fields, (*getattr(portal, "frequency_fields", ()), *table.get("frequency", ())))
    if pkg.get("type") == "harvest":
        freq_raw = None  # a harvest source's `frequency` is its harvest schedule, not a data update cadence
    dept_raw = raw_department(portal, pkg, organizations, fields)

    formats: dict[str, None] = {}
    for r in resources:
        name = vocab.format_name(r.get("format") if isinstance(r.get("format"), str) else None)
        if name:
            formats.setdefault(name, None)
    # Data update: the latest resource last_modified (null on many portals); else the harvested DCAT
    # `modified` extra; else the package's metadata_modified, the best remaining sign of change.
    resource_times = [t for t in (parse_time(r.get("last_modified")) for r in resources) if t]
    data_modified = max(resource_times) if resource_times else (
        parse_time(fields.get("modified")) or parse_time(pkg.get("metadata_modified"))
    )
    author = vocab.first_text([pkg.get("author")]) if isinstance(pkg.get("author"), str) else None
    maintainer = vocab.first_text([pkg.get("maintainer")]) if isinstance(pkg.get("maintainer"), str) else None
    emails = [pkg.get("maintainer_email"), pkg.get("author_email"), fields.get("owner_email"), author,
              fields.get("contact_email")]
    # The first valid address; else what the e-mail fields said (a malformed value stays visible to the
    # conformance check). `author` is a name field that some portals fill with an address: only used valid.
    contact_email = next((e for e in (vocab.email(x) if isinstance(x, str) else None for x in emails) if e), None) \
        or next((e for e in (vocab.contact_email(x) for x in emails if x is not author) if e), None)
    contact_name = next((n for n in (maintainer, author) if n and not vocab.email(n)), None)
    city = vocab.city_names(urlsplit(str(portal.url)).hostname, getattr(portal, "city_key", None))
    license_raw = vocab.first_text([pkg.get("license_title"), pkg.get("license_id"), fields.get("license")])
    lid = None
    for candidate in (pkg.get("license_id"), pkg.get("license_title"), pkg.get("license_url"), fields.get("license")):
        lid = vocab.license_id(candidate if isinstance(candidate, str) else None)
        if lid:
            break
    groups = [g for g in pkg.get("groups") or [] if isinstance(g, dict)]
    tags = [t.get("display_name") or t.get("name") for t in pkg.get("tags") or [] if isinstance(t, dict)]
    keywords = tuple(dict.fromkeys(t for t in (vocab.first_text([x]) for x in tags) if t))
    tracking = ts if isinstance(ts := pkg.get("tracking_summary"), dict) else {}
    private = pkg.get("private")
    access = _first_field(fields, ("accessLevel", "access_level"))
    base = portal.url.rstrip("/")
    name = vocab.first_text([pkg.get("name")]) if isinstance(pkg.get("name"), str) else None
    num = pkg.get("num_resources")
    overrides = tuple(getattr(portal, "frequency_overrides", ()) or ())
    return DatasetRecord(
        portal_key=portal.key,
        source_id=str(pkg.get("id") or name or ""),
        asset_type=str(pkg.get("type") or "dataset"),
        landing_url=f"{base}/dataset/{name}" if name else None,
        api_url=f"{base}{ACTION_PATH}package_show?id={name}" if name else None,
        title=vocab.first_text([pkg.get("title")]),
        description=vocab.first_text([pkg.get("notes")]),
        keywords=keywords,
        theme=vocab.first_text([g.get("title") or g.get("display_name") or g.get("name") for g in groups]),
        department=vocab.department(dept_raw, city=city, persons=profile.persons, contact=contact_name),
        contact_name=contact_name,
        contact_email=contact_email,
        license=license_raw,
        license_id=lid,
        created=parse_time(pkg.get("metadata_created")),
        metadata_modified=parse_time(pkg.get("metadata_modified")),
        data_modified=data_modified,
        declared_frequency=vocab.frequency(freq_raw, overrides),
        declared_frequency_raw=freq_raw,
        formats=tuple(formats),
        distribution_count=num if isinstance(num, int) and not isinstance(num, bool) else len(resources),
        views=tracking.get("total") if isinstance(tracking.get("total"), int) else None,
        hidden_from_catalog=private if isinstance(private, bool) else None,
        access_level=access.lower() if access else ("non-public" if private is True else "public"),
        raw_hash=raw_hash(dict(pkg)),
    )
