"""Pure indicators: a typed city catalog (table + portal facts) in, WWC evidence out (see docs/internals.md)."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from indicators.base import CityCatalog, DatajsonCheck, Indicator, PortalFacts, RunFact, Score, as_catalog
from indicators.derived import shared_derivations
from indicators.registry import BY_KEY, CRITERION_OF, REGISTRY


def compute_all(catalog: CityCatalog | pd.DataFrame, as_of: datetime) -> dict[str, Score]:
    """Every registered indicator for one catalog at one time, keyed by indicator key.

    A bare table counts as a catalog with no known portal facts (every fact at its "nothing known" default).
    The shared derivations (asset classes, periods, freshness, licences, formats, topic matches) are computed
    once for the catalog and reused by every indicator.
    """
    cat = as_catalog(catalog)
    with shared_derivations():
        return {ind.key: ind.fn(cat, as_of) for ind in REGISTRY}


__all__ = ["BY_KEY", "CRITERION_OF", "REGISTRY", "CityCatalog", "DatajsonCheck", "Indicator", "PortalFacts",
           "RunFact", "Score", "compute_all"]
