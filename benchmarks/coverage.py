"""Vocabulary coverage over every recorded catalog: how many non-empty raw frequency and department values
map to a normalized value. Goal for frequency: at least 95%.

    .venv/bin/python benchmarks/coverage.py [--fixtures DIR] [--unmapped N]

Reads ../shared/fixtures when present (every Socrata domain of the 2022 scrape, views, CKAN, data.json),
else tests/fixtures. Local files only.
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors import (  # noqa: E402
    ckan,
    dcat,
    make_connector,  # noqa: E402
    socrata,
    vocab,
)
from connectors.archive import read_items  # noqa: E402
from settings import PortalConfig  # noqa: E402

SHARED = ROOT.parent / "shared" / "fixtures"
LOCAL = ROOT / "tests" / "fixtures"


def catalog_files(base: Path) -> list[tuple[Path, str]]:
    files = [(p, "socrata") for p in base.rglob("*.jsonl.gz") if ".stats." not in p.name and "socrata" in str(p)]
    files += [(p, "socrata") for d in ("socrata_catalog", "socrata_views") for p in (base / d).glob("*.json*")]
    files += [(p, "ckan") for p in (base / "ckan").glob("*.json*")
              if "package_list" not in p.name and "datastore" not in p.name]
    files += [(p, "dcat") for p in (base / "dcat_us").glob("*.json*")]
    return sorted(files)


def raw_department(kind: str, portal: PortalConfig, raw: dict) -> str | None:
    if kind == "socrata":
        return socrata.raw_department(portal, raw)
    if kind == "ckan":
        return ckan.raw_department(portal, raw)
    return dcat.raw_department(raw)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=SHARED if SHARED.exists() else LOCAL)
    parser.add_argument("--unmapped", type=int, default=15, help="show the N most common unmapped values")
    args = parser.parse_args()

    counts = {role: collections.Counter() for role in ("frequency", "department")}
    unmapped = {role: collections.Counter() for role in ("frequency", "department")}
    per_kind = collections.Counter()
    with_value = {role: collections.Counter() for role in ("frequency", "department")}
    files = catalog_files(args.fixtures)
    for path, kind in files:
        items, _ = read_items(path, kind)
        portal = PortalConfig(key=f"coverage-{kind}", city_key="coverage", kind=kind, url="https://portal.example",
                              domain="portal.example")
        conn = make_connector(portal)
        for raw in items:
            rec = conn.normalize(raw)
            per_kind[kind] += 1
            with_value["frequency"][kind] += rec.declared_frequency is not None
            with_value["department"][kind] += rec.department is not None
            if rec.declared_frequency_raw:
                ok = rec.declared_frequency is not None
                counts["frequency"][(kind, ok)] += 1
                if not ok:
                    unmapped["frequency"][rec.declared_frequency_raw] += 1
            dept_raw = raw_department(kind, portal, raw)
            if dept_raw:
                ok = vocab.department(dept_raw) is not None
                counts["department"][(kind, ok)] += 1
                if not ok:
                    unmapped["department"][dept_raw] += 1

    print(f"fixtures: {args.fixtures} ({len(files)} files, {sum(per_kind.values())} unique items: "
          + ", ".join(f"{k} {n}" for k, n in sorted(per_kind.items())) + ")")
    for role in ("frequency", "department"):
        c = counts[role]
        total = sum(c.values())
        mapped = sum(n for (_, ok), n in c.items() if ok)
        share = 100.0 * mapped / total if total else float("nan")
        print(f"\n{role}: {mapped} of {total} non-empty raw values map ({share:.1f}%)")
        for kind in ("socrata", "ckan", "dcat"):
            t = c[(kind, True)] + c[(kind, False)]
            if t:
                print(f"  {kind:8s} {c[(kind, True)]:6d} / {t:6d} ({100.0 * c[(kind, True)] / t:.1f}%)")
        having = sum(with_value[role].values())
        print(f"  datasets with a normalized {role}: {having} of {sum(per_kind.values())} "
              f"({100.0 * having / max(1, sum(per_kind.values())):.1f}%)")
        if unmapped[role] and args.unmapped:
            common = unmapped[role].most_common(args.unmapped)
            print("  most common unmapped: " + "; ".join(f"{v!r} x{n}" for v, n in common))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
