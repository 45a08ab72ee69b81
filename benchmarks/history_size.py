"""Database bytes of the stored history against its gzip'd source (issue 13, target 3). Not a test: numbers for
the README.

    .venv/bin/python benchmarks/history_size.py history            # the 10 recorded cities' 8 weeks
    .venv/bin/python benchmarks/history_size.py demo               # what `maturity demo` loads
    .venv/bin/python benchmarks/history_size.py scale --n 30000    # one large portal, harvested twice
    flock /work/bench.lock .venv/bin/python benchmarks/history_size.py scale --n 300000
    ... --url postgresql+psycopg://postgres@127.0.0.1:5432/compact_bench   # PostgreSQL (an empty database)

- history: every weekly snapshot of ../shared/fixtures/socrata_scrape_2022/history (10 cities, 77 files) imported
  with `pipeline.import_files` (date order per city), then every date scored with `pipeline.score_all`.
  Source: the snapshot files as recorded (gzip).
- demo: `maturity.demo.load` with the shipped config.toml (its manifest's snapshots, scored). Source: those files.
- scale: `benchmarks/scale_portal.py`'s portal of N real records harvested through `pipeline.harvest`, scored
  with `pipeline.score`, then harvested again unchanged and scored again. Source: the served page bodies, each
  gzip'd (level 6). Reports the bytes after one harvest + scoring and what the unchanged run and its scoring
  added, then the same for a third run a week later (the second scoring starts the history indicators' lists:
  the third is the steady state, which should not grow with N).

Bytes: SQLite, the database file after a checkpoint, and per table its pages (indexes counted with their
table, from `dbstat`); PostgreSQL, `pg_total_relation_size` per table and `pg_database_size`.
"""
from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The project root first; benchmarks/ last (its storage.py must not shadow the package; scale_portal is imported
# from it, also by the portal's spawned child, which runs this module-level code again).
sys.path[:] = ([str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
               + [str(ROOT / "benchmarks")])
# ../shared beside the project (a checkout) or beside its work-tree folder (a git worktree under wt/)
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parents[1] / "shared") if p.is_dir()), ROOT.parent / "shared")
HISTORY = SHARED / "fixtures" / "socrata_scrape_2022" / "history"


def table_bytes(engine: Any) -> tuple[dict[str, int], int]:
    """({table: bytes incl. its indexes}, database bytes)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            owner = dict(conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master").all())
            sizes: dict[str, int] = {}
            for name, size in conn.exec_driver_sql("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").all():
                table = owner.get(name, name)
                sizes[table] = sizes.get(table, 0) + int(size)
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
            total = pages * (conn.exec_driver_sql("PRAGMA page_size").scalar() or 0)
        else:
            rows = conn.execute(sa.text("SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN "
                                        "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                                        "AND c.relkind = 'r'")).all()
            sizes = {str(r[0]): int(r[1]) for r in rows}
            total = int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar() or 0)
    return {k: v for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]) if v}, total


def report(title: str, engine: Any, source_bytes: int, extra: str = "") -> tuple[dict[str, int], int]:
    sizes, total = table_bytes(engine)
    print(f"\n{title}")
    for name, size in sizes.items():
        print(f"  {name:24s} {size / 1e6:10.2f} MB")
    tables = sum(sizes.values())
    print(f"  database {total / 1e6:.2f} MB (its tables {tables / 1e6:.2f} MB); gzip'd source "
          f"{source_bytes / 1e6:.2f} MB; ratio {total / source_bytes:.2f} (tables {tables / source_bytes:.2f}){extra}")
    return sizes, total


def _engine(url: str | None, prefix: str) -> tuple[str, Any]:
    import storage

    url = url or f"sqlite:///{tempfile.mkdtemp(prefix=f'compact-{prefix}-')}/bench.db"
    storage.upgrade(url)
    return url, storage.open_db(url)


def history(args: argparse.Namespace) -> None:
    from maturity import pipeline
    from maturity.settings import CityConfig, PortalConfig, Settings

    folders = sorted(p for p in (args.history or HISTORY).iterdir() if p.is_dir())
    # keys as a config names them ("chicago", "chicago-socrata"), not the domain: they are in every row and index
    keys = {f.name: f.name.split(".")[1].removeprefix("cityof").removesuffix("-oh").removesuffix("tn")
            for f in folders}
    cities = tuple(CityConfig(key=keys[f.name], name=f.name, portals=(PortalConfig(
        key=f"{keys[f.name]}-socrata", city_key=keys[f.name], kind="socrata", url=f"https://{f.name}",
        domain=f.name),)) for f in folders)
    url, engine = _engine(args.url, "history")
    settings = Settings(path=Path("bench.toml"), storage_url=url, cities=cities)
    source = 0
    t = time.perf_counter()
    for f in folders:
        for snap in sorted(f.glob("*.jsonl.gz")):
            source += snap.stat().st_size
            pipeline.import_files(settings, engine, keys[f.name], date.fromisoformat(snap.name[:10]), [snap])
    t_import = time.perf_counter() - t
    for f in folders:
        pipeline.score_all(settings, engine, keys[f.name])
    print(f"imported {sum(1 for f in folders for _ in f.glob('*.jsonl.gz'))} snapshots in {t_import:.1f} s, "
          f"scored in {time.perf_counter() - t - t_import:.1f} s")
    report("10-city 8-week history", engine, source)


def demo(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from maturity import demo as demo_data
    from maturity import settings as settings_mod

    url, engine = _engine(args.url, "demo")
    settings = replace(settings_mod.load(ROOT / "config.toml", environ={}), storage_url=url)
    import storage

    storage.sync_config(engine, settings)
    t = time.perf_counter()
    demo_data.load(settings, engine)
    source = sum(s.path.stat().st_size for s in demo_data.manifest(demo_data.bundle_dir(settings)))
    print(f"demo loaded and scored in {time.perf_counter() - t:.1f} s")
    report("demo history", engine, source)


def scale(args: argparse.Namespace) -> None:
    from scale_portal import ScalePortal

    from maturity import pipeline
    from maturity.settings import CityConfig, Settings

    url, engine = _engine(args.url, f"scale{args.n}")
    with ScalePortal(args.kind, args.n) as portal:
        cfg = portal.config()
        settings = Settings(path=Path("bench.toml"), storage_url=url,
                            cities=(CityConfig(key=cfg.city_key, name="Scale", portals=(cfg,)),))
        source = sum(len(gzip.compress(b, 6)) for b in portal.page_bodies())
        first = datetime(2026, 11, 2, 4, tzinfo=UTC)
        steps = []
        for k in range(3):  # the third run shows the steady state: the second starts the history indicators
            t = time.perf_counter()
            summary = pipeline.harvest(settings, engine, cfg, now=first + timedelta(days=7 * k))
            t_harvest = time.perf_counter() - t
            after_run = table_bytes(engine)
            pipeline.score(settings, engine, cfg.city_key, as_of=first + timedelta(days=7 * k))
            steps.append((summary, t_harvest, after_run, table_bytes(engine)))
    (s1, t1, _, (sizes1, total1)), (s2, t2, (run_sizes, _), (sizes2, total2)), (s3, _, (run3, _), (sizes3, total3)) \
        = steps
    print(f"{args.kind} portal of {args.n:,}: first harvest {s1.status} {s1.items:,} items, {s1.new_versions:,} "
          f"versions in {t1:.1f} s; unchanged {s2.status}, {s2.new_versions} versions in {t2:.1f} s")
    version_bytes = sizes1.get("dataset_versions", 0) + sizes1.get("raw_blocks", 0)
    print(f"\nafter one harvest + scoring ({args.n:,} datasets)")
    for name, size in sizes1.items():
        print(f"  {name:24s} {size / 1e6:10.2f} MB")
    print(f"  database {total1 / 1e6:.2f} MB; gzip'd catalog {source / 1e6:.2f} MB; ratio {total1 / source:.2f}; "
          f"{version_bytes / max(1, s1.new_versions):,.0f} bytes a version (dataset_versions with its indexes "
          f"{sizes1.get('dataset_versions', 0) / max(1, s1.new_versions):,.0f}, raw_blocks "
          f"{sizes1.get('raw_blocks', 0) / max(1, s1.new_versions):,.0f})")
    added = {k: sizes2.get(k, 0) - sizes1.get(k, 0) for k in sizes2 if sizes2.get(k, 0) != sizes1.get(k, 0)}
    by_run = {k: run_sizes.get(k, 0) - sizes1.get(k, 0) for k in run_sizes if run_sizes.get(k, 0) != sizes1.get(k, 0)}
    print(f"unchanged run + scoring added {(total2 - total1) / 1e3:,.1f} kB to the database "
          f"(pages per table: {added}; the run alone: {by_run})")
    added3 = {k: sizes3.get(k, 0) - sizes2.get(k, 0) for k in sizes3 if sizes3.get(k, 0) != sizes2.get(k, 0)}
    print(f"a third run a week later (unchanged, {s3.new_versions} versions) + scoring added "
          f"{(total3 - total2) / 1e3:,.1f} kB (pages per table: {added3})")
    print("payload bytes of the third run and scoring:", payload_bytes(engine))


def payload_bytes(engine: Any) -> dict[str, Any]:
    """Bytes of the newest run's members blob, the newest scoring's evidence blobs (what page counts round) and
    the evidence bases that scoring wrote (bytes per indicator)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        members = conn.execute(sa.text("SELECT length(members) FROM harvest_runs ORDER BY id DESC LIMIT 1")).scalar()
        evidence = conn.execute(sa.text("SELECT SUM(length(failing)) FROM scores WHERE as_of = "
                                        "(SELECT MAX(as_of) FROM scores)")).scalar()
        rows = conn.execute(sa.text("SELECT COUNT(*) FROM scores WHERE as_of = "
                                    "(SELECT MAX(as_of) FROM scores)")).scalar()
        # evidence lists the newest scoring stored in full (a new base) rather than as changes: an unchanged
        # catalog should need none unless a list changed by more than half
        bases = conn.execute(sa.text(
            "SELECT indicator, length(evidence) FROM evidence_bases WHERE id IN (SELECT evidence_base FROM scores "
            "WHERE as_of = (SELECT MAX(as_of) FROM scores)) AND id NOT IN (SELECT evidence_base FROM scores WHERE "
            "as_of < (SELECT MAX(as_of) FROM scores) AND evidence_base IS NOT NULL)")).all()
    return {"members": int(members or 0), "evidence": int(evidence or 0), "score_rows": int(rows or 0),
            "new_bases": {str(k): int(n) for k, n in bases}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("history", "demo", "scale"))
    ap.add_argument("--url", help="database URL (default: a fresh SQLite file under /tmp)")
    ap.add_argument("--kind", default="socrata", choices=("socrata", "ckan"))
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--history", type=Path, help=f"history: the folder of per-domain snapshot folders ({HISTORY})")
    args = ap.parse_args(argv)
    {"history": history, "demo": demo, "scale": scale}[args.what](args)


if __name__ == "__main__":
    main()
