"""Codes into words (layouts/_words.py)."""
from __future__ import annotations

from layouts import _words as words


def test_cadence_in_words():
    # ISO 8601 durations of one unit, with or without DCAT's repeat prefix; named values pass through
    assert [words.cadence(v) for v in ("P1D", "R/P1W", "P1M", "P3M", "P1Y", "P2Y", "PT1H", "PT15M")] == [
        "daily", "weekly", "monthly", "every 3 months", "yearly", "every 2 years", "hourly", "every 15 minutes"]
    assert words.cadence("as needed") == "as needed" and words.cadence("as_needed") == "as needed"
    assert words.cadence("P1DT1H") == "P1DT1H"  # two units: left as declared rather than guessed
    assert words.cadence(None) is None and words.cadence(float("nan")) is None


def test_criterion_label_and_indicator_titles():
    titles = {"BF1": "Data-Driven Budget and Financial Processes"}
    assert words.criterion_label("BF1", titles) == "BF1 · Data-Driven Budget and Financial Processes"
    assert words.criterion_label("BF1", titles, width=20) == "BF1 · Data-Driven B…"  # 19 characters + …
    assert words.criterion_label("XX9", titles) == "XX9"
    assert words.indicator_titles(["b", "a", "b"], {"a": "Open licence share", "b": "Valid data.json"}) == \
        "Open licence share, Valid data.json"


def test_metadata_note_only_for_criteria_that_need_a_document():
    note = words.metadata_note("OD1", ["Open licence share", "Valid data.json inventory"], {"OD1"})
    assert note == ("measures open licence share, valid data.json inventory; "
                    "the policy itself needs a record on the Evidence page")
    assert words.metadata_note("DM4", ["Up-to-date share"], {"OD1"}) is None
    # an acronym keeps its capitals inside the sentence (the city page read "measures aPI access")
    assert "measures API access, bulk download;" in words.metadata_note("DM3", ["API access", "Bulk download"],
                                                                         {"DM3"})


def test_wrapped_lines_breaks_between_words_and_ends_what_does_not_fit():
    label = "DM2 · Maintaining a Comprehensive Data Inventory"  # 48 characters
    assert words.wrapped_lines(label, 30) == ["DM2 · Maintaining a", "Comprehensive Data Inventory"]
    assert words.wrapped_lines("OD1 · Open Data Policy", 30) == ["OD1 · Open Data Policy"]
    # three lines' worth in two: the second ends in "…" after its last whole word, within its 30 characters
    long = "RDC7 · Releasing Data on Contracts, Procurement and Vendor Performance"
    assert words.wrapped_lines(long, 30) == ["RDC7 · Releasing Data on", "Contracts, Procurement and…"]
    assert all(len(line) <= 30 for line in words.wrapped_lines(long, 30))
