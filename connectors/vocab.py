"""Controlled vocabularies: free text from portals → comparable values, driven by tables in `connectors/data/`.

Pure functions; the tables are read once. Portal text is untrusted: it is only matched and trimmed, never
evaluated.
"""
from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
            exact.setdefault(_bare_url(url), lid)
    return exact, tuple(patterns), frozenset(extra_open)


def license_id(raw: str | None) -> str | None:
    """Licence text, id or URL → a licence id (Open Definition id, else SPDX), or None when unknown.

    The table (`licenses.csv` and the pinned Open Definition list) is tried first, then the rules of
    `license_by_rule` for the licence families (every Creative Commons licence, Open Data Commons, public
    domain, open government licences), then the table's URL patterns."""
    text = _clean(raw)
    if text is None:
        return None
    exact, patterns, _ = _license_tables()
    low = text.lower()
    if low in exact:
        return exact[low]
    bare = _bare_url(low)
    if bare in exact:
        return exact[bare]
    lid = license_by_rule(text)
    if lid:
        return lid
    for pattern, pid in patterns:
        if pattern.search(text):
            return pid
    return None


def _bare_url(low: str) -> str:
    return re.sub(r"^https?://(www\.)?", "", low).rstrip("/")


# creativecommons.org/licenses/by-sa/3.0/au/legalcode, .../publicdomain/zero/1.0/deed.en
_CC_URL = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)(?:/(\d+(?:\.\d+)?))?"
                     r"(?:/([a-z]{2,3})(?![a-z]))?")
_ODC_URL = re.compile(r"opendatacommons\.org/licenses/(odbl|by|pddl)\b")
_VERSION = re.compile(r"(?<![\d.])(\d)\.(\d)(?![\d.])")
_SOCRATA_CC_VERSION = re.compile(r"^cc_(\d)(\d)_")  # Socrata licence ids: cc_40_by_sa, cc_30_by
# Creative Commons ported licences (jurisdiction suffix of the id), by the names portals write.
_CC_PORTS = {"igo": "IGO", "australia": "AU", "au": "AU", "us": "US", "canada": "CA", "ca": "CA",
             "nz": "NZ", "zealand": "NZ", "uk": "UK", "scotland": "SCO", "ireland": "IE", "ie": "IE"}
_CC_CURRENT = "4.0"  # a CC licence named without a version is read as the current one
_OGL_FILLER = frozenset({"open", "government", "licence", "license", "ogl", "the", "of", "for", "v", "version",
                         "city", "province", "state", "and"})


def license_by_rule(text: str) -> str | None:
    """A licence id from the words or URL of a licence family, or None: Creative Commons (any licence,
    version, port, name, id or URL, `legalcode`/`deed` pages, http/https), CC0, Open Data Commons (ODbL,
    ODC-By, PDDL), public domain and open government licences ("OGL-<jurisdiction>")."""
    low = text.lower()
    url = _CC_URL.search(low)
    if url:
        family, kind, version, port = url.groups()
        if family == "publicdomain":
            return "CC0-1.0" if kind == "zero" else "other-pd" if kind == "mark" else None
        return _cc_id(set(kind.split("-")), version, port)
    odc = _ODC_URL.search(low)
    if odc:
        return {"odbl": "ODbL-1.0", "by": "ODC-BY-1.0", "pddl": "PDDL-1.0"}[odc.group(1)]
    words = key_words(text)
    ws = set(words)
    phrase = " ".join(words)
    if "odbl" in ws or "open database licen" in phrase.replace("license", "licen").replace("licence", "licen"):
        return "ODbL-1.0"
    if "pddl" in ws or "public domain dedication and licen" in phrase.replace("license", "licen").replace(
            "licence", "licen"):
        return "PDDL-1.0"
    if ("odc" in ws and "by" in ws) or ("open data commons attribution" in phrase):
        return "ODC-BY-1.0"
    creative = "cc" in ws or "cc0" in ws or "creative commons" in phrase or "creativecommons" in ws or (
        # the CC licence names without "Creative Commons": "Attribution-NonCommercial-ShareAlike 4.0 International"
        "attribution" in ws and bool(ws & {"international", "unported", "noncommercial", "sharealike",
                                           "noderivatives", "noderivs"} or _VERSION.search(low)))
    if creative:
        if "cc0" in ws or "zero" in ws or "public domain" in phrase:
            return "CC0-1.0"
        parts = set()
        if "by" in ws or "attribution" in ws:
            parts.add("by")
        if "nc" in ws or "noncommercial" in ws or "non commercial" in phrase:
            parts.add("nc")
        if "nd" in ws or "noderivatives" in ws or "noderivs" in ws or re.search(r"\bno ?deriv", phrase):
            parts.add("nd")
        if "sa" in ws or "sharealike" in ws or "share alike" in phrase:
            parts.add("sa")
        if not parts:
            return None
        m = _VERSION.search(low) or _SOCRATA_CC_VERSION.search(low)
        port = next((_CC_PORTS[w] for w in words if w in _CC_PORTS), None)
        return _cc_id(parts, f"{m.group(1)}.{m.group(2)}" if m else None, port)
    if "open government licen" in phrase.replace("license", "licen").replace("licence", "licen") or "ogl" in ws:
        return _ogl_id(words, low)
    if "public domain" in phrase or "government works" in phrase or "usa.gov/publicdomain" in low:
        return "other-pd"
    return None


def _cc_id(parts: set[str], version: str | None, port: str | None) -> str | None:
    parts = parts & {"by", "nc", "nd", "sa"}
    if not parts:
        return None
    version = version or _CC_CURRENT
    if version.count(".") == 0:
        version += ".0"
    # Every CC licence since 2.0 requires attribution; elements in the order of the licence names.
    elements = ["BY"] + [e.upper() for e in ("nc", "nd", "sa") if e in parts]
    suffix = f"-{port.upper()}" if port and version != "4.0" else ""
    return f"CC-{'-'.join(elements)}-{version}{suffix}"


def _ogl_id(words: tuple[str, ...], low: str) -> str:
    if {"uk", "kingdom"} & set(words) or "nationalarchives.gov.uk" in low:
        m = re.search(r"(?:v|version|/)\s*([123])\b", low)
        return f"OGL-UK-{m.group(1) if m else '3'}.0"
    place = [w for w in words if w not in _OGL_FILLER and not w.isdigit()]
    if place == ["canada"]:
        return "OGL-Canada-2.0"
    if not place:
        return "other-open"
    return "OGL-" + ("".join(w[0] for w in place).upper() if len(place) > 1 else place[0].title())


# Ids that say a licence is not named ("See Terms of Use", "License not specified").
NO_LICENCE_IDS = frozenset({"notspecified"})


def names_licence(lid: Any) -> bool:
    """Whether a licence id names a licence (not missing, not "notspecified")."""
    return isinstance(lid, str) and bool(lid) and lid not in NO_LICENCE_IDS


def is_open_license(lid: str | None) -> bool:
    """True when the licence id conforms to the Open Definition (pinned okfn list), is listed open in
    licenses.csv, or belongs to an open family: Creative Commons without NonCommercial/NoDerivatives (any
    version or port; the OD list has only 4.0 ids), CC0, and the open government licences (OGL-*), whose
    terms follow the UK OGL, which the OD list approves (as it does OGL-Canada-2.0)."""
    if not lid:
        return False
    _, _, extra_open = _license_tables()
    info = _od_licenses().get(lid)
    if lid in extra_open or (info is not None and info.get("od_conformance") == "approved"):
        return True
    if lid.startswith("CC-BY") and "-NC" not in lid and "-ND" not in lid:
        return True
    return lid.startswith(("CC0-", "OGL-"))


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


@functools.cache
def unit_words() -> frozenset[str]:
    """Words that name a unit of a city government (data/unit_words.txt)."""
    with open(DATA_DIR / "unit_words.txt", encoding="utf-8") as fh:
        return frozenset(w for w in (line.strip().lower() for line in fh) if w and not w.startswith("#"))


def looks_like_unit(text: str) -> bool:
    """Whether a name holds a word of a government unit ("Police", "Office of ...", "IndyGIS")."""
    return not unit_words().isdisjoint(key_words(text))


# "City of X", "X County", "Government of X", "City and County of X, CA": the jurisdiction itself, no unit.
_GOVERNMENTS = ("city and county|consolidated government|metropolitan government|unified government|city|county|"
                "town|village|township|borough|municipality|state|commonwealth|parish|government")
_PLACE = r"[a-z][a-z .'\u2019]*?"
_JURISDICTION = re.compile(
    rf"^(?:the )?(?:{_GOVERNMENTS}) of {_PLACE}(?:,? [a-z .]+)?$"
    rf"|^{_PLACE} (?:{_GOVERNMENTS})(?: government)?(?:, [a-z .]+)?$"
)
_COMPACT = re.compile(r"[^0-9a-z]+")
# Domain labels that say nothing about which city a portal belongs to.
_GENERIC_LABELS = frozenset({"data", "www", "opendata", "open", "portal", "gis", "hub", "catalog", "gov", "org",
                             "com", "net", "us", "ca", "uk", "au", "socrata", "arcgis", "datos", "donnees"})


def _compact(text: str) -> str:
    return _COMPACT.sub("", text.casefold())


def is_jurisdiction(text: str) -> bool:
    """A name of a government as a whole ("City of Chicago", "Montgomery County, MD"), not one of its units."""
    return bool(_JURISDICTION.match(" ".join(text.casefold().split()))) and not looks_like_unit(text)


@functools.lru_cache(maxsize=256)
def city_names(domain: str | None, city_key: str | None = None) -> frozenset[str]:
    """Compact forms (lower-case alphanumerics) of what names a portal's city as a whole: its domain, the
    domain's distinctive labels ("cityofchicago", "chicago", "austintexas") and the config's city key."""
    names: set[str] = set()
    if domain:
        host = domain.casefold().split("://")[-1].split("/")[0].split(":")[0]
        names.add(_compact(host))
        for label in host.split("."):
            if label and label not in _GENERIC_LABELS:
                names.add(_compact(label))
                names.add(re.sub(r"^(cityof|countyof|townof|villageof)", "", _compact(label)))
    if city_key:
        names.add(_compact(city_key))
    names.discard("")
    return frozenset(names)


def department(raw: str | None, aliases: Iterable[tuple[str, str]] = (), *, city: frozenset[str] = frozenset(),
               persons: frozenset[str] = frozenset(), contact: str | None = None) -> str | None:
    """Department text → a display name of a unit of the city: whitespace collapsed, trailing punctuation
    dropped, known aliases merged (table plus per-portal `aliases`); None for empty text, placeholders, bare
    e-mail addresses and what is not a unit: the city itself ("City of X", a name in `city`, see city_names)
    and a person (`persons` of the run, the record's `contact`) unless the name holds a unit word."""
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
    if not looks_like_unit(text):
        folded = text.casefold()
        if is_jurisdiction(text) or _compact(text) in city:
            return None
        # a name that holds the city's own name ("Austin Energy") is one of its bodies, not a person
        person = folded in persons or (contact is not None and folded == contact.casefold())
        if person and city.isdisjoint(key_words(text)):
            return None
    return text


# --- field keys by words ------------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD_SPLIT = re.compile(r"[^0-9A-Za-z]+")


@functools.lru_cache(maxsize=16_384)
def key_words(text: str) -> tuple[str, ...]:
    """A field name's words, lower-cased: split at every non-alphanumeric and at camelCase humps
    ("Metadata_Update-Frequency" -> metadata, update, frequency; "UpdateFrequency" -> update, frequency).

    Matching words, not substrings, is what keeps "date" out of "Update" and "rate" out of "Separate"."""
    return tuple(w.lower() for w in _WORD_SPLIT.split(_CAMEL.sub(" ", text)) if w)


@functools.lru_cache(maxsize=4)
def _key_rules(kind: str, role: str) -> tuple[frozenset[str], tuple[frozenset[str], ...], frozenset[str],
                                             frozenset[str]]:
    rules = field_table(kind).get("key_rules", {}).get(role, {})
    return (frozenset(rules.get("words", ())), tuple(frozenset(p) for p in rules.get("pairs", ())),
            frozenset(rules.get("not_words", ())), frozenset(rules.get("neutral_words", ())))


def _names_role(words: tuple[str, ...], positive: frozenset[str], pairs: tuple[frozenset[str], ...]) -> bool:
    present = set(words)
    return bool(present & positive) or any(pair <= present for pair in pairs)


@functools.lru_cache(maxsize=16_384)
def key_rank(kind: str, role: str, key: str) -> int | None:
    """How a custom field key names a role ("frequency" / "department") by its words: 0 = the field's own name
    does ("Metadata_Update-Frequency", "Frequency of Data Change"), 1 = its fieldset does and the field's words
    only qualify it ("Update-Frequency_Refresh-rate", "Frequency_Data-Change"), None = it does not.

    A Socrata key is "<Fieldset>_<Field>"; a key without "_" is all field. A field word of `not_words` ("date",
    "method", "email", "by") means the field holds something else about the role and never matches."""
    positive, pairs, negative, neutral = _key_rules(kind, role)
    fieldset, sep, field = key.partition("_")
    if not sep:
        fieldset, field = "", key
    field_words = key_words(field)
    if not field_words or set(field_words) & negative:
        return None
    if _names_role(field_words, positive, pairs):
        return 0
    if fieldset and set(field_words) <= neutral and _names_role(key_words(fieldset), positive, pairs):
        return 1
    return None


# --- field discovery by values -------------------------------------------------------------------------------

DISCOVERY_MIN_VALUES = 5  # fewer filled values say too little about what a field holds
DISCOVERY_SHARE = 0.8  # share of a field's distinct filled values that must read as the role
DISCOVERY_SAMPLE = 5_000  # items read for the profile: a streamed harvest can compute it from its first pages


@dataclass(frozen=True, slots=True)
class FieldProfile:
    """What one portal's own run says about its custom fields, computed once per run before normalizing.

    `frequency` / `department`: custom field keys whose filled values mostly read as a cadence / as names of
    units, whatever the keys are called (tried after config, the table and key words). `persons`: casefolded
    names of the people the run names as owners or contacts, which are never departments. `roots`: compact
    names (see city_names) of the organizations at the top of the run's publisher hierarchies (DCAT-US
    `subOrganizationOf`), which are the city or its portal, not units."""

    frequency: tuple[str, ...] = ()
    department: tuple[str, ...] = ()
    persons: frozenset[str] = frozenset()
    roots: frozenset[str] = frozenset()  # compact names of the catalog's publisher root(s): the city, no unit


EMPTY_PROFILE = FieldProfile()


def discover_fields(kind: str, values_by_key: Mapping[str, Sequence[Any]], persons: Iterable[Any] = (),
                    roots: Iterable[str] = ()) -> FieldProfile:
    """Pure: custom field key -> the values it holds over one portal's run (items in any order) -> FieldProfile.

    A key is a frequency field when at least DISCOVERY_SHARE of its distinct filled values map to a frequency
    and at least one of them is a real period (so a Yes/No or "Manual"/"None" field is not), and a department
    field when that share of its distinct values looks like the name of a unit ("... Department", "Office of
    ..."). Keys whose field words say they hold something else (`not_words`: dates, methods, e-mails) never
    qualify, and keys whose words already name the role (key_rank) need no discovery. Distinct values, so one
    value repeated on every dataset does not decide alone; result sorted, so the profile does not depend on
    item order."""
    freq_keys: list[str] = []
    dept_keys: list[str] = []
    freq_rules, dept_rules = _key_rules(kind, "frequency"), _key_rules(kind, "department")
    org_words = frozenset(field_table(kind).get("key_rules", {}).get("department", {}).get("value_words", ()))
    for key, values in values_by_key.items():
        texts = [t for t in (_clean(v) if isinstance(v, str) else None for v in values) if t]
        distinct = set(texts)
        if len(texts) < DISCOVERY_MIN_VALUES or len(distinct) < 2:
            continue
        words = set(key_words(key.partition("_")[2] or key))
        allowed_misses = int((1.0 - DISCOVERY_SHARE) * len(distinct))
        if not words & freq_rules[2] and key_rank(kind, "frequency", key) is None:
            mapped = _mostly(distinct, _short_frequency, allowed_misses)
            if mapped is not None and any(m not in NAMED_FREQUENCIES for m in mapped):
                freq_keys.append(key)
                continue
        if (not words & dept_rules[2] and key_rank(kind, "department", key) is None
                and _mostly(distinct, lambda v: _names_organization(v, org_words), allowed_misses) is not None):
            dept_keys.append(key)
    names = frozenset(t.casefold() for t in (_clean(p) for p in persons if isinstance(p, str)) if t)
    return FieldProfile(tuple(sorted(freq_keys)), tuple(sorted(dept_keys)), names,
                        frozenset(c for c in map(_compact, roots) if c))


def _mostly(values: Iterable[str], read: Any, allowed_misses: int) -> list[Any] | None:
    """`read` of each value (the truthy ones), or None as soon as more than `allowed_misses` read as nothing: a
    field of titles or notes is rejected after a few values, not after all of them."""
    out, misses = [], 0
    for value in sorted(values):  # sorted: the same answer whatever order the run's items came in
        result = read(value)
        if result:
            out.append(result)
        else:
            misses += 1
            if misses > allowed_misses:
                return None
    return out


MAX_UNIT_NAME_WORDS = 8  # longer values are sentences (citations, notes), not names of units


def _short_frequency(text: str) -> str | None:
    """frequency() of a short text; a sentence (a title, a note) is no field of cadences, and is not searched."""
    return frequency(text) if text.count(" ") < MAX_UNIT_NAME_WORDS else None


def _names_organization(text: str, org_words: frozenset[str]) -> bool:
    words = key_words(text)
    return len(words) <= MAX_UNIT_NAME_WORDS and not org_words.isdisjoint(words)


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


def contact_email(raw: Any) -> str | None:
    """The contact e-mail as the portal wrote it, for the record: an address with its `mailto:` scheme
    stripped, anything else ("mailto:Nick Lucius") kept verbatim (trimmed) so that conformance checks see the
    malformed value and count it invalid instead of never seeing it. None only when empty or not text."""
    if not isinstance(raw, str):
        return None
    return email(raw) or _clean(raw)


def first_text(values: Sequence[Any]) -> str | None:
    """The first non-empty text of `values`."""
    for value in values:
        if value is None or value == "":
            continue
        text = _clean(value)
        if text is not None:
            return text
    return None
