"""A portal of N real records with fresh ids, served on loopback: the large catalog of the scale benchmarks (issue 13).

    with ScalePortal("socrata", 300_000) as portal:      # a settings.PortalConfig-ready portal
        cfg = portal.config(key="big-socrata", city_key="big")
        ... pipeline.harvest(settings, engine, cfg) ...
        portal.body_bytes, portal.page_bodies()           # what was served, for the json.loads floor

    .venv/bin/python benchmarks/scale_portal.py socrata 30000   # builds one and prints its size

Where the records come from (real, replicated; nothing invented but the ids):
- socrata: Chicago's 2022 Discovery API items (../shared/fixtures/socrata_scrape_2022/latest/
  data.cityofchicago.org.jsonl.gz: 295 lines, 260 unique ids), item i a copy of seed i mod 260 with every
  occurrence of the seed's 4x4 id replaced by a fresh one (so its links and permalink follow). Fresh ids are
  fixed-width and increase with i, so the catalog is in the Discovery API's id order.
- ckan: packages derived from Chicago's 2020 data.json (the same mapping the tests use for CKAN,
  `tests.emulator.ckan_package_from_dcat`, catalog.data.gov's harvester shape), each copy with a fresh
  package id, name and resource ids.

The pages are rendered to bytes once, in a child process, before anything is timed (a real portal renders on
its own machine), and served by the paging parameters our connectors send: Discovery `limit` + `scroll_id`
(resultSetSize capped at 10,000 as the real API does), CKAN `package_search` `rows` (≤ 1,000) + `start` with
`count`, and `organization_list`. The child holds only the page bytes (about 4 KB an item for socrata, 3.4 KB for ckan).
"""
from __future__ import annotations

import gzip
import multiprocessing as mp
import sys
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from queue import Empty
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# ../shared beside the checkout, or two levels up for a work tree under wt/ (as benchmarks/coverage.py finds it)
FIXTURES = next((p for p in (ROOT.parent / "shared" / "fixtures", ROOT.parent.parent / "shared" / "fixtures")
                 if p.exists()), ROOT.parent / "shared" / "fixtures")
from connectors.items import batches  # noqa: E402 - after the checkout is on the path

SOCRATA_SEEDS = FIXTURES / "socrata_scrape_2022" / "latest" / "data.cityofchicago.org.jsonl.gz"
CKAN_SEEDS = FIXTURES / "dcat_us" / "chicago_data_json_socrata_2020-07-22.json"
DOMAIN = "data.scale.example"
SITE = "scale"
SOCRATA_PAGE = 10_000  # the connector asks for the Discovery API maximum
CKAN_PAGE = 1_000  # CKAN's rows_max
RESULT_SET_CAP = 10_000
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_NAMESPACE = uuid.UUID("6f1c2a54-7d0e-4c1b-9a55-5ca1e0000000")


def socrata_id(i: int) -> str:
    """The i-th fresh 4x4 id, fixed width, so text order is i's order."""
    digits = []
    for _ in range(8):
        i, d = divmod(i, 36)
        digits.append(_ALPHABET[d])
    s = "".join(reversed(digits))
    return f"{s[:4]}-{s[4:]}"


def socrata_items(n: int) -> Iterator[bytes]:
    """Item bytes (orjson) of a Socrata catalog of n real items with fresh ids, in id order."""
    seeds: dict[str, bytes] = {}
    with gzip.open(SOCRATA_SEEDS, "rb") as f:
        for line in f:
            if line.strip():
                item = orjson.loads(line)
                seeds.setdefault(item["resource"]["id"], orjson.dumps(item))
    templates = list(seeds.items())
    for i in range(n):
        old, body = templates[i % len(templates)]
        yield body.replace(old.encode(), socrata_id(i).encode())


def ckan_packages(n: int) -> Iterator[bytes]:
    """Package bytes (orjson) of a CKAN site of n packages derived from a real data.json, fresh ids."""
    from tests.emulator import ckan_package_from_dcat

    doc = orjson.loads(CKAN_SEEDS.read_bytes())
    org = {"id": "0d5f1b8e-0000-4000-8000-00000000c0de", "name": "city-of-chicago", "title": "City of Chicago"}
    seeds = [ckan_package_from_dcat(ds, organization=org, harvested_at="2020-07-22T00:00:00")
             for ds in doc["dataset"]]
    for i in range(n):
        pkg = dict(seeds[i % len(seeds)])
        pid = str(uuid.uuid5(_NAMESPACE, str(i)))
        pkg["id"], pkg["name"] = pid, f"{pkg['name'][:60]}-{i}"
        pkg["resources"] = [{**r, "id": str(uuid.uuid5(_NAMESPACE, f"{i}#{k}")), "package_id": pid}
                            for k, r in enumerate(pkg["resources"])]
        yield orjson.dumps(pkg)


class Rendered:
    """The served bodies: one per page, keyed by the cursor that asks for it."""

    def __init__(self, kind: str, n: int):
        self.kind, self.n = kind, n
        self.by_cursor: dict[str | int | None, bytes] = {}
        if kind == "socrata":
            cursor: str | None = None
            total = min(n, RESULT_SET_CAP)
            for k, page in enumerate(batches(socrata_items(n), SOCRATA_PAGE)):
                self.by_cursor[cursor] = (b'{"results":[' + b",".join(page) + b'],"resultSetSize":%d,'
                                          b'"timings":{"serviceMillis":1}}' % total)
                cursor = socrata_id(k * SOCRATA_PAGE + len(page) - 1)
            self.by_cursor[cursor] = b'{"results":[],"resultSetSize":%d,"timings":{"serviceMillis":1}}' % total
        elif kind == "ckan":
            start = 0
            for page in batches(ckan_packages(n), CKAN_PAGE):
                self.by_cursor[start] = (b'{"success":true,"result":{"count":%d,"results":[' % n
                                         + b",".join(page) + b"]}}")
                start += len(page)
            self.by_cursor[start] = b'{"success":true,"result":{"count":%d,"results":[]}}' % n
        else:
            raise ValueError(f"no scale portal of kind {kind!r}")

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        if self.kind == "socrata" and path == "/api/catalog/v1" and params.get("domains") == DOMAIN:
            if int(params.get("limit", 10)) != SOCRATA_PAGE:
                return 400, b'{"error":"the scale portal serves limit=10000 pages only"}'
            body = self.by_cursor.get(params.get("scroll_id"))
        elif self.kind == "ckan" and path == f"/ckan/{SITE}/api/3/action/package_search":
            if int(params.get("rows", 10)) != CKAN_PAGE:
                return 409, b'{"success":false,"error":{"message":"the scale portal serves rows=1000 pages only"}}'
            body = self.by_cursor.get(int(params.get("start", 0)))
        elif self.kind == "ckan" and path == f"/ckan/{SITE}/api/3/action/organization_list":
            org = {"id": "0d5f1b8e-0000-4000-8000-00000000c0de", "name": "city-of-chicago",
                   "title": "City of Chicago", "package_count": self.n}
            return 200, orjson.dumps({"success": True, "result": [org] if params.get("all_fields") == "true"
                                      else ["city-of-chicago"]})
        else:
            return 404, b'{"error":"no such path"}'
        return (200, body) if body is not None else (400, b'{"error":"unknown cursor"}')

    def bodies(self) -> list[bytes]:
        return [b for b in self.by_cursor.values()]


def _serve(kind: str, n: int, queue: Any) -> None:
    rendered = Rendered(kind, n)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            status, body = rendered.answer(parts.path, params)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    queue.put((f"http://127.0.0.1:{server.server_address[1]}", sum(map(len, rendered.bodies()))))
    server.serve_forever()


class ScalePortal:
    """A child process serving a `kind` portal of `n` replicated real records (context manager)."""

    def __init__(self, kind: str, n: int):
        self.kind, self.n = kind, n
        self.url = ""
        self.body_bytes = 0
        self._proc: Any = None

    def __enter__(self) -> Self:
        ctx = mp.get_context("spawn")  # a clean child: the benchmark's own memory is not copied into it
        queue = ctx.Queue()
        self._proc = ctx.Process(target=_serve, args=(self.kind, self.n, queue), daemon=True)
        self._proc.start()
        while True:  # building 300k items takes a minute; a child that died says so instead of hanging
            try:
                self.url, self.body_bytes = queue.get(timeout=1)
                return self
            except Empty:
                if not self._proc.is_alive():
                    raise RuntimeError(f"the scale portal's process died (exit code {self._proc.exitcode})") from None

    def __exit__(self, *exc: Any) -> None:
        self._proc.terminate()
        self._proc.join()

    def config(self, **kw: Any) -> Any:
        """The settings.PortalConfig of this portal (key and city_key default to "scale-<kind>" / "scale")."""
        from maturity.settings import PortalConfig

        base = self.url if self.kind == "socrata" else f"{self.url}/ckan/{SITE}"
        extra = {"domain": DOMAIN} if self.kind == "socrata" else {}
        return PortalConfig(key=kw.pop("key", f"scale-{self.kind}"), city_key=kw.pop("city_key", "scale"),
                            kind=self.kind, url=base, **extra, **kw)

    def page_bodies(self) -> list[bytes]:
        """The bodies served, rendered again here (for a json.loads floor measured in the caller's process)."""
        return Rendered(self.kind, self.n).bodies()


def main(argv: list[str] | None = None) -> None:
    import argparse
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("socrata", "ckan"))
    ap.add_argument("n", type=int)
    args = ap.parse_args(argv)
    t = time.perf_counter()
    with ScalePortal(args.kind, args.n) as portal:
        print(f"{args.kind} portal of {args.n:,} items at {portal.config().url}: "
              f"{portal.body_bytes / 1e6:,.0f} MB of JSON, built in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
