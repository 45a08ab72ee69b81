"""`maturity` — the command line: harvest, import, score, inspect, serve.

Every command loads the config once (`--config` or MATURITY_CONFIG), opens storage from its URL and calls
`pipeline` (or the runtime modules). Tables go to stdout as CSV or JSON so analysts can pipe them; messages
and progress bars go to stderr.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from maturity import csv_writer
from maturity import settings as settings_mod
from maturity.settings import CityConfig, PortalConfig, Settings

if TYPE_CHECKING:  # for annotations only: the commands import these when they run
    import pandas as pd
    from sqlalchemy.engine import Engine
    from tqdm import tqdm

    import storage

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_NO_DATABASE = 3  # the database cannot be reached (down, wrong URL, unwritable SQLite path): try again later


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        cfg = settings_mod.load(args.config)
    except settings_mod.ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.run(cfg, args) or EXIT_OK
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        reason = _database_unreachable(exc)
        if reason is None:
            raise
        print(f"error: cannot reach the database {_safe_url(cfg.storage_url)}: {reason}", file=sys.stderr)
        return EXIT_NO_DATABASE


def _database_unreachable(exc: BaseException) -> str | None:
    """The driver's first line when `exc` is a failure to connect to (or open) the database, here or in a
    harvest's worker process; None otherwise."""
    import storage
    from maturity.harvesters import HarvestCrashed

    if isinstance(exc, DatabaseUnreachable):
        return str(exc)
    if isinstance(exc, HarvestCrashed):
        return exc.database
    return storage.unreachable_reason(exc)


class UsageError(Exception):
    """A wrong argument (unknown city, bad date): reported in one line, exit status 2."""


# --- commands -------------------------------------------------------------------------------------------

def cmd_db_upgrade(cfg: Settings, args: argparse.Namespace) -> int:
    import storage

    storage.upgrade(cfg.storage_url)
    print(f"database at head: {_safe_url(cfg.storage_url)}", file=sys.stderr)
    return EXIT_OK


def cmd_harvest(cfg: Settings, args: argparse.Namespace) -> int:
    import storage
    from maturity import pipeline, scheduler

    engine = _engine(cfg)
    portals = _city(cfg, args.city).portals if args.city else cfg.portals
    bars = _Bars(args.quiet)
    # Runs left "running" by a harvest that is gone (kill -9, power) are closed as interrupted first.
    for run_id in storage.close_orphaned_runs(engine):
        bars.write(f"closed run {run_id}: interrupted (its process is gone)")
    # The scheduler's per-portal leases: a portal a `maturity worker` (or `serve`) is harvesting right now is
    # skipped, not harvested twice at once; ours are renewed while we run and released at the end (a lease of a
    # process that died lapses: at once on this machine, after storage.LEASE_TTL_S elsewhere).
    owner = storage.process_owner("cli")
    mine = [p for p in portals if storage.take_portal(engine, p.key, owner)]
    for p in portals:
        if p not in mine:
            bars.write(f"SKIPPED {p.key}: another process is harvesting it (lock {storage.portal_lease(p.key)})")

    def done(summary: storage.RunSummary) -> None:
        bars.close(summary.portal_key)
        if summary.status == "failed":
            bars.write(f"FAILED {summary.portal_key}: {summary.error}")
        else:
            bars.write(f"{summary.portal_key}: {summary.items} datasets, {summary.new_versions} new versions, "
                       f"{summary.repeats} repeats{_short_crawl(summary)}")

    try:
        # SIGTERM stops a harvest like Ctrl-C: the runs in flight are closed as interrupted, then we exit.
        with scheduler.interrupt_on_sigterm():
            summaries = pipeline.harvest_many(cfg, engine, mine, jobs=args.jobs or pipeline.HARVEST_JOBS,
                                              threads=args.threads or pipeline.HARVEST_THREADS,
                                              per_host=args.per_host or pipeline.PER_HOST,
                                              progress=bars.update, done=done)
    except BaseException:
        _drop_leases(engine, mine, owner, quietly=True)  # not to hide why the harvest stopped
        raise
    _drop_leases(engine, mine, owner)
    if not args.no_score:
        for city_key in sorted({p.city_key for p in mine}):
            pipeline.score(cfg, engine, city_key)  # the latest catalog: its records kept for the next scoring
    return EXIT_FAILED if any(s.status == "failed" for s in summaries) else EXIT_OK


def _drop_leases(engine: Engine, portals: Sequence[PortalConfig], owner: str, *, quietly: bool = False) -> None:
    """Release the harvest's portal leases; `quietly`: a database that cannot be reached leaves them to expire."""
    import storage

    for p in portals:
        try:
            storage.drop_lease(engine, storage.portal_lease(p.key), owner)
        except Exception as exc:
            if not quietly or storage.unreachable_reason(exc) is None:
                raise
            return


def cmd_import(cfg: Settings, args: argparse.Namespace) -> int:
    from maturity import pipeline

    engine = _engine(cfg)
    city = _city(cfg, args.city)
    as_of = _as_of(args.as_of)  # a date alone: the end of that day, so that day's updates are not in the future
    from maturity import scheduler

    try:
        with scheduler.interrupt_on_sigterm():  # SIGTERM like Ctrl-C: the run in progress is closed as interrupted
            summaries = pipeline.import_files(cfg, engine, city.key, as_of, args.files, portal_key=args.portal)
    except pipeline.ImportFailed as exc:
        print(f"FAILED import: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for s in summaries:
        print(f"{s.portal_key} as of {as_of.date()}: {s.items} datasets, {s.new_versions} new versions, "
              f"{s.repeats} repeats{_short_crawl(s)}", file=sys.stderr)
    return EXIT_OK


def cmd_datasets(cfg: Settings, args: argparse.Namespace) -> int:
    import storage
    from connectors.base import RECORD_FIELDS

    engine = _engine(cfg)
    city = _city(cfg, args.city)
    as_of = _as_of(args.as_of) if args.as_of else None
    harvest = storage.city_harvest(engine, city.key, as_of=as_of)
    # Only about the runs shown: each portal's newest crawl at as_of (a later or earlier short crawl is not news).
    for r in storage.latest_crawls(engine, city.key, as_of=as_of).itertuples():
        run = f"{r.portal_key} run #{r.run_id} of {r.as_of:%Y-%m-%d %H:%M} UTC"
        if r.status == "suspect":
            print(f"note: {run} is a PARTIAL crawl, SUSPECT ({r.suspect_reason}); datasets missing from it are not "
                  "deletions", file=sys.stderr)
        elif r.status == "empty":
            print(f"note: {run} came back EMPTY ({r.suspect_reason}); its last crawl before that is shown",
                  file=sys.stderr)
    _write_table(harvest.frame[list(RECORD_FIELDS)], args.format)
    return EXIT_OK


def cmd_score(cfg: Settings, args: argparse.Namespace) -> int:
    from maturity import pipeline

    engine = _engine(cfg)
    cities = [_city(cfg, args.city)] if args.city else list(cfg.cities)
    if args.all:  # every city's history, several cities at once (each city's dates in order, in one worker)
        for key, n in pipeline.score_all_many(cfg, engine, [c.key for c in cities]).items():
            print(f"{key}: rescored {n} run dates", file=sys.stderr)
        return EXIT_OK
    for city in cities:
        # The command owns its process (no other threads): a large catalog is read on every core (storage._decode),
        # its records taken from the catalog snapshot where it has them (storage/snapshots.py).
        scores = pipeline.score(cfg, engine, city.key, jobs=pipeline.SCORE_JOBS)
        print(f"{city.key}: {len(scores)} indicators" if scores else f"{city.key}: nothing harvested yet",
              file=sys.stderr)
    return EXIT_OK


def cmd_scores(cfg: Settings, args: argparse.Namespace) -> int:
    import storage

    # Scores of partial or empty crawls only on request (--flagged), with their `flag`: they are not the city's state.
    frame = storage.scores(_engine(cfg), _city(cfg, args.city).key, flagged=args.flagged)
    _write_table(frame, args.format)
    return EXIT_OK


def cmd_explain(cfg: Settings, args: argparse.Namespace) -> int:
    import storage
    from indicators.registry import BY_KEY

    if args.indicator not in BY_KEY:  # before: "no failing datasets recorded" and exit 0, as if all passed
        raise UsageError(f"unknown indicator {args.indicator!r}; valid keys: {', '.join(BY_KEY)}")
    frame = storage.explain(_engine(cfg), _city(cfg, args.city).key, args.indicator)
    if frame.empty:
        print(f"{args.indicator}: no failing datasets recorded for {args.city}", file=sys.stderr)
    _write_table(frame, args.format)
    return EXIT_OK


def cmd_status(cfg: Settings, args: argparse.Namespace) -> int:
    from maturity import scheduler

    _engine(cfg)
    _write_table(scheduler.status(cfg), args.format)
    return EXIT_OK


def cmd_serve(cfg: Settings, args: argparse.Namespace) -> int:
    from maturity import scheduler

    scheduler.configure_logging()
    _engine(cfg)
    scheduler.serve(cfg, host=args.host or cfg.web.host, port=args.port or cfg.web.port)
    return EXIT_OK


def cmd_worker(cfg: Settings, args: argparse.Namespace) -> int:
    from maturity import scheduler

    scheduler.configure_logging()
    _engine(cfg)
    scheduler.work(cfg, sweep_every_s=args.sweep_every or scheduler.SWEEP_EVERY_S,
                   threads=args.threads or scheduler.HARVEST_WORKERS)
    return EXIT_OK


def cmd_export(cfg: Settings, args: argparse.Namespace) -> int:
    from maturity import exports, scheduler

    engine = _engine(cfg)
    city_key = _city(cfg, args.city).key if args.city else None
    formats = (args.format,) if args.format else ("html", "csv", "json")
    out_dir = Path(args.out) if args.out else scheduler.export_directory(cfg)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: is a file; give a directory (dated folders are written inside it)")
    try:
        paths = exports.export(cfg, engine, city_key=city_key, out_dir=out_dir, formats=formats)
    except OSError as exc:  # a parent that is a file, no permission, disk full
        print(f"error: cannot write the export under {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    for path in paths:
        print(path)
    return EXIT_OK


def cmd_demo(cfg: Settings, args: argparse.Namespace) -> int:
    from maturity import demo

    loaded = demo.load(cfg, _engine(cfg), force=args.force)
    print("demo history loaded and scored" if loaded else "database already has runs; use --force to add the demo",
          file=sys.stderr)
    return EXIT_OK


# --- plumbing -------------------------------------------------------------------------------------------

def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number above 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maturity", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="config file (default: $MATURITY_CONFIG or ./config.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log state changes to stderr")
    sub = p.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or migrate the schema").set_defaults(run=cmd_db_upgrade)

    c = sub.add_parser("harvest", help="harvest every portal (or one city's) and score")
    c.add_argument("--city")
    c.add_argument("--no-score", action="store_true", help="store the runs without scoring")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    c.add_argument("--jobs", type=_positive_int,
                   help="worker processes, for the parsing (default: one per core, 2 to 8; 1: in this process)")
    c.add_argument("--threads", type=_positive_int,
                   help="portals each worker harvests at once, so network waits overlap (default: 16; two "
                        "until a portal keeps a worker waiting 20 ms)")
    c.add_argument("--per-host", type=_positive_int,
                   help="requests at once to one host, for portals sharing a host (default: 1, polite)")
    c.set_defaults(run=cmd_harvest)

    c = sub.add_parser("import", help="backfill history from archived catalog files (plain or .gz)")
    c.add_argument("--city", required=True)
    c.add_argument("--as-of", required=True, help="the snapshot's date, YYYY-MM-DD or ISO time")
    c.add_argument("--portal", help="portal key, when the city has several")
    c.add_argument("files", nargs="+")
    c.set_defaults(run=cmd_import)

    c = sub.add_parser("datasets", help="the normalized catalog, one row per dataset")
    c.add_argument("--city", required=True)
    c.add_argument("--as-of")
    _format(c)
    c.set_defaults(run=cmd_datasets)

    c = sub.add_parser("score", help="score the latest run of every city (or --all history)")
    c.add_argument("--city")
    c.add_argument("--all", action="store_true", help="recompute every stored run date")
    c.set_defaults(run=cmd_score)

    c = sub.add_parser("scores", help="stored scores of a city, every run")
    c.add_argument("--city", required=True)
    c.add_argument("--flagged", action="store_true",
                   help="also the scores of partial or empty crawls (column flag), which are never the city's state")
    _format(c)
    c.set_defaults(run=cmd_scores)

    c = sub.add_parser("explain", help="the datasets failing an indicator, with reasons")
    c.add_argument("--city", required=True)
    c.add_argument("--indicator", required=True)
    _format(c)
    c.set_defaults(run=cmd_explain)

    c = sub.add_parser("serve", help="dashboard + scheduler in one process (embedded default)")
    c.add_argument("--host")
    c.add_argument("--port", type=int)
    c.set_defaults(run=cmd_serve)

    c = sub.add_parser("worker", help="the scheduler alone (PostgreSQL + gunicorn maturity.app:server); run several "
                       "to share the portals")
    c.add_argument("--sweep-every", type=_positive_float, metavar="SECONDS",
                   help="look for due portals nobody harvested this often, and at start (default: 60)")
    c.add_argument("--threads", type=_positive_int,
                   help="portals this worker harvests at once when it finds them due (default: 8)")
    c.set_defaults(run=cmd_worker)

    c = sub.add_parser("status", help="per portal: last run, next run, last error")
    _format(c)
    c.set_defaults(run=cmd_status)

    c = sub.add_parser(
        "export", help="write dated snapshot files (html report, csv, json evidence packet)",
        description="Write the latest scores as dated files a CDO can file or share: "
                    "<out>/<YYYY-MM-DD>/<city key | all>/ holding scores.csv (scores and stages per criterion and "
                    "indicator), datasets.csv (the catalog behind them), evidence.json (the WWC evidence packet) and "
                    "report.html (one self-contained page with the charts; opens offline). Columns: docs/exports.md.")
    c.add_argument("--city", metavar="KEY",
                   help="only this city (its key in config.toml, e.g. chicago); default: every city, one folder "
                        "each, plus all/ with every city together")
    c.add_argument("--out", metavar="DIR", help="where the dated folders go (default: [export] directory in "
                                                "config.toml, data/exports)")
    c.add_argument("--format", choices=("html", "csv", "json"),
                   help="only this kind of file: html = report.html, csv = scores.csv + datasets.csv, "
                        "json = evidence.json (default: all three)")
    c.set_defaults(run=cmd_export)

    c = sub.add_parser("demo", help="load the bundled recorded history (offline demo) and score it")
    c.add_argument("--force", action="store_true")
    c.set_defaults(run=cmd_demo)
    return p


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=("csv", "json"), default="csv")


def _engine(cfg: Settings) -> storage.Engine:
    """Open the database, creating or migrating the schema first, so every command works on a fresh machine."""
    import storage

    try:
        storage.upgrade(cfg.storage_url)
        engine = storage.open_db(cfg.storage_url)
        storage.sync_config(engine, cfg)
    except OSError as exc:  # a SQLite folder that cannot be created
        raise DatabaseUnreachable(f"{exc.strerror or exc}: {exc.filename}") from exc
    return engine


class DatabaseUnreachable(Exception):
    """The database cannot be opened: one line, exit status EXIT_NO_DATABASE."""


def _city(cfg: Settings, key: str) -> CityConfig:
    try:
        return cfg.city(key)
    except settings_mod.ConfigError as exc:
        raise UsageError(str(exc)) from None


def _short_crawl(summary: storage.RunSummary) -> str:
    """What a run summary line adds for a crawl that is not the portal's catalog (storage/crawls.py)."""
    if summary.status == "suspect":
        return f" (SUSPECT, partial crawl: {summary.suspect_reason})"
    if summary.status == "empty":
        return f" (EMPTY: {summary.suspect_reason})"
    return ""


def _as_of(text: str) -> datetime:
    """A date alone means the end of that day (23:59:59 UTC): an import of that day's snapshot is dated then
    (pipeline.end_of_day), and as a query bound `datasets --as-of 2022-06-08` includes a run stamped any time
    that day."""
    try:
        if len(text) == 10:
            from maturity.pipeline import end_of_day

            return end_of_day(date.fromisoformat(text))
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of {text!r}: expected YYYY-MM-DD or an ISO date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _write_table(frame: pd.DataFrame, fmt: str) -> None:
    if fmt == "json":
        # Tuples (keywords, formats, columns) stay lists in JSON.
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", force_ascii=False, default_handler=str))
        sys.stdout.write("\n")
    else:
        csv_writer.write_csv(frame, sys.stdout)  # the one writer, with the spreadsheet-formula guard


class _Bars:
    """A tqdm progress bar per portal on stderr while it is harvested, fed by the connector after each page
    (from the worker processes too); result lines are written above the bars."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.open: dict[str, tqdm] = {}  # portal key -> its bar

    def update(self, key: str, n_items: int, total: int | None) -> None:
        from tqdm import tqdm

        bar = self.open.get(key)
        if bar is None:
            bar = self.open[key] = tqdm(desc=key, unit=" datasets", file=sys.stderr, disable=self.quiet,
                                        leave=False)
        if total and bar.total != total:
            bar.total = total
        bar.update(n_items - bar.n)

    def close(self, key: str) -> None:
        bar = self.open.pop(key, None)
        if bar is not None:
            bar.close()

    def write(self, line: str) -> None:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)


def _safe_url(url: str) -> str:
    """Never print a database password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


if __name__ == "__main__":
    sys.exit(main())
