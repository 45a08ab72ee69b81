"""The colours of the product, one table for the dashboard (layouts/) and the exported report (exports.py).

Okabe-Ito (colour-blind safe). Stages run warm → cool so their order reads without colour names, and every
coloured mark also carries its stage or value as text, so colour is never the only signal. A city keeps
its colour everywhere: it is chosen by the city's place among all cities, never by the current selection.
"""
from __future__ import annotations

from collections.abc import Iterable

# Maturity stages as `indicators.criteria.rollup` names them, lowest first.
STAGES: tuple[str, ...] = ("not evident", "emerging", "developing", "established", "leading")
STAGE_COLORS: dict[str, str] = {
    "not evident": "#999999",
    "emerging": "#D55E00",
    "developing": "#E69F00",
    "established": "#56B4E9",
    "leading": "#0072B2",
}
# Text on a stage colour: white where the colour is dark enough for it (contrast), black elsewhere.
STAGE_TEXT_COLORS: dict[str, str] = {s: "#fff" if s in ("not evident", "emerging", "leading") else "#000"
                                     for s in STAGES}
NO_SCORE_COLOR = "#F2F2F2"  # a criterion without a score: visibly empty, not the grey of a real stage
# Okabe-Ito qualitative order for lines (one per city or indicator); yellow (#F0E442) last: faint on white.
SERIES_COLORS: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
                                  "#000000", "#F0E442")
RUN_STATUS_COLORS = {"ok": "#009E73", "suspect": "#E69F00", "failed": "#D55E00", "running": "#56B4E9"}


def city_colors(all_city_keys: Iterable[str]) -> dict[str, str]:
    """City key → its line colour, by the city's place among ALL cities sorted by key.

    Pass every city (not the chosen ones): then a city's colour does not change when others are added to or
    removed from a comparison, and the dashboard and the report (both sort by key) agree.
    """
    return {k: SERIES_COLORS[i % len(SERIES_COLORS)] for i, k in enumerate(sorted(set(all_city_keys)))}
