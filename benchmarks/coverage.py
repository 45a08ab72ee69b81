"""Vocabulary coverage: how much of what portals write the normalization reads, with the tables as shipped and
leave-one-domain-out (issue 9), plus the share of each demo city's datasets whose department is a unit.

    .venv/bin/python benchmarks/coverage.py [--fixtures DIR] [--unmapped N] [--demo-dir DIR]

Frequency and departments: every Socrata domain of <fixtures>/socrata_scrape_2022/latest/ (2022-07-23). Each
domain is one run: `discover()` over its items, then `normalize()`.
- shipped: the tables as in connectors/data/.
- leave-one-domain-out (LODO): for each domain, every key and value spelling that domain ALONE uses is removed
  from the tables before its records are normalized: field keys of fields.json, frequency codes, the
  alternatives of each frequency pattern that match only its values, department aliases, licence rows. What is
  left to read it are the rules (key words, value patterns other domains need too, field discovery by values,
  licence families) - what a city we have never seen gets.
Frequency coverage = non-empty declared frequency values (as the shipped tables find them) that map, the LODO
run must also find the field. Department coverage = datasets whose shipped department is a unit of the city
for which the LODO run finds a unit too (and the same one: "agree").
Licences: every non-empty licence string of the latest Socrata scrape, the Socrata catalog/view files, CKAN and
DCAT fixtures; each non-scrape file counts as its own domain for LODO. Goals (README): LODO >= 90% frequency
and departments, shipped >= 98%; licences >= 98%, LODO >= 95%. Local files only.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import gzip
import json
import re
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors import make_connector, socrata, vocab  # noqa: E402
from connectors.archive import read_items  # noqa: E402
from maturity.settings import PortalConfig  # noqa: E402

# The shared fixtures sit beside the project (../shared) or beside the worktrees (../../shared).
SHARED = next((p for p in (ROOT.parent / "shared" / "fixtures", ROOT.parent.parent / "shared" / "fixtures")
               if p.exists()), ROOT.parent / "shared" / "fixtures")
LOCAL = ROOT / "tests" / "fixtures"
DEMO = ROOT / "data" / "demo"


@dataclass
class Row:
    """What one item says and what the normalization made of it."""

    freq_raw: str | None
    freq: str | None
    dept_raw: str | None
    dept: str | None
    licence_raw: str | None
    licence: str | None


def latest_domains(base: Path) -> dict[str, list[dict[str, Any]]]:
    """Socrata domain -> its unique items of the latest scrape (repeated lines count once)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((base / "socrata_scrape_2022" / "latest").glob("*.jsonl.gz")):
        if ".stats." in path.name:
            continue
        seen: dict[str, dict[str, Any]] = {}
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    item = json.loads(line)
                    seen.setdefault(str((item.get("resource") or {}).get("id")), item)
        out[path.name.removesuffix(".jsonl.gz")] = list(seen.values())
    return out


def other_catalogs(base: Path) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(name, kind, items) of the non-scrape catalog files (licence coverage)."""
    files = [(p, "socrata") for d in ("socrata_catalog", "socrata_views") for p in (base / d).glob("*.json*")]
    files += [(p, "ckan") for p in (base / "ckan").glob("*.json*")
              if "package_list" not in p.name and "datastore" not in p.name]
    files += [(p, "dcat") for p in (base / "dcat_us").glob("*.json*")]
    return [(p.name, kind, read_items(p, kind)[0]) for p, kind in sorted(files)]


def run(domain: str, kind: str, items: list[dict[str, Any]]) -> list[Row]:
    portal = PortalConfig(key=f"coverage-{kind}", city_key="coverage", kind=kind, url=f"https://{domain}",
                          domain=domain if kind == "socrata" else None)
    conn = make_connector(portal)
    profile = conn.discover(items)
    rows = []
    for raw in items:
        rec = conn.normalize(raw, profile)
        dept_raw = socrata.raw_department(portal, raw, profile) if kind == "socrata" else None
        rows.append(Row(rec.declared_frequency_raw, rec.declared_frequency, dept_raw, rec.department, rec.license,
                        rec.license_id))
    return rows


# --- the tables, and a copy without one domain's spellings ---------------------------------------------------

def _alternatives(pattern: str) -> list[str]:
    """A regex's top-level alternatives ("a|b(c|d)|e" -> a, b(c|d), e)."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    out.append(pattern[start:])
    return out


@dataclass
class Tables:
    fields: dict[str, Any]
    codes: dict[str, str]
    patterns: list[tuple[list[str], str]]  # (alternatives, value)
    aliases: dict[str, str]
    licences: tuple[dict[str, str], tuple[tuple[re.Pattern[str], str], ...], frozenset[str]]


def shipped_tables() -> Tables:
    rows = vocab._rows("frequency_patterns.csv")
    return Tables(
        fields={k: dict(v) if isinstance(v, dict) else v
                for k, v in json.loads((vocab.DATA_DIR / "fields.json").read_text(encoding="utf-8")).items()},
        codes=dict(vocab._frequency_codes()),
        patterns=[(_alternatives(r["pattern"]), r["value"]) for r in rows],
        aliases=dict(vocab._department_aliases()),
        licences=vocab._license_tables(),
    )


@dataclass
class Usage:
    """Which domains use each table entry (computed once from the shipped run of every domain)."""

    keys: dict[str, set[str]]  # custom field key -> domains with a non-empty value under it
    codes: dict[str, set[str]]  # frequency code -> domains whose raw value is that code
    alternatives: list[list[set[str]]]  # per pattern row, per alternative: domains with a value it matches
    aliases: dict[str, set[str]]  # department alias key -> domains
    licence_exact: dict[str, set[str]]  # licence table key -> domains
    licence_patterns: list[set[str]]  # per licence regex row: domains


def usage(t: Tables, domains: dict[str, list[dict[str, Any]]], rows: dict[str, list[Row]]) -> Usage:
    keys: dict[str, set[str]] = collections.defaultdict(set)
    for dom, items in domains.items():
        for item in items:
            for key, value in socrata._custom_fields(item).items():
                if isinstance(value, str) and value.strip():
                    keys[key].add(dom)
    freq: dict[str, set[str]] = collections.defaultdict(set)
    dept: dict[str, set[str]] = collections.defaultdict(set)
    lic: dict[str, set[str]] = collections.defaultdict(set)
    for dom, rs in rows.items():
        for r in rs:
            if r.freq_raw:
                freq[" ".join(r.freq_raw.lower().split())].add(dom)
            if r.dept_raw:
                dept[vocab._department_key(r.dept_raw)].add(dom)
            if r.licence_raw:
                lic[r.licence_raw].add(dom)

    def users(match: Callable[[str], Any], values: dict[str, set[str]]) -> set[str]:
        return {d for text, ds in values.items() if match(text) for d in ds}

    alternatives = [[users(re.compile(alt, re.I).search, freq) for alt in alts] for alts, _ in t.patterns]
    exact, rxs, _ = t.licences
    lic_low: dict[str, set[str]] = collections.defaultdict(set)
    for raw, ds in lic.items():
        lic_low[" ".join(raw.lower().split())] |= ds
        lic_low[vocab._bare_url(raw.strip().lower())] |= ds
    return Usage(keys, {c: freq.get(c, set()) for c in t.codes}, alternatives,
                 {k: dept.get(k, set()) for k in t.aliases}, {k: lic_low.get(k, set()) for k in exact},
                 [users(rx.search, lic) for rx, _ in rxs])


def _alone(domains: set[str], dom: str) -> bool:
    return domains == {dom}


def without(t: Tables, u: Usage, dom: str) -> Tables:
    """The tables minus every key and value spelling only `dom` uses."""
    fields = json.loads(json.dumps(t.fields))
    for role in ("frequency", "department"):
        fields["socrata"][role] = [k for k in fields["socrata"][role] if not _alone(u.keys.get(k, set()), dom)]
    codes = {c: v for c, v in t.codes.items() if not _alone(u.codes[c], dom)}
    patterns = []
    for (alts, value), alt_users in zip(t.patterns, u.alternatives, strict=True):
        kept = [alt for alt, users in zip(alts, alt_users, strict=True) if not _alone(users, dom)]
        if kept:
            patterns.append((kept, value))
    aliases = {k: v for k, v in t.aliases.items() if not _alone(u.aliases[k], dom)}
    exact, rxs, extra_open = t.licences
    exact = {k: v for k, v in exact.items() if not _alone(u.licence_exact[k], dom)}
    rxs = tuple(row for row, users in zip(rxs, u.licence_patterns, strict=True) if not _alone(users, dom))
    return Tables(fields, codes, patterns, aliases, (exact, rxs, extra_open))


def _clear_caches() -> None:
    for fn in (vocab.key_rank, vocab._key_rules, socrata._field_ranks, socrata._frequency, socrata._department,
               socrata._license_id):
        fn.cache_clear()


@contextlib.contextmanager
def installed(t: Tables) -> Iterator[None]:
    """Run the normalization on `t` instead of the shipped tables (swaps vocab's table loaders)."""
    saved = {name: getattr(vocab, name) for name in
             ("field_table", "_frequency_codes", "_frequency_patterns", "_department_aliases", "_license_tables")}
    patterns = tuple((re.compile("|".join(alts), re.I), value) for alts, value in t.patterns)
    replacement: dict[str, Callable[..., Any]] = {
        "field_table": lambda kind: t.fields.get(kind, {}),
        "_frequency_codes": lambda: t.codes,
        "_frequency_patterns": lambda: patterns,
        "_department_aliases": lambda: t.aliases,
        "_license_tables": lambda: t.licences,
    }
    for name, fn in replacement.items():
        setattr(vocab, name, fn)
    _clear_caches()
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(vocab, name, fn)
        _clear_caches()


# --- measures --------------------------------------------------------------------------------------------------

def pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.1f}%" if d else "n/a"


def frequency_coverage(shipped: list[Row], lodo: list[Row]) -> tuple[int, int, int, int]:
    """(non-empty raw values, mapped shipped, mapped LODO, LODO agrees with shipped) over one domain."""
    having = [i for i, r in enumerate(shipped) if r.freq_raw]
    return (len(having), sum(1 for i in having if shipped[i].freq), sum(1 for i in having if lodo[i].freq),
            sum(1 for i in having if shipped[i].freq and lodo[i].freq == shipped[i].freq))


def department_coverage(shipped: list[Row], lodo: list[Row]) -> tuple[int, int, int, int]:
    """(non-empty raw department, a unit shipped, a unit LODO among those, the same unit)."""
    having = [i for i, r in enumerate(shipped) if r.dept_raw]
    units = [i for i in having if shipped[i].dept]
    return (len(having), len(units), sum(1 for i in units if lodo[i].dept),
            sum(1 for i in units if lodo[i].dept == shipped[i].dept))


def demo_departments(demo: Path) -> list[tuple[str, int, int]]:
    """(city, datasets in its latest snapshots, with a department that is a unit) per demo city."""
    manifest = tomllib.loads((demo / "manifest.toml").read_text(encoding="utf-8"))
    latest: dict[str, dict[str, Any]] = {}
    for snap in manifest["snapshots"]:
        if snap["portal_key"] not in latest or snap["as_of"] > latest[snap["portal_key"]]["as_of"]:
            latest[snap["portal_key"]] = snap
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for portal_key, snap in sorted(latest.items()):
        kind = portal_key.rsplit("-", 1)[-1]
        items, _ = read_items(demo / snap["file"], kind)
        domain = _demo_domain(items, kind)
        rows = run(domain, kind, items)
        out[snap["city_key"]][0] += len(rows)
        out[snap["city_key"]][1] += sum(1 for r in rows if r.dept)
    return [(city, n, units) for city, (n, units) in sorted(out.items())]


def _demo_domain(items: list[dict[str, Any]], kind: str) -> str:
    """The portal's host as its items name it (metadata.domain, or a landing page's host)."""
    for item in items:
        if kind == "socrata" and (dom := (item.get("metadata") or {}).get("domain")):
            return str(dom)
        page = item.get("landingPage") or item.get("url")
        if isinstance(page, str) and "://" in page:
            return page.split("://", 1)[1].split("/", 1)[0]
    return "portal.example"


@functools.cache
def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=SHARED if SHARED.exists() else LOCAL)
    parser.add_argument("--unmapped", type=int, default=12, help="show the N most common unmapped values")
    parser.add_argument("--demo-dir", type=Path, default=DEMO)
    args = parser.parse_args()

    domains = latest_domains(args.fixtures)
    others = other_catalogs(args.fixtures)
    shipped = {dom: run(dom, "socrata", items) for dom, items in domains.items()}
    shipped_other = {name: run(name, kind, items) for name, kind, items in others}
    tables = shipped_tables()
    use = usage(tables, domains, {**shipped, **shipped_other})

    lodo: dict[str, list[Row]] = {}
    for dom, items in domains.items():
        with installed(without(tables, use, dom)):
            lodo[dom] = run(dom, "socrata", items)
    for name, kind, items in others:
        with installed(without(tables, use, name)):
            lodo[name] = run(name, kind, items)

    n_items = sum(len(v) for v in domains.values())
    print(f"coverage {_now()}: {args.fixtures}/socrata_scrape_2022/latest: {len(domains)} domains, {n_items} "
          f"unique items; licences also over {len(others)} other catalog files")
    f = [sum(x) for x in zip(*(frequency_coverage(shipped[d], lodo[d]) for d in domains), strict=True)]
    print(f"\nfrequency: {f[0]} non-empty values; shipped {f[1]} map ({pct(f[1], f[0])}); "
          f"leave-one-domain-out {f[2]} map ({pct(f[2], f[0])}), {f[3]} to the same value ({pct(f[3], f[0])})")
    g = [sum(x) for x in zip(*(department_coverage(shipped[d], lodo[d]) for d in domains), strict=True)]
    print(f"departments: {g[0]} datasets with a department text; shipped {g[1]} are units of the city "
          f"({pct(g[1], g[0])}); leave-one-domain-out finds a unit for {g[2]} of those ({pct(g[2], g[1])}), "
          f"the same one for {g[3]} ({pct(g[3], g[1])})")

    lic_rows = {**{d: (shipped[d], lodo[d]) for d in domains}, **{n: (shipped_other[n], lodo[n]) for n, _, _ in others}}
    total = mapped = mapped_lodo = links = named = 0
    unmapped: collections.Counter[str] = collections.Counter()
    for rs, ls in lic_rows.values():
        for r, lr in zip(rs, ls, strict=True):
            if not r.licence_raw:
                continue
            total += 1
            mapped += r.licence is not None
            mapped_lodo += lr.licence is not None
            named += vocab.names_licence(r.licence)
            if r.licence is None:
                # ArcGIS Hub writes a link to each dataset's own licence document, which names no licence
                if re.search(r"/datasets/[^/]+/license(\.json)?$", r.licence_raw):
                    links += 1
                else:
                    unmapped[r.licence_raw] += 1
    print(f"licences: {total} non-empty licence strings; shipped {mapped} map ({pct(mapped, total)}), "
          f"{named} to a named licence; leave-one-domain-out {mapped_lodo} ({pct(mapped_lodo, total)})")
    print(f"  unmapped: {links} links to a per-dataset licence document (ArcGIS Hub .../datasets/<id>/license), "
          f"{total - mapped - links} other; without the links: shipped {pct(mapped, total - links)}, "
          f"leave-one-domain-out {pct(mapped_lodo, total - links)}")

    if args.unmapped:
        miss_f = collections.Counter(r.freq_raw for d in domains for r in lodo[d] if r.freq_raw and not r.freq)
        miss_f.update(r.freq_raw for d in domains for r, lr in zip(shipped[d], lodo[d], strict=True)
                      if r.freq_raw and not lr.freq_raw)
        print("  frequency unmapped (LODO): " + "; ".join(f"{v!r} x{n}" for v, n in miss_f.most_common(args.unmapped)))
        miss_d = collections.Counter(r.dept_raw for d in domains for r in shipped[d] if r.dept_raw and not r.dept)
        print("  department texts that are no unit (shipped): "
              + "; ".join(f"{v!r} x{n}" for v, n in miss_d.most_common(args.unmapped)))
        if unmapped:
            print("  licences unmapped: " + "; ".join(f"{v!r} x{n}" for v, n in unmapped.most_common(args.unmapped)))

    if args.demo_dir.exists():
        print("\ndemo cities: datasets (latest snapshot of each portal) whose department is a unit of the city")
        for city, n, units in demo_departments(args.demo_dir):
            print(f"  {city:14s} {units:5d} / {n:5d} ({pct(units, n)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
