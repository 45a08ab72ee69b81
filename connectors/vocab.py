"""Controlled vocabularies: free text from portals → comparable values, driven by tables in `connectors/data/`.

Pure functions; the tables are read once. Portal text is untrusted: it is only matched and trimmed, never
evaluated.
"""
from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
NAMED_FREQUENCIES = ("historical", "never", "continuous", "as needed", "irregular")
MAX_FREQUENCY_TEXT = 300  # longer "frequency" values are misplaced descriptions; match only their start
# ISO-8601 duration, optionally as a repeating interval "R/P1D" (DCAT-US accrualPeriodicity form).
_ISO_PERIOD = re.compile(r"^(?:r\d*/)?(p(?:\d+(?:\.\d+)?[ymwd])*(?:t(?:\d+(?:\.\d+)?[hms])+)?)$", re.I)
_TRAILING = re.compile(r"[\s.,;:]+$")
_MAILTO = re.compile(r"^mailto:", re.I)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, encoding="utf-8", newline="") as fh:
        lines = [line for line in fh if not line.startswith("#")]
    return list(csv.DictReader(lines))


def _clean(raw: Any) -> str | None:
    """Trimmed single-spaced text, or None when empty / not text."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raw = str(raw)
    text = raw.strip()
    if "  " in text or "\n" in text or "\t" in text or "\r" in text:  # only when needed: hot path
        text = " ".join(text.split())  # = re.sub(r"\s+", " ", text) on stripped text, at a third of the cost
    return text or None


# --- frequency ---------------------------------------------------------------------------------------------

@functools.cache
def _frequency_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(r["pattern"], re.I), r["value"]) for r in _rows("frequency_patterns.csv"))


@functools.cache
def _frequency_codes() -> dict[str, str]:
    return {r["code"]: r["value"] for r in _rows("frequency_codes.csv")}


def _iso_period(text: str) -> str | None:
    m = _ISO_PERIOD.match(text.replace(" ", ""))
    if not m or m.group(1).upper() in ("P", "PT"):
        return None
    return m.group(1).upper()


def frequency(raw: str | None, overrides: Iterable[tuple[str, str]] = ()) -> str | None:
    """Free-text update frequency → ISO-8601 period ("P1D", "PT1H", "P3M") or a named value
    ("historical", "never", "continuous", "as needed", "irregular"); None when empty or not understood.

    `overrides` are per-portal (raw text, value) pairs from config, compared case-insensitively, tried first.
    """
    text = _clean(raw)
    if text is None:
        return None
    low = text.lower()[:MAX_FREQUENCY_TEXT]
    for key, value in overrides:
        if key.strip().lower() == low:
            return value or None
    iso = _iso_period(low)
    if iso:
        return iso
    tail = low.rstrip("/").rsplit("/", 1)[-1]  # EU vocabulary URIs end in the code (".../frequency/IRREG")
    codes = _frequency_codes()
    if low in codes:
        return codes[low] or None
    if "/" in low and tail in codes:
        return codes[tail] or None
    for pattern, value in _frequency_patterns():
        m = pattern.search(low)
        if m:
            if "{n}" in value:
                number = next((g for g in m.groups() if g and g.isdigit()), None)
                if number is None or int(number) == 0:
                    continue
                return value.replace("{n}", str(int(number)))
            return value or None
    return None


# --- licences ----------------------------------------------------------------------------------------------

@functools.cache
def _od_licenses() -> dict[str, dict[str, Any]]:
    with open(DATA_DIR / "opendefinition_licenses_all.json", "rb") as fh:
        return json.load(fh)


@functools.cache
def _license_tables() -> tuple[dict[str, str], tuple[tuple[re.Pattern[str], str], ...], frozenset[str]]:
    exact: dict[str, str] = {}
    patterns: list[tuple[re.Pattern[str], str]] = []
    extra_open: set[str] = set()
    for r in _rows("licenses.csv"):
        if r["raw"].startswith("~"):
            patterns.append((re.compile(r["raw"][1:], re.I), r["license_id"]))
        else:
            exact[r["raw"].strip().lower()] = r["license_id"]
        if (r.get("open") or "").strip() == "yes":
            extra_open.add(r["license_id"])
    for lid, info in _od_licenses().items():
        exact.setdefault(lid.lower(), lid)
        exact.setdefault(str(info.get("title", "")).strip().lower(), lid)
        url = str(info.get("url") or "").strip().lower()
        if url:
            exact.setdefault(re.sub(r"^https?://", "", url).rstrip("/"), lid)
    return exact, tuple(patterns), frozenset(extra_open)


def license_id(raw: str | None) -> str | None:
    """Licence text, id or URL → a licence id (Open Definition id, else SPDX), or None when unknown."""
    text = _clean(raw)
    if text is None:
        return None
    exact, patterns, _ = _license_tables()
    low = text.lower()
    if low in exact:
        return exact[low]
    bare = re.sub(r"^https?://", "", low).rstrip("/")
    if bare in exact:
        return exact[bare]
    for pattern, lid in patterns:
        if pattern.search(text):
            return lid
    return None


def is_open_license(lid: str | None) -> bool:
    """True when the licence id conforms to the Open Definition (pinned okfn list) or is listed open in
    licenses.csv."""
    if not lid:
        return False
    _, _, extra_open = _license_tables()
    info = _od_licenses().get(lid)
    return lid in extra_open or (info is not None and info.get("od_conformance") == "approved")


# --- formats -----------------------------------------------------------------------------------------------

@functools.cache
def _formats() -> dict[str, str]:
    return {r["raw"].strip().lower(): r["format"] for r in _rows("formats.csv")}


def format_name(raw: str | None) -> str | None:
    """Format name or media type → canonical name ("text/csv" and "csv" → "CSV"); unknown text upper-cased."""
    text = _clean(raw)
    if text is None:
        return None
    low = text.lower().lstrip(".")
    table = _formats()
    if low in table:
        return table[low]
    base = low.split(";", 1)[0].strip()  # "text/csv; charset=utf-8"
    if base in table:
        return table[base]
    return text.upper()


# --- departments -------------------------------------------------------------------------------------------

def _department_key(text: str) -> str:
    return _TRAILING.sub("", text.casefold().replace("&", "and")).strip()


@functools.cache
def _department_aliases() -> dict[str, str]:
    return {_department_key(r["raw"]): r["department"] for r in _rows("department_aliases.csv")}


def department(raw: str | None, aliases: Iterable[tuple[str, str]] = ()) -> str | None:
    """Department text → a display name: whitespace collapsed, trailing punctuation dropped, known aliases
    merged (table plus per-portal `aliases`); None for empty text, placeholders and bare e-mail addresses."""
    text = _clean(raw)
    if text is None:
        return None
    text = _TRAILING.sub("", text)
    if not text or _EMAIL.match(text):
        return None
    key = _department_key(text)
    for alias, value in aliases:
        if _department_key(alias) == key:
            return value or None
    table = _department_aliases()
    if key in table:
        return table[key] or None
    return text


# --- helpers shared by the connectors ----------------------------------------------------------------------

@functools.cache
def field_table(kind: str) -> dict[str, Any]:
    """The per-kind field lists of `data/fields.json` (where frequency and department live)."""
    with open(DATA_DIR / "fields.json", "rb") as fh:
        return json.load(fh).get(kind, {})


def email(raw: str | None) -> str | None:
    """A contact e-mail: `mailto:` stripped and trimmed; None unless it looks like an address."""
    text = _clean(raw)
    if text is None:
        return None
    text = _MAILTO.sub("", text).strip()
    return text if _EMAIL.match(text) else None


def first_text(values: Sequence[Any]) -> str | None:
    """The first non-empty text of `values`."""
    for value in values:
        if value is None or value == "":
            continue
        text = _clean(value)
        if text is not None:
            return text
    return None
