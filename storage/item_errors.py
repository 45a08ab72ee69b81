"""Items a run set aside (connectors.items.ItemError): kept raw with their error, readable per run."""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from storage.db import write_tx
from storage.models import item_errors_t

MAX_KEPT_PER_RUN = 1000  # a run whose every item fails keeps the first thousand: enough to see the pattern


def save_item_errors(engine: Engine, run_id: int, failed: Sequence[tuple[dict, BaseException]]) -> int:
    """Keep a run's failed items (raw, compressed) with their errors; returns how many were kept."""
    rows = [{"run_id": run_id, "error": str(error), "raw": zlib.compress(orjson.dumps(raw, default=str))}
            for raw, error in failed[:MAX_KEPT_PER_RUN]]
    if rows:
        with write_tx(engine) as conn:
            conn.execute(sa.insert(item_errors_t), rows)
    return len(rows)


def item_errors(engine: Engine, run_id: int) -> pd.DataFrame:
    """error, raw (the item as a dict) of one run's set-aside items, in the order they were met."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(item_errors_t.c.error, item_errors_t.c.raw)
                            .where(item_errors_t.c.run_id == run_id).order_by(item_errors_t.c.id)).all()
    return pd.DataFrame([{"error": e, "raw": orjson.loads(zlib.decompress(r))} for e, r in rows],
                        columns=["error", "raw"])
