"""The indicator contract: a pure function `(catalog, as_of) -> Score`, declared once as a frozen `Indicator`."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd


@dataclass(frozen=True)
class Score:
    """One indicator's value for one catalog at one time.

    `failing` maps a dataset's source_id to the reason it fails (the evidence a CDO clicks through to);
    `matches` maps a source_id to why it counts (e.g. the keywords that matched), for explainable matching.
    """

    value: float | None  # 0-100; None = not applicable (nothing to measure), documented per indicator
    numerator: float
    denominator: float
    failing: dict[str, str] = field(default_factory=dict)
    matches: dict[str, str] = field(default_factory=dict)
    detail: dict[str, float] = field(default_factory=dict)  # e.g. {"fresh": 12, "due": 3, ...}


@dataclass(frozen=True)
class Indicator:
    key: str  # permanent id
    title: str
    criterion: str  # WWC criterion id, e.g. "DM4"
    formula: str
    fn: Callable[[pd.DataFrame, datetime], Score]
    weight: float = 1.0  # weight within its criterion
    source: str = ""  # where the method/thresholds come from
