"""The indicator contract: a pure function `(catalog: CityCatalog, as_of) -> Score`, declared once as a frozen
`Indicator`.

`CityCatalog` is the one input: the normalized catalog table plus `PortalFacts`, the typed facts about the
city's portals and their history that no catalog row carries (reachability, kinds, the data.json check, runs,
removals, configured departments). The pipeline assembles it from storage; nothing rides in `DataFrame.attrs`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd


@dataclass(frozen=True)
class Score:
    """One indicator's value for one catalog at one time.

    `failing` maps a dataset's source_id to the reason it fails (the evidence a CDO clicks through to);
    `matches` maps a source_id to why it counts (e.g. the keywords that matched), for explainable matching.
    """

    value: float | None  # 0-100; None = not evident (nothing to measure), documented per indicator
    numerator: float
    denominator: float
    failing: dict[str, str] = field(default_factory=dict)
    matches: dict[str, str] = field(default_factory=dict)
    detail: dict[str, float] = field(default_factory=dict)  # e.g. {"fresh": 12, "due": 3, ...}


@dataclass(frozen=True)
class RunFact:
    """One finished harvest run of one of the city's portals, as scoring needs it."""

    run_id: int
    portal_key: str
    as_of: datetime
    status: str  # "ok" | "suspect" | "failed"
    items: int | None
    # A full crawl: a chance to see every dataset change, and a side of a removal comparison.
    complete: bool


@dataclass(frozen=True)
class DatajsonCheck:
    """The city's data.json inventory as the newest good harvest of its data.json portal(s) found it.

    checked: the city has a data.json portal configured, so a missing document is evidence (against);
    present: a harvest read the document; validated: its schema check is on record (entries, errors).
    `errors` maps a dataset's source_id ("" for the document itself) to its schema error messages;
    `error_count` counts every error, also those whose message was not kept.
    """

    checked: bool = False
    present: bool = False
    validated: bool = False
    entries: int = 0
    error_count: int = 0
    errors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PortalFacts:
    """What scoring knows about a city's portals beyond the catalog rows. The defaults say "nothing known"."""

    reachable: bool = False  # the newest run of at least one of the city's portals did not fail
    kinds: frozenset[str] = frozenset()  # portal kinds configured (shown in detail, never tested by name)
    datajson: DatajsonCheck = field(default_factory=DatajsonCheck)
    history_start: datetime | None = None  # as_of of the first good run of any of the city's portals
    runs: tuple[RunFact, ...] = ()  # every finished run up to as_of, oldest first, any status
    # source ids removed between complete runs (storage's rule); None: no comparison possible yet (not "none")
    removed: frozenset[str] | None = None
    departments: tuple[str, ...] = ()  # the city's departments as configured


@dataclass(frozen=True, eq=False)
class CityCatalog:
    """The one input of every indicator: the catalog table (storage.city_catalog columns) and the facts."""

    frame: pd.DataFrame
    facts: PortalFacts = field(default_factory=PortalFacts)


def as_catalog(catalog: CityCatalog | pd.DataFrame) -> CityCatalog:
    """A bare table is a catalog with no known portal facts (tests, the dataset explorer)."""
    return catalog if isinstance(catalog, CityCatalog) else CityCatalog(catalog)


@dataclass(frozen=True)
class Indicator:
    key: str  # permanent id
    title: str
    criterion: str  # WWC criterion id, e.g. "DM4"
    formula: str
    fn: Callable[[CityCatalog, datetime], Score]
    weight: float = 1.0  # weight within its criterion
    source: str = ""  # where the method/thresholds come from
