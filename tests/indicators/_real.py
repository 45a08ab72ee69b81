"""Test helpers: real recorded Socrata Discovery items (tests/fixtures/socrata) as DatasetRecords.

A deliberately small, test-only mapping (the connectors own the real normalisation): identity, title,
description, tags, category, the domain's owner and frequency custom fields, licence text, dates, columns.
Frequencies are mapped only for the spellings the tests use (FREQUENCIES), so every expected value below can
be checked by reading the fixture line.
"""
from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from connectors.base import DatasetRecord, records_frame
from indicators.base import CityCatalog, PortalFacts

FIXTURES = Path(__file__).parents[1] / "fixtures" / "socrata"
CHICAGO_HISTORY = FIXTURES / "history" / "data.cityofchicago.org"
# Chicago's free-text Metadata_Frequency values used by the tests -> ISO periods.
FREQUENCIES = {
    "Data are updated daily": "P1D", "Data is updated daily": "P1D", "Data are updated daily.": "P1D",
    "Data is updated weekly": "P1W", "Data are updated weekly": "P1W",
    "Data are updated monthly": "P1M", "Data is updated monthly": "P1M",
    "Data are updated annually": "P1Y", "Data are updated semi-annually": "P6M",
    "Data is updated as needed": "as needed", "Data are updated as needed": "as needed",
    # Austin's Additional-Information_Frequency values
    "Daily": "P1D", "Weekly": "P1W", "Monthly": "P1M", "Annually": "P1Y", "As Needed": "as needed",
}
OWNER_KEYS = ("Metadata_Data-Owner", "City-of-Austin_Department-")
FREQ_KEYS = ("Metadata_Frequency", "Additional-Information_Frequency")


def _t(x: str | None) -> datetime | None:
    return datetime.fromisoformat(x.replace("Z", "+00:00")) if x else None


def items(path: Path) -> dict[str, dict]:
    """Discovery items of a .jsonl.gz file by id (repeated lines count once)."""
    out: dict[str, dict] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            if "resource" in item:
                out.setdefault(item["resource"]["id"], item)
    return out


def stats(path: Path) -> dict[str, dict]:
    """The scrape's usage side file (<domain>.stats.jsonl.gz): id -> stats."""
    out: dict[str, dict] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            out[row["id"]] = row["stats"]
    return out


def record(item: dict, portal_key: str = "test", usage: dict | None = None) -> DatasetRecord:
    r, c = item["resource"], item["classification"]
    dm = {m["key"]: m["value"] for m in c.get("domain_metadata", [])}
    freq_raw = next((dm[k] for k in FREQ_KEYS if dm.get(k)), None)
    names = r.get("columns_field_name", [])
    types = [t.lower() for t in r.get("columns_datatype", [])]
    descs = r.get("columns_description", [])
    # Recorded items may lack the type or description list: zip(strict=False) pairs what is there.
    tabular = r.get("lens_view_type") == "tabular"
    return DatasetRecord(
        portal_key=portal_key, source_id=r["id"], asset_type=r["type"],
        landing_url=item.get("permalink"),
        api_url=f"https://{item['metadata']['domain']}/resource/{r['id']}.json" if tabular else None,
        title=r.get("name"), description=r.get("description") or None,
        keywords=tuple(c.get("domain_tags", [])), theme=c.get("domain_category"),
        department=next((dm[k] for k in OWNER_KEYS if dm.get(k)), None),
        contact_email=r.get("contact_email"), license=item.get("metadata", {}).get("license"),
        created=_t(r.get("createdAt")), metadata_modified=_t(r.get("metadata_updated_at")),
        data_modified=_t(r.get("data_updated_at")),
        declared_frequency=FREQUENCIES.get(freq_raw) if freq_raw else None, declared_frequency_raw=freq_raw,
        formats=("csv", "json") if tabular else (),
        column_count=len(names),
        described_column_count=sum(1 for n, d in zip(names, descs, strict=False) if d and d.strip() and d.strip() != n),
        columns=tuple(zip(names, types, strict=False)),
        is_derived=bool(r.get("parent_fxf")),
        views=(usage or {}).get("page_views_total"), downloads=(usage or {}).get("download_count"),
    )


def frame(domain: str, ids: list[str]) -> pd.DataFrame:
    """A catalog of the named records from tests/fixtures/socrata/latest/<domain>.jsonl.gz."""
    its = items(FIXTURES / "latest" / f"{domain}.jsonl.gz")
    use = stats(FIXTURES / "latest" / f"{domain}.stats.jsonl.gz")
    return records_frame([record(its[i], domain, use.get(i)) for i in ids])


def history_as_of(day: str) -> datetime:
    """A snapshot file holds the newest scrape commit on or before its date: the state at the end of that day."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(days=1) - timedelta(seconds=1)


def chicago_history_catalog(ids: list[str] | None = None) -> tuple[CityCatalog, datetime]:
    """The Chicago catalog as of the last weekly snapshot, with history columns built as storage defines them:
    first_seen = as_of of the first snapshot holding the id; data_modified_seen = sorted distinct data_modified
    values over the snapshots up to as_of that hold the id; facts.history_start = first snapshot.
    (storage.city_catalog computes the same from stored versions; the connectors' normalize was not in the
    tree when this test was written, so this helper reads the recorded files itself.)
    """
    files = sorted(CHICAGO_HISTORY.glob("*.jsonl.gz"))
    first_seen: dict[str, datetime] = {}
    seen: dict[str, set[datetime]] = {}
    last: dict[str, dict] = {}
    for f in files:
        when = history_as_of(f.name[:10])
        snap = items(f)
        last = snap
        for sid, item in snap.items():
            first_seen.setdefault(sid, when)
            dm = _t(item["resource"].get("data_updated_at"))
            if dm is not None:
                seen.setdefault(sid, set()).add(dm)
    as_of = history_as_of(files[-1].name[:10])
    keep = [sid for sid in sorted(last) if ids is None or sid in ids]
    df = records_frame([record(last[sid], "chicago") for sid in keep])
    df["city_key"] = "chicago"
    df["first_seen"] = pd.to_datetime(pd.Series([first_seen[s] for s in keep], dtype=object), utc=True)
    df["data_modified_seen"] = pd.Series([tuple(sorted(seen.get(s, ()))) for s in keep], dtype=object)
    facts = PortalFacts(reachable=True, kinds=frozenset({"socrata"}), history_start=history_as_of(files[0].name[:10]))
    return CityCatalog(df, facts), as_of
