"""Recorded catalog files (plain or .gz) → raw items, for backfilling history with `maturity import`.

This module reads and parses the file (one JSON document, or JSONL: one item per line); which shapes a kind
accepts is its connector's `read_archive(doc, path)` (connectors/socrata.py, ckan.py, dcat.py), found through
the registry `connectors.CONNECTORS`, so a new portal kind needs no line here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors import CONNECTORS
from connectors.base import FetchStats, read_document


def read_items(path: str | Path, kind: str) -> tuple[list[dict[str, Any]], FetchStats]:
    """Raw items of a recorded catalog file of `kind`, each id once (repeats counted in stats.repeats)."""
    path = Path(path)
    try:
        connector = CONNECTORS[kind]
    except KeyError:
        raise ValueError(f"unknown portal kind {kind!r} (known: {', '.join(CONNECTORS)})") from None
    return connector.read_archive(read_document(path), path)
