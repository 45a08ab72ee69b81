"""Per-item isolation: an item that cannot be normalized is set aside with its error; the rest of the run goes on.

A portal's catalog is thousands of items typed by hand in admin screens; one of them will one day hold `"owner":
"x"` where an object belongs. `normalize` is meant to be total, but a run must not depend on it being perfect:
the pipeline calls it through `normalize_each`, which turns anything an item makes `normalize` raise — or a record
that breaks the `DatasetRecord` contract (a count that is text, a naive time) — into an `ItemError` for that item
alone. The run succeeds with the other items, unless more than `ITEM_FAILURE_SHARE` of them fail: then the
portal's format has changed, and the run fails with the first errors as its reason.
"""
from __future__ import annotations

import itertools
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
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
    """Some of a run's items after normalization: the records, their raw items (same order), the items set aside."""

    records: list[DatasetRecord]
    raws: list[dict[str, Any]]
    failed: list[tuple[dict[str, Any], ItemError]]


@dataclass
class ItemTally:
    """A run's items as its batches were stored: how many stood (normalized, or unchanged since the version
    stored before), and the ones set aside with their errors."""

    ok: int = 0
    failed: list[tuple[dict[str, Any], ItemError]] = field(default_factory=list)

    def add(self, batch: Normalized) -> None:
        self.ok += len(batch.records)
        self.failed.extend(batch.failed)

    @property
    def total(self) -> int:
        return self.ok + len(self.failed)

    @property
    def too_many_failed(self) -> bool:
        return len(self.failed) > max(1.0, ITEM_FAILURE_SHARE * self.total)

    def reason(self) -> str:
        """A failed run's reason: how many, the threshold, and the first few errors."""
        first = "; ".join(str(e) for _, e in self.failed[:REASON_EXAMPLES])
        return (f"ItemError: {len(self.failed)} of {self.total} items could not be normalized (more than "
                f"{ITEM_FAILURE_SHARE:.0%}), e.g. {first}")


T = typing.TypeVar("T")


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), taken as they come: nothing is read ahead."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def normalize_each(connector: Any, raws: Iterable[dict[str, Any]], profile: Any = None) -> Normalized:
    """`normalize_one` over a run's raw items, collecting the failures instead of raising. `profile`: the run's
    `connector.discover(raws)` (vocab.FieldProfile), None for the connector's default."""
    records, kept, failed = [], [], []
    for raw in raws:
        try:
            records.append(normalize_one(connector, raw, profile))
        except ItemError as exc:
            failed.append((raw, exc))
        else:
            kept.append(raw)
    return Normalized(records, kept, failed)


def normalize_one(connector: Any, raw: Any, profile: Any = None) -> DatasetRecord:
    """`connector.normalize(raw[, profile])`, checked against the record contract; raises `ItemError` and nothing
    else."""
    try:
        record = connector.normalize(raw) if profile is None else connector.normalize(raw, profile)
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
    problems = [f"{name}={_cut(repr(getattr(record, name)), 60)} is not {hint}"
                for name, hint, fits in _CHECKS if not fits(getattr(record, name))]
    for name in _TIMES:
        value = getattr(record, name)
        if isinstance(value, datetime) and value.tzinfo is None:
            problems.append(f"{name} has no time zone")
    return problems


Check = Callable[[Any], bool]


def _checker(hint: Any) -> Check:
    """A predicate for a type hint of the forms the record uses: X, X | None, tuple[X, ...], tuple[X, Y]. Built once
    per field at import, plain `isinstance` where it can be: every record of a harvest is checked."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(hint)
        rest = [h for h in args if h is not type(None)]
        if len(rest) == 1 and len(args) == 2:  # X | None: the record's usual field
            inner = _checker(rest[0])
            return lambda v: v is None or inner(v)
        options = [_checker(h) for h in args]
        return lambda v: any(f(v) for f in options)
    if hint is type(None):
        return lambda v: v is None
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _checker(args[0])

            def each(v: Any) -> bool:
                if not isinstance(v, tuple):
                    return False
                for x in v:
                    if not item(x):
                        return False
                return True

            return each
        items = [_checker(a) for a in args]

        def fixed(v: Any) -> bool:
            if not isinstance(v, tuple) or len(v) != len(items):
                return False
            for f, x in zip(items, v, strict=True):
                if not f(x):
                    return False
            return True

        return fixed
    if hint is int:  # bool is an int to Python, not to the contract
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    return lambda v: isinstance(v, hint)


def _exact(hint: Any) -> frozenset[type] | None:
    """The classes a value of `hint` usually is, exactly (X, X | None, X | Y of plain classes); None otherwise."""
    args = typing.get_args(hint) if typing.get_origin(hint) in (types.UnionType, typing.Union) else (hint,)
    if all(isinstance(a, type) and typing.get_origin(a) is None for a in args):
        return frozenset(args)
    return None


def _fast(hint: Any) -> Check:
    """`_checker(hint)` behind a C-speed test of exact types that decides the common case (a record of the
    connectors' own making); only a value that fails it (a subclass, a wrong type) takes the full check."""
    slow = _checker(hint)
    exact = _exact(hint)
    if exact is not None:
        return lambda v: type(v) in exact or slow(v)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _exact(args[0])
        if item is not None:  # tuple[str, ...]
            return lambda v: (type(v) is tuple and {*map(type, v)} <= item) or slow(v)
        inner = typing.get_args(args[0])
        pair = {_exact(a) for a in inner}
        if typing.get_origin(args[0]) is tuple and Ellipsis not in inner and len(pair) == 1 and None not in pair:
            width, leaf = len(inner), pair.pop()  # tuple[tuple[str, str], ...]
            assert leaf is not None
            return lambda v: (type(v) is tuple and {*map(type, v)} <= {tuple} and {*map(len, v)} <= {width}
                              and {*map(type, itertools.chain.from_iterable(v))} <= leaf) or slow(v)
    return slow


_HINTS = typing.get_type_hints(DatasetRecord)
_CHECKS: list[tuple[str, Any, Check]] = [(name, hint, _fast(hint)) for name, hint in _HINTS.items()]
_TIMES = [name for name, hint in _HINTS.items() if datetime in typing.get_args(hint) or hint is datetime]


def _cut(text: str, n: int = ERROR_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
