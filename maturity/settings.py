"""config.toml → frozen dataclasses, validated once at start.

Errors name the file, the key and what is wrong (`ConfigError`). Secrets are never written in the file:
a value `{ env = "NAME" }` is read from the environment (`resolve_secret`).
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Relative to the working directory, as `--help` says: an installed copy has no config beside its code.
DEFAULT_CONFIG = Path("config.toml")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
CRON_FIELDS = 5
# Cron numbers days Sunday=0 (and 7); APScheduler 3 numbers them Monday=0 (its documented "historical
# mistake", issue 286), so `from_crontab("30 5 * * 1")` would fire on Tuesdays and rejects 7. Validation and
# the scheduler both read a line through `cron_fields`, which turns the weekday field into day names.
CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


class ConfigError(ValueError):
    """A bad config value, reported with its location: `config.toml: cities[2].portals[0].kind: …`."""


@dataclass(frozen=True)
class Secret:
    """A reference to an environment variable; the value itself never sits in config."""

    env: str

    def value(self, environ: Mapping[str, str] | None = None) -> str | None:
        return (os.environ if environ is None else environ).get(self.env) or None


@dataclass(frozen=True)
class PortalConfig:
    key: str  # unique across the config: "<city>-<kind>" unless given
    city_key: str
    kind: str
    url: str
    domain: str | None = None
    catalog_url: str | None = None
    schedule: str = "0 4 * * *"
    app_token: Secret | None = None
    # Per-portal quirks as data: which custom field holds what, and extra free-text frequency spellings.
    frequency_fields: tuple[str, ...] = ()
    department_fields: tuple[str, ...] = ()
    frequency_overrides: tuple[tuple[str, str], ...] = ()
    # Bounds of one HTTP request to this portal; None = connectors.http's defaults (64 MB, 180 s).
    max_response_bytes: int | None = None
    request_deadline_s: float | None = None


@dataclass(frozen=True)
class ManualEvidenceConfig:
    criterion: str
    url: str | None = None
    date: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CityConfig:
    key: str
    name: str
    portals: tuple[PortalConfig, ...]
    departments: tuple[str, ...] = ()  # the city's own department list, for DM2 department coverage
    evidence: tuple[ManualEvidenceConfig, ...] = ()


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8050
    admin_token: Secret = field(default_factory=lambda: Secret("MATURITY_ADMIN_TOKEN"))
    poll_seconds: int = 30


@dataclass(frozen=True)
class ExportConfig:
    schedule: str | None = "30 5 * * 1"  # Mondays 05:30 UTC
    directory: str = "data/exports"
    keep: int | None = None  # the scheduled export keeps this many newest dated snapshots; None = all


@dataclass(frozen=True)
class Settings:
    path: Path
    storage_url: str
    cities: tuple[CityConfig, ...]
    web: WebConfig = field(default_factory=WebConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    @property
    def portals(self) -> tuple[PortalConfig, ...]:
        return tuple(p for c in self.cities for p in c.portals)

    def city(self, key: str) -> CityConfig:
        for c in self.cities:
            if c.key == key:
                return c
        known = ", ".join(c.key for c in self.cities)
        raise ConfigError(f"{self.path}: no city with key {key!r} (known: {known})")

    def portal(self, key: str) -> PortalConfig:
        for p in self.portals:
            if p.key == key:
                return p
        raise ConfigError(f"{self.path}: no portal with key {key!r}")


def cron_fields(expr: str) -> dict[str, str]:
    """A standard 5-field crontab line as APScheduler `CronTrigger` keyword arguments (weekdays as names).

    Raises ValueError for a line that is not 5 fields or a weekday outside 0-7 / sun-sat; the other fields
    are checked when the trigger is built.
    """
    parts = expr.split()
    if len(parts) != CRON_FIELDS:
        raise ValueError(f"{expr!r} is not a 5-field cron expression (minute hour day month weekday)")
    minute, hour, day, month, dow = parts
    return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": cron_weekdays(dow)}


def cron_weekdays(field_: str) -> str:
    """A crontab day-of-week field (numbers Sunday=0/7, names, ranges, steps) as APScheduler day names."""
    if field_ == "*":
        return "*"
    days: set[int] = set()
    for part in field_.lower().split(","):
        span, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit():
            raise ValueError(f"day of week step {step_text!r} is not a number")
        step = int(step_text) if step_text else 1
        if span == "*":
            lo, hi = 0, 6
        elif "-" in span:
            a, b = span.split("-", 1)
            lo, hi = _day_number(a), _day_number(b)
            if hi == 0 and lo > 0:  # "5-7" / "fri-sun" runs through Sunday
                hi = 7
        else:
            lo = hi = _day_number(span)
        if step < 1 or lo > hi:
            raise ValueError(f"day of week {part!r} is an empty range")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return ",".join(CRON_DAYS[d] for d in sorted(days))


def _day_number(text: str) -> int:
    if text.isdigit():
        n = int(text)
        if not 0 <= n <= 7:
            raise ValueError(f"day of week {text!r} out of range 0-7")
        return n % 7
    for n, name in enumerate(_DAY_NAMES):
        if len(text) >= 3 and name.startswith(text):  # "mon", "mond" .. "monday"
            return n
    raise ValueError(f"day of week {text!r} is not 0-7 or a day name")


_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def config_path(explicit: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(explicit or env.get("MATURITY_CONFIG") or DEFAULT_CONFIG)


def load(path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config; `DATABASE_URL` in the environment overrides `[storage] url`."""
    env = os.environ if environ is None else environ
    p = config_path(path, env)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found (pass --config FILE or set MATURITY_CONFIG)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    try:
        tracked = _Tracked.wrap(raw)
        settings = parse(tracked, p, env)
        _reject_unread(tracked, p)
        return settings
    except ConfigError as e:
        raise ConfigError(_with_line(str(e), p, p.read_text(encoding="utf-8"))) from None


class _Tracked(dict):
    """A TOML table that remembers which keys the loader asked for, so a key nobody reads — a typo, a key from
    another version — is an error instead of being silently ignored. A table whose items are iterated is a
    free mapping (e.g. `frequency_overrides`): all its keys count as read."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.asked: set[str] = set()
        self.free = False

    @classmethod
    def wrap(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return cls({k: cls.wrap(v) for k, v in value.items()})
        if isinstance(value, list):
            return [cls.wrap(v) for v in value]
        return value

    def __getitem__(self, key: Any) -> Any:
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)

    def items(self) -> Any:
        self.free = True
        return super().items()

    def values(self) -> Any:
        self.free = True
        return super().values()

    def __iter__(self) -> Any:
        self.free = True
        return super().__iter__()


def _reject_unread(value: Any, path: Path, where: str = "") -> None:
    """ConfigError naming the first key the loader never read, with the nearest known key as a suggestion."""
    import difflib

    if isinstance(value, list):
        for i, v in enumerate(value):
            _reject_unread(v, path, f"{where}[{i}]")
        return
    if not isinstance(value, _Tracked) or value.free:
        return
    for key in dict.keys(value):
        here = f"{where}.{key}" if where else key
        if key not in value.asked:
            near = difflib.get_close_matches(key, sorted(value.asked), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f" (known here: {', '.join(sorted(value.asked))})"
            raise ConfigError(f"{path}: {here}: unknown key{hint}")
        _reject_unread(dict.__getitem__(value, key), path, here)


def _with_line(message: str, path: Path, text: str) -> str:
    """Turn `file: cities[1].portals[0].kind: …` into `file:23: cities[1]…` by finding the key's line.

    tomllib reports lines for syntax errors only; for a bad value we walk the table and array-of-tables headers.
    """
    prefix = f"{path}: "
    if not message.startswith(prefix):
        return message
    where = message[len(prefix):].split(": ", 1)[0]
    lines = text.splitlines()
    headers = [(n, ln.strip()) for n, ln in enumerate(lines) if ln.strip().startswith("[")]
    if re.fullmatch(r"\w+", where):  # a top-level key or [table]
        line = next((n for n, ln in enumerate(lines) if re.match(rf"\s*(\[{where}\]|{where}\s*=)", ln)), None)
        return message if line is None else f"{path}:{line + 1}: {message[len(prefix):]}"
    table = re.fullmatch(r"(storage|web|export)\.(\w+)", where)  # a key of a plain [table]
    if table:
        start = next((n for n, h in headers if h == f"[{table.group(1)}]"), None)
        if start is None:
            return message
        end = next((n for n, _ in headers if n > start), len(lines))
        return f"{path}:{_key_line(lines, start, end, table.group(2)) + 1}: {message[len(prefix):]}"
    m = re.fullmatch(r"cities\[(\d+)\](?:\.portals\[(\d+)\])?(?:\.(\w+))?.*", where)
    if not m:
        return message
    city_i, portal_i, leaf = int(m.group(1)), m.group(2), m.group(3)
    cities = [n for n, h in headers if h == "[[cities]]"]
    if city_i >= len(cities):
        return message
    start = cities[city_i]
    end = next((n for n in cities if n > start), len(lines))
    if portal_i is not None:
        portals = [n for n, h in headers if h == "[[cities.portals]]" and start < n < end]
        if int(portal_i) >= len(portals):
            return message
        start = portals[int(portal_i)]
        end = next((n for n, _ in headers if n > start), end)
    line = _key_line(lines, start, end, leaf) if leaf and leaf != "portals" else start
    return f"{path}:{line + 1}: {message[len(prefix):]}"


def _key_line(lines: list[str], start: int, end: int, key: str) -> int:
    """The line of `key = …` between a table's header (`start`) and the next header; the header if absent."""
    return next((n for n in range(start, end) if re.match(rf"\s*{key}\s*=", lines[n])), start)


def parse(raw: dict[str, Any], path: Path, environ: Mapping[str, str]) -> Settings:
    v = _Validator(path)
    storage = v.table(raw, "storage", "storage")
    # read (and checked) even when DATABASE_URL overrides it
    file_url = v.string(storage, "url", "storage.url", default="sqlite:///data/maturity.db")
    url = environ.get("DATABASE_URL") or file_url
    # A relative SQLite path is relative to the config file's folder, so `--config` works from anywhere.
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        url = "sqlite:///" + str((path.parent / url.removeprefix("sqlite:///")).resolve())

    cities_raw = raw.get("cities", [])
    if not isinstance(cities_raw, list) or not cities_raw:
        raise ConfigError(f"{path}: cities: expected at least one [[cities]] table")
    cities, seen_cities, seen_portals = [], set(), set()
    for i, c in enumerate(cities_raw):
        where = f"cities[{i}]"
        key = v.key(c, "key", f"{where}.key")
        if key in seen_cities:
            raise ConfigError(f"{path}: {where}.key: duplicate city key {key!r}")
        seen_cities.add(key)
        name = v.string(c, "name", f"{where}.name")
        portals = []
        for j, pr in enumerate(c.get("portals", [])):
            pw = f"{where}.portals[{j}]"
            portal = v.portal(pr, pw, key)
            if portal.key in seen_portals:
                raise ConfigError(f"{path}: {pw}.key: duplicate portal key {portal.key!r}; give one a `key`")
            seen_portals.add(portal.key)
            portals.append(portal)
        if not portals:
            raise ConfigError(f"{path}: {where}.portals: city {key!r} has no [[cities.portals]]")
        evidence = tuple(
            ManualEvidenceConfig(
                criterion=v.string(e, "criterion", f"{where}.evidence[{k}].criterion"),
                url=v.string(e, "url", f"{where}.evidence[{k}].url", default=None),
                date=v.date(e, "date", f"{where}.evidence[{k}].date"),
                note=v.string(e, "note", f"{where}.evidence[{k}].note", default=None),
            )
            for k, e in enumerate(c.get("evidence", []))
        )
        cities.append(CityConfig(key=key, name=name, portals=tuple(portals),
                                 departments=v.strings(c, "departments", f"{where}.departments"),
                                 evidence=evidence))

    web_raw = v.table(raw, "web", "web")
    web = WebConfig(
        host=v.string(web_raw, "host", "web.host", default="127.0.0.1"),
        port=v.integer(web_raw, "port", "web.port", default=8050),
        admin_token=v.secret(web_raw, "admin_token", "web.admin_token") or Secret("MATURITY_ADMIN_TOKEN"),
        poll_seconds=v.integer(web_raw, "poll_seconds", "web.poll_seconds", default=30),
    )
    ex = v.table(raw, "export", "export")
    schedule = v.string(ex, "schedule", "export.schedule", default="30 5 * * 1")
    if schedule:
        v.cron(schedule, "export.schedule")
    export = ExportConfig(schedule=schedule or None,
                          directory=v.string(ex, "directory", "export.directory", default="data/exports"),
                          keep=v.integer(ex, "keep", "export.keep", default=1) if "keep" in ex else None)
    return Settings(path=path, storage_url=url, cities=tuple(cities), web=web, export=export)


class _Validator:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {what}")

    def table(self, raw: dict, name: str, where: str) -> dict:
        t = raw.get(name, {})
        if not isinstance(t, dict):
            raise self.fail(where, "expected a table")
        return t

    def string(self, t: dict, name: str, where: str, default: Any = ...) -> Any:
        if name not in t:
            if default is ...:
                raise self.fail(where, "missing")
            return default
        val = t[name]
        if not isinstance(val, str) or not val.strip():
            raise self.fail(where, f"expected a non-empty string, got {val!r}")
        return val.strip()

    def strings(self, t: dict, name: str, where: str) -> tuple[str, ...]:
        val = t.get(name, [])
        if isinstance(val, str):
            val = [val]
        if not isinstance(val, list) or not all(isinstance(x, str) and x.strip() for x in val):
            raise self.fail(where, f"expected a list of strings, got {val!r}")
        return tuple(x.strip() for x in val)

    def integer(self, t: dict, name: str, where: str, default: int) -> int:
        val = t.get(name, default)
        if not isinstance(val, int) or isinstance(val, bool) or val <= 0:
            raise self.fail(where, f"expected a positive integer, got {val!r}")
        return val

    def key(self, t: dict, name: str, where: str) -> str:
        val = self.string(t, name, where)
        if not KEY_RE.match(val):
            raise self.fail(where, f"{val!r} is not a key (lower-case letters, digits, '-' and '_')")
        return val

    def date(self, t: dict, name: str, where: str) -> str | None:
        val = t.get(name)
        if val is None:
            return None
        return str(val)  # TOML dates arrive as datetime.date; keep ISO text

    def cron(self, expr: str, where: str) -> str:
        """Standard crontab meaning, read the way the scheduler reads it (`cron_fields`)."""
        try:
            fields = cron_fields(expr)
        except ValueError as e:
            message = str(e)
            raise self.fail(where, message if message.startswith(repr(expr)) else f"{expr!r}: {message}") from None
        try:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger(**fields, timezone="UTC")
        except ValueError as e:
            raise self.fail(where, f"{expr!r}: {e}") from None
        return expr

    def secret(self, t: dict, name: str, where: str) -> Secret | None:
        val = t.get(name)
        if val is None:
            return None
        if isinstance(val, dict) and set(val) == {"env"} and isinstance(val["env"], str):
            return Secret(val["env"])
        raise self.fail(where, 'secrets are read from the environment: write { env = "NAME" }, not the value')

    def url(self, t: dict, name: str, where: str, default: Any = ...) -> Any:
        val = self.string(t, name, where, default)
        if val is not None and not re.match(r"^https?://[^/\s]+", val):
            raise self.fail(where, f"{val!r} is not an http(s) URL")
        return val.rstrip("/") if isinstance(val, str) else val

    def portal(self, p: dict, where: str, city_key: str) -> PortalConfig:
        if not isinstance(p, dict):
            raise self.fail(where, "expected a table")
        from connectors import KINDS  # the one registry of portal kinds (imported when a portal is validated)

        kind = self.string(p, "kind", f"{where}.kind")
        if kind not in KINDS:
            raise self.fail(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        url = self.url(p, "url", f"{where}.url")
        # The portal's host name unless given (Socrata's Discovery API selects a catalog by it).
        domain = self.string(p, "domain", f"{where}.domain", default=None) or urlsplit(url).hostname
        overrides = p.get("frequency_overrides", {})
        if not isinstance(overrides, dict) or not all(isinstance(x, str) for x in overrides.values()):
            raise self.fail(f"{where}.frequency_overrides", 'expected a table of "raw text" = "P1D" pairs')
        key = p.get("key") and self.key(p, "key", f"{where}.key") or f"{city_key}-{kind}"
        return PortalConfig(
            key=key, city_key=city_key, kind=kind, url=url, domain=domain,
            catalog_url=self.url(p, "catalog_url", f"{where}.catalog_url", default=None),
            schedule=self.cron(self.string(p, "schedule", f"{where}.schedule", default="0 4 * * *"),
                               f"{where}.schedule"),
            app_token=self.secret(p, "app_token", f"{where}.app_token"),
            frequency_fields=self.strings(p, "frequency_fields", f"{where}.frequency_fields"),
            department_fields=self.strings(p, "department_fields", f"{where}.department_fields"),
            frequency_overrides=tuple(sorted((k.strip().lower(), v) for k, v in overrides.items())),
            max_response_bytes=_mb_to_bytes(self.number(p, "max_response_mb", f"{where}.max_response_mb")),
            request_deadline_s=self.number(p, "request_deadline_s", f"{where}.request_deadline_s"),
        )

    def number(self, t: dict, name: str, where: str) -> float | None:
        """An optional positive number (int or float); None when absent."""
        val = t.get(name)
        if val is None:
            return None
        if not isinstance(val, (int, float)) or isinstance(val, bool) or not val > 0:
            raise self.fail(where, f"expected a positive number, got {val!r}")
        return float(val)


def _mb_to_bytes(mb: float | None) -> int | None:
    return None if mb is None else max(1, int(mb * 2**20))
