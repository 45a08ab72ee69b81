"""Precision and recall of the topic matcher against hand-labelled titles (tests/fixtures/topic_labels.csv).

    .venv/bin/python benchmarks/topics.py [--half all|tune|holdout] [--errors TOPIC|all] [--markdown]

Each labelled row (title, tags, category of a real catalog record, see tests/fixtures/PROVENANCE.md) becomes
one public dataset of a catalog; the matcher (indicators.topics.topic_matches, the same code the indicators
run) says which topics it matches; the 0/1 columns say which topics a person found. Per topic: matches,
true positives, precision = TP / matches, recall = TP / labelled positives, on the chosen half of the rows
(`tune`: the rows looked at while changing rules; `holdout`: never looked at; `unseen_portals`: other portals,
scored once, then looked at; `fresh_check`: more portals, labelled after the last rule change, sampled from the
final matcher's matches, scored once). The sample over-represents
the matcher's own matches (stratum `matcher_positive`), so recall here is an upper bound for a catalog.
`--errors` lists false positives and false negatives of the chosen half, for tuning (use it on `tune`).
Not a test: numbers for the README (tests/indicators/test_topics.py asserts the precision goal).
"""
from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELS = ROOT / "tests" / "fixtures" / "topic_labels.csv"
AS_OF = datetime(2022, 7, 23, tzinfo=UTC)
META = ("domain", "source_id", "title", "tags", "category", "note", "stratum", "half")
# `tune` / `holdout`: the first 614 rows, split by id; `unseen_portals`: 290 rows from 40 other portals, scored
# once with the rules of commit c95ff33, then read for tuning; `fresh_check`: 295 rows from 33 more portals,
# labelled after the rules of commit 7ff31d9 and scored once (see tests/fixtures/PROVENANCE.md)
HALVES = ("all", "tune", "holdout", "unseen_portals", "fresh_check")


@dataclass(frozen=True)
class Result:
    topic: str
    matched: int
    true_pos: int
    positives: int

    @property
    def precision(self) -> float | None:
        return self.true_pos / self.matched if self.matched else None

    @property
    def recall(self) -> float | None:
        return self.true_pos / self.positives if self.positives else None


def load(path: Path = LABELS) -> tuple[list[dict[str, str]], list[str]]:
    """(rows, topic columns) of the label file."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        topics = [c for c in (reader.fieldnames or []) if c not in META]
    return rows, topics


def predict(rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
    """Per topic: does the matcher match each row (title, tags, category as a public dataset)?"""
    from connectors.base import DatasetRecord, records_frame
    from indicators.topics import topic_matches

    records = [DatasetRecord(portal_key=r["domain"], source_id=f"{i}", asset_type="dataset", title=r["title"] or None,
                             keywords=tuple(t for t in r["tags"].split("; ") if t), theme=r["category"] or None)
               for i, r in enumerate(rows)]
    return {k: v != "" for k, v in topic_matches(records_frame(records), AS_OF).items()}


def evaluate(rows: list[dict[str, str]], topics: list[str], half: str = "all") -> list[Result]:
    hits = predict(rows)
    keep = np.array([half == "all" or r["half"] == half for r in rows], dtype=bool)
    out = []
    for t in topics:
        truth = np.array([r[t] == "1" for r in rows], dtype=bool) & keep
        pred = hits[t] & keep
        out.append(Result(t, int(pred.sum()), int((pred & truth).sum()), int(truth.sum())))
    return out


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _ratio(r: Result) -> str:
    """precision (true positives / matches)"""
    return f"{_fmt(r.precision)} ({r.true_pos}/{r.matched})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--half", choices=HALVES, default="all")
    ap.add_argument("--errors", help="list false positives / negatives of this topic ('all' for every topic)")
    ap.add_argument("--markdown", action="store_true", help="one table: all, tune and holdout side by side")
    args = ap.parse_args(argv)

    rows, topics = load()
    from indicators.topics import possible_evidence

    if args.markdown:
        res = {h: {r.topic: r for r in evaluate(rows, topics, h)} for h in HALVES}
        print("| topic | precision, all labels | tune half | **holdout half** | unseen portals (tuned on) "
              "| **fresh check** | recall, all |")
        print("|---|---|---|---|---|---|---|")
        for t in topics:
            a, tu, ho, un, fr = (res[h][t] for h in HALVES)
            flag = " (possible evidence)" if t in possible_evidence() else ""
            print(f"| {t}{flag} | {_ratio(a)} | {_ratio(tu)} | **{_ratio(ho)}** | {_ratio(un)} | **{_ratio(fr)}** | "
                  f"{_fmt(a.recall)} |")
    else:
        print(f"{len(rows)} labelled rows, half={args.half}")
        print(f"{'topic':28} {'matched':>7} {'TP':>4} {'labelled':>8} {'precision':>9} {'recall':>6}")
        for r in evaluate(rows, topics, args.half):
            flag = "  possible evidence" if r.topic in possible_evidence() else ""
            print(f"{r.topic:28} {r.matched:7} {r.true_pos:4} {r.positives:8} {_fmt(r.precision):>9} "
                  f"{_fmt(r.recall):>6}{flag}")
    if args.errors:
        hits = predict(rows)
        for t in topics if args.errors == "all" else [args.errors]:
            for i, r in enumerate(rows):
                if args.half != "all" and r["half"] != args.half:
                    continue
                truth, pred = r[t] == "1", bool(hits[t][i])
                if truth != pred:
                    kind = "FP" if pred else "FN"
                    print(f"{t:22} {kind} [{r['domain']}] {r['title']!r} tags={r['tags'][:80]!r} "
                          f"cat={r['category']!r} note={r['note']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
