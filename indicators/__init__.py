"""Pure indicators: a normalized catalog DataFrame in, WWC evidence out (see docs/internals.md)."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from indicators.base import Indicator, Score
from indicators.frame import shared_derivations
from indicators.registry import BY_KEY, REGISTRY


def compute_all(catalog: pd.DataFrame, as_of: datetime) -> dict[str, Score]:
    """Every registered indicator for one catalog at one time, keyed by indicator key.

    The shared derivations (asset classes, periods, freshness, licences, formats, topic matches) are computed
    once for the catalog and reused by every indicator.
    """
    with shared_derivations():
        return {ind.key: ind.fn(catalog, as_of) for ind in REGISTRY}


__all__ = ["BY_KEY", "REGISTRY", "Indicator", "Score", "compute_all"]
