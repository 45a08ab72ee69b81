"""The pinned tables under indicators/data/ (formats.json, vocab.json, wwc-criteria.json), read once."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"


def load_json(name: str) -> dict:
    return json.loads((DATA_DIR / name).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def format_tables() -> tuple[dict[str, int], frozenset[str]]:
    d = load_json("formats.json")
    return d["stars"], frozenset(d["machine_readable_exclude"])


def format_key(raw: object) -> str:
    """A record's format name (normalized once, by connectors.vocab.format_name) as the key of formats.json."""
    return str(raw).strip().lower()


@lru_cache(maxsize=1)
def vocab() -> dict:
    return load_json("vocab.json")

