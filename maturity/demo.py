"""The offline demo: bundled real recorded catalogs imported through the real pipeline into an empty database.

`maturity/demo_data/manifest.toml` lists the snapshots (city, portal, date, file, sha256); `demo_data/PROVENANCE.md`
says where each file comes from. Loading runs `pipeline.import_files` per snapshot in date order (so the
change-only history and the suspect-run rule work exactly as on live harvests), then `pipeline.score_all`
per city, so every run date has scores for the over-time charts.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import storage
from maturity.settings import ConfigError, Settings

log = logging.getLogger("maturity.demo")

MANIFEST = "manifest.toml"
DEMO_DIR_ENV = "MATURITY_DEMO_DIR"  # for an installed (non-editable) package, where data/ is not beside demo.py


@dataclass(frozen=True)
class Snapshot:
    city_key: str
    portal_key: str
    as_of: datetime
    path: Path
    sha256: str | None


class DemoError(RuntimeError):
    """The bundle is missing or damaged (a file absent, a checksum mismatch, a malformed manifest)."""


def bundle_dir(settings: Settings | None = None) -> Path:
    """Where the bundle is: $MATURITY_DEMO_DIR, else demo_data beside this module, else beside the config."""
    candidates = []
    if os.environ.get(DEMO_DIR_ENV):
        candidates.append(Path(os.environ[DEMO_DIR_ENV]))
    candidates.append(Path(__file__).resolve().parent / "demo_data")  # package data, also in the wheel
    if settings is not None:
        candidates.append(settings.path.resolve().parent / "data" / "demo")
    for c in candidates:
        if (c / MANIFEST).is_file():
            return c
    raise DemoError(f"no demo bundle ({MANIFEST}) in: {', '.join(map(str, candidates))}")


def manifest(directory: Path) -> list[Snapshot]:
    """The manifest's snapshots, sorted by portal then date (the order history must be imported in)."""
    try:
        raw = tomllib.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DemoError(f"{directory / MANIFEST}: {exc}") from None
    out = []
    for i, s in enumerate(raw.get("snapshots", [])):
        try:
            as_of = s["as_of"]
            if not isinstance(as_of, date):
                raise TypeError("as_of must be a TOML date (or date-time)")
            if not isinstance(as_of, datetime):  # a day: dated at its end, as `maturity import` does
                from maturity.pipeline import end_of_day

                as_of = end_of_day(as_of)
            out.append(Snapshot(city_key=s["city_key"], portal_key=s["portal_key"],
                                as_of=as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC),
                                path=directory / s["file"], sha256=s.get("sha256")))
        except (KeyError, TypeError) as exc:
            raise DemoError(f"{directory / MANIFEST}: snapshots[{i}]: {exc}") from None
    return sorted(out, key=lambda s: (s.portal_key, s.as_of))


def load(settings: Settings, engine: storage.Engine, *, force: bool = False, directory: Path | None = None) -> bool:
    """Import and score the bundled history when the database has no runs yet (or `force`); True if loaded.

    Snapshots of portals that the loaded config does not have are skipped (a trimmed config still works).
    """
    from maturity import pipeline

    if not force and not storage.runs(engine, limit=1).empty:
        return False
    directory = directory or bundle_dir(settings)
    snapshots = manifest(directory)
    known = {p.key for p in settings.portals}
    cities: list[str] = []
    for snap in snapshots:
        if snap.portal_key not in known:
            log.info("event=demo-skip portal=%s reason=not-in-config", snap.portal_key)
            continue
        _check(snap)
        try:
            settings.city(snap.city_key)
        except ConfigError:
            log.info("event=demo-skip city=%s reason=not-in-config", snap.city_key)
            continue
        for s in pipeline.import_files(settings, engine, snap.city_key, snap.as_of, [snap.path],
                                       portal_key=snap.portal_key):
            log.info("event=demo-imported portal=%s as_of=%s items=%s status=%s", s.portal_key,
                     snap.as_of.date(), s.items, s.status)
        if snap.city_key not in cities:
            cities.append(snap.city_key)
    for city_key in cities:
        n = pipeline.score_all(settings, engine, city_key)
        log.info("event=demo-scored city=%s run_dates=%d", city_key, n)
    return bool(cities)


def _check(snap: Snapshot) -> None:
    if not snap.path.is_file():
        raise DemoError(f"demo file missing: {snap.path}")
    if snap.sha256 and hashlib.sha256(snap.path.read_bytes()).hexdigest() != snap.sha256:
        raise DemoError(f"demo file damaged (sha256 mismatch): {snap.path}")
