"""Per-item isolation: an item that cannot be normalized is set aside with its error; the rest of the run goes on.

A portal's catalog is thousands of items typed by hand in admin screens; one of them will one day hold `"owner":
"x"` where an object belongs. `normalize` is meant to be total, but a run must not depend on it being perfect:
the pipeline calls it through `normalize_each`, which turns anything an item makes `normalize` raise — or a record
that breaks the `DatasetRecord` contract (a count that is text, a naive time) — into an `ItemError` for that item
alone. The run succeeds with the other items, unless more than `ITEM_FAILURE_SHARE` of them fail: then the
portal's format has changed, and the run fails with the first errors as its reason.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import DatasetRecord

# More than this share of a run's items failing (and more than one) fails the run: a few odd items are a portal's
# typing accidents, 5% is a format change the connector must learn.
ITEM_FAILURE_SHARE = 0.05
REASON_EXAMPLES = 3  # errors quoted in a failed run's reason
ERROR_CHARS = 300  # an error message is cut to this (portal text may be in it)


class ItemError(ValueError):
    """The documented per-item error: this raw item could not become a valid `DatasetRecord`."""


@dataclass(frozen=True)
class Normalized:
    """One run's items after normalization: the records, their raw items (same order) and the items set aside."""

    records: list[DatasetRecord]
    raws: list[dict[str, Any]]
    failed: list[tuple[dict[str, Any], ItemError]]

    @property
    def total(self) -> int:
        return len(self.records) + len(self.failed)

    @property
    def too_many_failed(self) -> bool:
        return len(self.failed) > max(1.0, ITEM_FAILURE_SHARE * self.total)

    def reason(self) -> str:
        """A failed run's reason: how many, the threshold, and the first few errors."""
        first = "; ".join(str(e) for _, e in self.failed[:REASON_EXAMPLES])
        return (f"ItemError: {len(self.failed)} of {self.total} items could not be normalized (more than "
                f"{ITEM_FAILURE_SHARE:.0%}), e.g. {first}")


def normalize_each(connector: Any, raws: Iterable[dict[str, Any]]) -> Normalized:
    """`normalize_one` over a run's raw items, collecting the failures instead of raising."""
    records, kept, failed = [], [], []
    for raw in raws:
        try:
            records.append(normalize_one(connector, raw))
        except ItemError as exc:
            failed.append((raw, exc))
        else:
            kept.append(raw)
    return Normalized(records, kept, failed)


def normalize_one(connector: Any, raw: Any) -> DatasetRecord:
    """`connector.normalize(raw)`, checked against the record contract; raises `ItemError` and nothing else."""
    try:
        record = connector.normalize(raw)
    except Exception as exc:  # whatever an odd item makes a normalizer trip on is that item's problem alone
        raise ItemError(_cut(f"{type(exc).__name__}: {exc}")) from exc
    problems = record_problems(record)
    if problems:
        raise ItemError(_cut(f"record {getattr(record, 'source_id', None)!r}: " + "; ".join(problems)))
    return record


def record_problems(record: Any) -> list[str]:
    """What in `record` breaks the `DatasetRecord` contract (field types as declared; times timezone-aware)."""
    if not isinstance(record, DatasetRecord):
        return [f"normalize returned {type(record).__name__}, not a DatasetRecord"]
    problems = []
    for f in dataclasses.fields(DatasetRecord):
        value = getattr(record, f.name)
        if not _fits(value, _FIELD_TYPES[f.name]):
            problems.append(f"{f.name}={_cut(repr(value), 60)} is not {_FIELD_TYPES[f.name]}")
        elif isinstance(value, datetime) and value.tzinfo is None:
            problems.append(f"{f.name} has no time zone")
    return problems


_FIELD_TYPES = typing.get_type_hints(DatasetRecord)


def _fits(value: Any, hint: Any) -> bool:
    """isinstance against a type hint of the forms the record uses: X, X | None, tuple[X, ...], tuple[X, Y]."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args, strict=True))
    if hint is int:  # bool is an int to Python, not to the contract
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _cut(text: str, n: int = ERROR_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
