"""Recorded catalog files (plain or .gz) → raw items, for backfilling history with `maturity import`.

Accepted shapes, per kind:
- socrata: Discovery envelope `{"results": [...]}`, a JSON list of items, JSONL (one item per line, as the
  2022 git scrape), a `{"datasets": [view, ...]}` dump of view objects or one view object. A scrape's
  `<name>.stats.jsonl[.gz]` side file next to `<name>.jsonl[.gz]` is merged back into each item's
  `resource.page_views` / `resource.download_count` (the live API's place for them).
- ckan: `package_search` response `{"result": {"results": [...]}}`, a bare result, a list of packages,
  `package_show` (`{"result": {package}}`) or one package dict.
- dcat: a `data.json` document (schema errors in stats.schema_check as the DCAT connector reports them).
"""
from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from connectors.base import FetchStats, PortalIncompatible
from connectors.dcat import unique_datasets, validate
from connectors.socrata import RESULT_SET_CAP

GZIP_MAGIC = b"\x1f\x8b"
KINDS = ("socrata", "ckan", "dcat")


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


def _parse(data: bytes, path: Path) -> Any:
    """One JSON document, or a list of the lines of a JSONL file."""
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


def _dedupe(items: list[Any], key: Callable[[dict[str, Any]], Any]) -> tuple[list[dict[str, Any]], int]:
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


def _socrata_id(item: dict[str, Any]) -> Any:
    return (item.get("resource") or {}).get("id") or item.get("id")


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
    for row in _parse(_read(stats_path), stats_path):
        if isinstance(row, dict) and isinstance(row.get("stats"), dict):
            usage[row.get("id")] = row["stats"]
    out = []
    for item in items:
        stats = usage.get(_socrata_id(item))
        resource = item.get("resource")
        if stats and isinstance(resource, dict) and "page_views" not in resource:
            page_views = {k: v for k, v in stats.items() if k.startswith("page_views")}
            extra: dict[str, Any] = {"page_views": page_views}
            if "download_count" in stats:
                extra["download_count"] = stats["download_count"]
            item = {**item, "resource": {**resource, **extra}}
        out.append(item)
    return out


def _socrata(doc: Any, path: Path) -> tuple[list[Any], int | None]:
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


def _ckan(doc: Any, path: Path) -> tuple[list[Any], int | None]:
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


def read_items(path: str | Path, kind: str) -> tuple[list[dict[str, Any]], FetchStats]:
    """Raw items of a recorded catalog file, each id once (repeats counted in stats.repeats)."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown portal kind {kind!r} (known: {', '.join(KINDS)})")
    doc = _parse(_read(path), path)
    check = None
    if kind == "dcat":
        if not isinstance(doc, dict) or not isinstance(doc.get("dataset"), list):
            raise PortalIncompatible(f"{path}: not a data.json catalog (no 'dataset' list)")
        check = validate(doc)
        items, repeats = unique_datasets(doc["dataset"])
        reported: int | None = len(items)
    elif kind == "socrata":
        raw, reported = _socrata(doc, path)
        items, repeats = _dedupe(raw, _socrata_id)
        stats_path = _stats_file(path)
        if stats_path is not None:
            items = _merge_usage(items, stats_path)
    else:
        raw, reported = _ckan(doc, path)
        items, repeats = _dedupe(raw, lambda p: p.get("id") or p.get("name"))
    return items, FetchStats(items_seen=len(items), repeats=repeats, reported_total=reported, pages=1,
                             schema_check=check)
