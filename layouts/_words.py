"""Words a CDO uses instead of codes: criterion names beside their ids, cadences instead of ISO durations.

Pure functions (no I/O): the pages and figure builders call them on values they already hold.
"""
from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping

# cadence lives with the periods it names (indicators' reasons say it too); the pages take it from here
from indicators.periods import cadence  # noqa: F401


def criterion_label(code: str, titles: Mapping[str, str], *, width: int | None = None) -> str:
    """ "BF1 · Data-Driven Budget and Financial Processes", cut to `width` characters with "…" when given."""
    title = titles.get(code)
    label = f"{code} · {title}" if title else str(code)
    return label if width is None or len(label) <= width else label[: width - 1].rstrip() + "…"


def wrapped_lines(text: str, width: int, lines: int = 2) -> list[str]:
    """`text` in at most `lines` lines of about `width` characters, broken between words; what does not fit ends
    in "…" (a chart's panel title, which has no room to wrap on its own)."""
    out = textwrap.wrap(text, width) or [""]
    if len(out) > lines:
        last = " ".join(out[lines - 1:])
        out = [*out[: lines - 1], textwrap.shorten(last, width, placeholder="…")]
    return out


def indicator_titles(keys: Iterable[str], titles: Mapping[str, str]) -> str:
    """Indicator keys of one dataset's failures → their titles, in a stable order ("Open licence share, …")."""
    return ", ".join(sorted({titles.get(k, k) for k in keys}, key=str.lower))


def metadata_note(criterion: str, indicator_titles_: Iterable[str], needs_document: Iterable[str]) -> str | None:
    """What the score of a criterion that needs its own document (a policy) measures, so a low score does not
    read as a verdict on a city that has one: "licences and inventory published: policy itself needs …"."""
    if criterion not in set(needs_document):
        return None
    measured = ", ".join(_in_sentence(t) for t in indicator_titles_ if t)
    what = f"measures {measured}" if measured else "measures what the portal's metadata shows"
    thing = "policy" if criterion == "OD1" else "practice"  # OD1 is the open data policy (law or order)
    return f"{what}; the {thing} itself needs a record on the Evidence page"


def _in_sentence(title: str) -> str:
    """A title inside a sentence: its first letter lower case, unless it starts an acronym ("API access")."""
    return title if title[1:2].isupper() else title[:1].lower() + title[1:]
