"""A local HTTP emulator of the portal APIs, serving recorded real catalogs with the APIs' paging rules.

Use it as a context manager (or through the `emulator` pytest fixture in tests/connectors/conftest.py):

    from tests.emulator import Emulator, load_socrata_jsonl

    items = load_socrata_jsonl(FIXTURES / "socrata/latest/data.cityofchicago.org.jsonl.gz")
    with Emulator(socrata={"data.cityofchicago.org": items}) as emu:
        portal = PortalConfig(key="chicago-socrata", city_key="chicago", kind="socrata",
                              url=emu.url, domain="data.cityofchicago.org")
        emu.fault("/api/catalog/v1", status=500, times=2)     # the next two catalog calls fail
        records = list(make_connector(portal).fetch())

It listens on 127.0.0.1 on a free port (threaded, one thread per request) and serves:

* Socrata Discovery, `GET {url}/api/catalog/v1?domains=D&limit=N[&scroll_id=ID|&offset=K]`: the items of
  catalog D ordered by `resource.id`; `scroll_id` returns the items whose id is greater than ID; `limit`
  defaults to 10 and above 10,000 is HTTP 400; `resultSetSize` = min(unique items, 10,000). Items repeated in
  the recorded catalog stay repeated (real pages overlap), so a connector sees real repeats.
* Socrata views, `GET {url}/api/views/<id>.json` (and without `.json`): the recorded view objects by id.
* CKAN, `GET {url}/ckan/<site>/api/3/action/package_search?rows=&start=` (rows default 10, silently capped
  at 1000 like `ckan.search.rows_max`; `sort=id asc` honoured) and `organization_list[?all_fields=true]`
  (from the packages' organizations unless given). Base URL: `emu.ckan_url(site)`.
* DCAT, `GET {url}/dcat/<site>/data.json`: one recorded document. Base URL: `emu.dcat_url(site)`.

Per portal kind (the registry `connectors.CONNECTORS`), `SERVED_KINDS` says how the emulator serves it;
`emu.serve(kind, name, items)` serves the raw items of a recorded file (as the kind's `read_archive` returns
them) and `emu.portal(kind, name)` is the PortalConfig a connector needs to reach them. A kind in the
registry without an entry here fails tests/connectors/test_kinds.py.

`Emulator(latency_s=0.1)` answers every request 100 ms late (a portal's round trip; the server is threaded,
so requests wait side by side).

Fault injection, per path prefix (`emu.fault(path, ...)`, cleared with `emu.clear_faults()`): `latency_s`
(sleep, then answer), `status` (e.g. 500, or 429 with `retry_after`), `timeout_s` (sleep that long before
answering, beyond the client's timeout), `truncate` (cut the JSON body in half), `repeat_page` (answer with
the previous response for that path, ignoring paging parameters), `shape` (rename the list key so the
envelope no longer matches). `times=n` limits a fault to the next n matching requests (None = always) and
`after=k` lets k matching requests through first (to hit the second page); `with_param="scroll_id"` matches
only requests with that query parameter; `meet=threading.Barrier(n)` holds each matching request until n are
held (so many harvests are known to be mid-run at once; a broken barrier lets them through); `call=f` runs
f() before answering (the harvest waits on its page meanwhile); `body=` serves a
given JSON body. `emu.reported[name] = n` makes a Socrata domain or CKAN site report n items (a short catalog).
Every request is recorded in `emu.requests` as (path, params dict, headers dict).
"""
from __future__ import annotations

import gzip
import re
import socketserver
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson

DISCOVERY_LIMIT_MAX = 10_000  # Discovery API: largest accepted `limit`
DISCOVERY_DEFAULT_LIMIT = 10
RESULT_SET_CAP = 10_000  # Discovery API: resultSetSize never reports more than this
CKAN_ROWS_MAX = 1000  # CKAN default ckan.search.rows_max
CKAN_DEFAULT_ROWS = 10


@dataclass
class Fault:
    path: str
    latency_s: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    timeout_s: float = 0.0
    truncate: bool = False
    repeat_page: bool = False
    shape: bool = False
    body: Any = None  # serve this JSON body instead (e.g. a CKAN success=false envelope)
    times: int | None = None
    after: int = 0
    with_param: str | None = None  # only requests carrying this query parameter (e.g. scroll_id: a later page)
    meet: threading.Barrier | None = None  # hold each request at this barrier first (requests in flight together)
    call: Callable[[], None] | None = None  # run before answering (e.g. break the harvest's database connection)
    seen: int = 0  # matching requests so far


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (a harvest stopped, a worker process killed) is no error of the
    server's: socketserver would print its traceback into the test's captured stderr."""

    # socketserver's listen backlog is 5: a fleet harvest opening 20-30 connections at once overflowed it, and the
    # kernel dropped the extra SYNs, which clients resend only after 1 s (seen as 1.2 s runs of the 0.37 s latency
    # benchmark). A real portal's server takes them all.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """A test server on loopback, used as a context manager: `start()` serves in a thread, `stop()` ends it."""

    _server: socketserver.BaseServer | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Emulator(LoopbackServer):
    """Threaded HTTP server on 127.0.0.1 serving in-memory recorded catalogs (see the module docstring)."""

    def __init__(
        self,
        *,
        socrata: Mapping[str, list[dict[str, Any]]] | None = None,
        views: Iterable[dict[str, Any]] = (),
        ckan: Mapping[str, list[dict[str, Any]]] | None = None,
        ckan_organizations: Mapping[str, list[dict[str, Any]]] | None = None,
        dcat: Mapping[str, Any] | None = None,
        frozen: bool = False,
        latency_s: float = 0.0,
    ) -> None:
        self.socrata = {d: sorted(items, key=_socrata_id) for d, items in (socrata or {}).items()}
        self.views = {str(v.get("id")): v for v in views}
        self.ckan = {s: list(p) for s, p in (ckan or {}).items()}
        self.ckan_organizations = dict(ckan_organizations or {})
        self.dcat = dict(dcat or {})
        self.faults: list[Fault] = []
        self.reported: dict[str, int] = {}  # catalog name → total to report instead of the true one
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []
        self._last: dict[str, bytes] = {}
        # frozen=True: the catalogs never change, so each distinct fault-free response is rendered once and
        # served from memory after (the benchmark: a real portal renders on its own machine, not on ours).
        self.frozen = frozen
        # latency_s: every answer waits this long first, as a portal far away does (its round trip); unlike a
        # `latency_s` fault it leaves a frozen emulator's rendered answers in use (benchmarks/latency.py).
        self.latency_s = latency_s
        self._rendered: dict[tuple[str, frozenset[tuple[str, str]]], tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> Emulator:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, each response waits ~40 ms for the
            # client's delayed ACK, which would dominate a many-page harvest benchmark.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                emulator._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval so stop() (and each test teardown) returns quickly.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="portal-emulator", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def serve(self, kind: str, name: str, items: list[dict[str, Any]]) -> str:
        """Serve the raw items of a recorded `kind` catalog as catalog `name`; its portal URL."""
        served = _served(kind)
        getattr(self, served.attribute)[name] = served.catalog(items)
        with self._lock:
            self._rendered.clear()
        return served.url(self, name)

    def portal(self, kind: str, name: str, **kw: Any) -> Any:
        """A settings.PortalConfig of the `kind` catalog served as `name` (see portal_config)."""
        served = _served(kind)
        if served.domain:
            kw.setdefault("domain", name)
        return portal_config(kind, served.url(self, name), **kw)

    def ckan_url(self, site: str) -> str:
        return f"{self.url}/ckan/{site}"

    def dcat_url(self, site: str) -> str:
        return f"{self.url}/dcat/{site}"

    # --- faults --------------------------------------------------------------------------------------------

    def fault(self, path: str, **kwargs: Any) -> Fault:
        """Inject a fault on requests whose path starts with `path` (see the module docstring)."""
        f = Fault(path=path, **kwargs)
        with self._lock:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _active_faults(self, path: str, params: Mapping[str, str]) -> list[Fault]:
        active = []
        with self._lock:
            for f in self.faults:
                if not path.startswith(f.path) or (f.with_param is not None and f.with_param not in params):
                    continue
                f.seen += 1
                if f.seen <= f.after:
                    continue
                if f.times is not None and f.seen > f.after + f.times:
                    continue
                active.append(f)
        return active

    # --- request handling ----------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((path, params, dict(h.headers.items())))
        faults = self._active_faults(path, params)
        for f in faults:
            if f.meet is not None:
                try:
                    f.meet.wait()
                except threading.BrokenBarrierError:  # the test sees `meet.broken`; the request is answered
                    pass
            if f.call is not None:
                f.call()
        if self.latency_s:
            time.sleep(self.latency_s)
        for f in faults:
            if f.latency_s:
                time.sleep(f.latency_s)
            if f.timeout_s:
                time.sleep(f.timeout_s)
        for f in faults:
            if f.status is not None:
                headers = {"Retry-After": f.retry_after} if f.retry_after is not None else {}
                return _send(h, f.status, orjson.dumps({"error": f"injected HTTP {f.status}"}), headers)
        if any(f.repeat_page for f in faults) and path in self._last:
            return _send(h, 200, self._last[path])
        for f in faults:
            if f.body is not None:
                return _send(h, 200, orjson.dumps(f.body))
        if self.frozen and not faults:
            return _send(h, *self.render(path, params))
        status, body = self._route(path, params)
        payload = orjson.dumps(body)
        if any(f.shape for f in faults):
            payload = orjson.dumps(_changed_shape(body))
        if status == 200:
            with self._lock:
                self._last[path] = payload
        if any(f.truncate for f in faults):
            payload = payload[: len(payload) // 2]
        _send(h, status, payload)

    def render(self, path: str, params: Mapping[str, str]) -> tuple[int, bytes]:
        """Status and body of a fault-free request to a frozen emulator, rendered once."""
        key = (path, frozenset(params.items()))
        if key not in self._rendered:
            status, body = self._route(path, dict(params))
            self._rendered[key] = status, orjson.dumps(body)
        return self._rendered[key]

    def _route(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/catalog/v1":
            return self._discovery(params)
        m = re.fullmatch(r"/api/views/([a-z0-9]{4}-[a-z0-9]{4})(?:\.json)?", path)
        if m:
            view = self.views.get(m.group(1))
            if view is None:
                return 404, {"code": "not_found", "error": True, "message": f"Cannot find view with id {m.group(1)}"}
            return 200, view
        m = re.fullmatch(r"/ckan/([^/]+)/api/3/action/(\w+)", path)
        if m and m.group(1) in self.ckan:
            return self._ckan(m.group(1), m.group(2), params)
        m = re.fullmatch(r"/dcat/([^/]+)/data\.json", path)
        if m and m.group(1) in self.dcat:
            return 200, self.dcat[m.group(1)]
        return 404, {"error": f"no such path {path}"}

    def _discovery(self, params: dict[str, str]) -> tuple[int, Any]:
        try:
            limit = int(params.get("limit", DISCOVERY_DEFAULT_LIMIT))
            offset = int(params.get("offset", 0))
        except ValueError:
            return 400, {"error": "limit and offset must be integers"}
        if limit > DISCOVERY_LIMIT_MAX or limit < 0:
            return 400, {"error": f"limit must be between 0 and {DISCOVERY_LIMIT_MAX}"}
        items = self.socrata.get(params.get("domains", ""), [])
        if "scroll_id" in params:
            after = params["scroll_id"]
            page = [it for it in items if _socrata_id(it) > after][:limit]
        else:
            page = items[offset : offset + limit]
        unique = len({_socrata_id(it) for it in items})
        unique = self.reported.get(params.get("domains", ""), unique)
        return 200, {"results": page, "resultSetSize": min(unique, RESULT_SET_CAP), "timings": {"serviceMillis": 1}}

    def _ckan(self, site: str, action: str, params: dict[str, str]) -> tuple[int, Any]:
        packages = self.ckan[site]
        help_url = f"{self.ckan_url(site)}/api/3/action/help_show?name={action}"
        if action == "package_search":
            try:
                rows = min(int(params.get("rows", CKAN_DEFAULT_ROWS)), CKAN_ROWS_MAX)
                start = int(params.get("start", 0))
            except ValueError:
                return 409, {"help": help_url, "success": False,
                             "error": {"__type": "Validation Error", "rows": ["Invalid integer"]}}
            ordered = sorted(packages, key=lambda p: str(p.get("id"))) if params.get("sort") == "id asc" else packages
            unique = self.reported.get(site, len({p.get("id") for p in packages}))
            return 200, {"help": help_url, "success": True,
                         "result": {"count": unique, "sort": params.get("sort", "score desc, metadata_modified desc"),
                                    "facets": {}, "results": ordered[start : start + rows], "search_facets": {}}}
        if action == "organization_list":
            orgs = self.ckan_organizations.get(site)
            if orgs is None:
                by_name: dict[str, dict[str, Any]] = {}
                for p in packages:
                    org = p.get("organization")
                    if isinstance(org, dict) and org.get("name"):
                        entry = by_name.setdefault(org["name"], {**org, "package_count": 0})
                        entry["package_count"] += 1
                orgs = list(by_name.values())
            result = orgs if params.get("all_fields") == "true" else [o.get("name") for o in orgs]
            return 200, {"help": help_url, "success": True, "result": result}
        return 400, {"help": help_url, "success": False,
                     "error": {"__type": "Not Found Error", "message": f"Action name not known: {action}"}}


def _send(h: BaseHTTPRequestHandler, status: int, payload: bytes, headers: Mapping[str, str] | None = None) -> None:
    try:
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (an injected timeout); nothing to answer


def _changed_shape(body: Any) -> Any:
    """The same data under renamed keys, as a portal upgrade might ship."""
    if isinstance(body, dict):
        if "results" in body:
            return {("data" if k == "results" else k): v for k, v in body.items()}
        if isinstance(body.get("result"), dict) and "results" in body["result"]:
            return {**body, "result": {("items" if k == "results" else k): v for k, v in body["result"].items()}}
        if "dataset" in body:
            return {("datasets" if k == "dataset" else k): v for k, v in body.items()}
    return {"unexpected": body}


def _socrata_id(item: Mapping[str, Any]) -> str:
    return str((item.get("resource") or {}).get("id") or "")


@dataclass(frozen=True)
class Served:
    """How the emulator serves one portal kind."""

    attribute: str  # the Emulator attribute holding that kind's catalogs by name
    url: Callable[[Emulator, str], str]  # the portal URL of catalog `name`
    catalog: Callable[[list[dict[str, Any]]], Any]  # recorded raw items → what the API serves
    domain: bool = False  # the catalog name is the portal's `domain` (Socrata: one API, catalogs by domain)


SERVED_KINDS: dict[str, Served] = {
    "socrata": Served("socrata", lambda emu, name: emu.url, lambda items: sorted(items, key=_socrata_id),
                      domain=True),
    "ckan": Served("ckan", lambda emu, name: emu.ckan_url(name), list),
    "dcat": Served("dcat", lambda emu, name: emu.dcat_url(name), lambda items: {"dataset": list(items)}),
}


def _served(kind: str) -> Served:
    from connectors import CONNECTORS

    if kind not in CONNECTORS:
        raise ValueError(f"unknown portal kind {kind!r} (the registry lists {', '.join(CONNECTORS)})")
    if kind not in SERVED_KINDS:
        raise NotImplementedError(f"the emulator does not serve portal kind {kind!r}: add it to SERVED_KINDS")
    return SERVED_KINDS[kind]


# --- loading recorded fixtures -----------------------------------------------------------------------------

def _read(path: Path) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def load_json(path: str | Path) -> Any:
    """A recorded JSON file, plain or gzip'd."""
    return orjson.loads(_read(Path(path)))


def load_socrata_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The items of a recorded Discovery JSONL file (one `results[]` item per line), repeats kept."""
    return [orjson.loads(line) for line in _read(Path(path)).splitlines() if line.strip()]


# --- derived CKAN packages (catalog.data.gov's DCAT-US → CKAN mapping) -------------------------------------

_SLUG = re.compile(r"[^a-z0-9]+")
_DERIVED_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # uuid.NAMESPACE_URL
# catalog.data.gov license_id values for the licence URLs a data.json carries (USDA record: CC0 → cc-zero).
_DCAT_LICENSE_IDS = {
    "https://creativecommons.org/publicdomain/zero/1.0/": "cc-zero",
    "http://creativecommons.org/publicdomain/zero/1.0/": "cc-zero",
    "https://creativecommons.org/licenses/by/4.0/": "cc-by",
    "http://opendatacommons.org/licenses/pddl/": "odc-pddl",
    "http://opendatacommons.org/licenses/odbl/": "odc-odbl",
}
_FORMAT_FROM_MEDIA = {"text/csv": "CSV", "application/json": "JSON", "application/xml": "XML",
                      "application/rdf+xml": "RDF", "application/zip": "ZIP", "text/html": "HTML",
                      "application/vnd.google-earth.kml+xml": "KML", "application/vnd.google-earth.kmz": "KMZ",
                      "application/vnd.ms-excel": "XLS", "application/pdf": "PDF"}


def ckan_package_from_dcat(ds: Mapping[str, Any], *, organization: Mapping[str, Any],
                           harvested_at: str) -> dict[str, Any]:
    """A CKAN package dict built from a real DCAT-US dataset the way catalog.data.gov's data.json harvester
    stores it (see tests/fixtures/ckan/catalog_data_gov_package_show_usda_2019.json): DCAT fields not in CKAN's
    core land in `extras`, distributions become resources, keywords become tags. DERIVED test data: marked
    so in tests/fixtures/PROVENANCE.md; only the mapping is ours, every value comes from the data.json.
    """
    identifier = str(ds.get("identifier") or ds.get("title"))
    pid = str(uuid.uuid5(_DERIVED_NAMESPACE, identifier))
    title = str(ds.get("title") or "")
    name = (_SLUG.sub("-", title.lower()).strip("-")[:80] or "dataset") + "-" + pid[:8]
    contact: Mapping[str, Any] = ds["contactPoint"] if isinstance(ds.get("contactPoint"), dict) else {}
    email = str(contact.get("hasEmail") or "").removeprefix("mailto:") or None
    publisher: Mapping[str, Any] = ds["publisher"] if isinstance(ds.get("publisher"), dict) else {}
    extras: list[dict[str, Any]] = [{"key": "identifier", "value": identifier}]
    for key in ("accessLevel", "modified", "issued", "license", "landingPage", "accrualPeriodicity", "describedBy",
                "spatial", "temporal"):
        if isinstance(ds.get(key), str) and ds[key]:
            extras.append({"key": key, "value": ds[key]})
    if publisher.get("name") or publisher.get("source"):
        extras.append({"key": "publisher", "value": publisher.get("name") or publisher.get("source")})
    if isinstance(ds.get("theme"), list):
        extras.append({"key": "theme", "value": str(ds["theme"])})
    extras += [{"key": "source_schema_version", "value": "1.1"}, {"key": "harvest_source_title", "value": "derived"}]
    resources = []
    for i, dist in enumerate(d for d in ds.get("distribution") or [] if isinstance(d, dict)):
        media = dist.get("mediaType")
        resources.append({
            "id": str(uuid.uuid5(_DERIVED_NAMESPACE, f"{identifier}#{i}")), "package_id": pid, "position": i,
            "name": dist.get("title") or dist.get("format") or media or "resource",
            "description": dist.get("description") or "",
            "format": dist.get("format") or _FORMAT_FROM_MEDIA.get(str(media), ""),
            "mimetype": media, "url": dist.get("downloadURL") or dist.get("accessURL"),
            "created": harvested_at, "last_modified": None, "state": "active", "url_type": None,
        })
    keywords = [k for k in ds.get("keyword") or [] if isinstance(k, str) and k.strip()]
    license_url = ds.get("license") if isinstance(ds.get("license"), str) else None
    return {
        "id": pid, "name": name, "title": title, "type": "dataset", "state": "active", "private": False,
        "notes": ds.get("description"), "url": ds.get("landingPage"),
        "maintainer": contact.get("fn"), "maintainer_email": email, "author": None, "author_email": None,
        "license_id": _DCAT_LICENSE_IDS.get(license_url or "", "notspecified"),
        "license_title": license_url or "License not specified",
        "metadata_created": harvested_at, "metadata_modified": harvested_at,
        "organization": dict(organization), "owner_org": organization.get("id"),
        "tags": [{"name": k, "display_name": k} for k in keywords], "num_tags": len(keywords),
        "groups": [], "extras": extras, "resources": resources, "num_resources": len(resources),
    }


def portal_config(kind: str, url: str, **kw: Any) -> Any:
    """A settings.PortalConfig for tests: key "test-<kind>" and city "test" unless given."""
    from maturity.settings import PortalConfig

    return PortalConfig(key=kw.pop("key", f"test-{kind}"), city_key=kw.pop("city_key", "test"), kind=kind, url=url,
                        **kw)
