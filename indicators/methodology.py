"""The Methodology document, rendered from the registry, the docstrings and the named constants.

`python -m indicators.methodology > docs/methodology.md`; a test checks the committed file matches.
"""
from __future__ import annotations

import inspect
import re
from types import ModuleType

import numpy as np

from indicators import criteria, derived, inventory, mqa, open_data, periods, quality, registry, topics
from indicators.registry import REGISTRY


def _doc(obj: object) -> str:
    """The object's docstring (these modules and functions all have one)."""
    return inspect.getdoc(obj) or ""


def _constants(module: ModuleType) -> list[tuple[str, object]]:
    """UPPER_CASE names assigned at the top of the module's own source (not imported ones)."""
    source = inspect.getsource(module)
    out = []
    for name, value in vars(module).items():
        if not name.isupper() or name.startswith("_") or name == "DATA_DIR":
            continue
        if not re.search(rf"^{name}\s*(:[^=]*)?=", source, re.M):
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, (set, frozenset)):  # a stable order: set order changes between processes
            value = sorted(value)
        out.append((name, value))
    return out


def markdown() -> str:
    lines = [
        "# Methodology",
        "",
        "Generated from the indicator registry (`indicators/registry.py`) and the indicators' docstrings by",
        "`python -m indicators.methodology`; do not edit by hand. Every indicator is a pure function of the",
        "harvested catalog and the scoring time; thresholds are absolute, so cities compare on one scale.",
        "",
        "## Which assets count",
        "",
        "Asset types" + _doc(derived).split("Asset types", 1)[1],
        "",
        "## Weights",
        "",
        _doc(registry).split("\n\n", 2)[2],
        "",
        "## Criteria, stages and the certification estimate",
        "",
        _doc(criteria).split("\n\n", 1)[1],
        "",
        _doc(criteria.rollup),
        "",
        "Stages (lower bound of the criterion value): "
        + ", ".join(f"{name} >= {low:g}" for low, name in criteria.STAGES) + "; no value = not evident.",
        "",
        _doc(criteria.statuses),
        "",
        _doc(criteria.certification_estimate),
        "",
        "## Indicators",
        "",
        "| key | criterion | weight | title |",
        "|---|---|---|---|",
    ]
    for ind in REGISTRY:
        lines.append(f"| `{ind.key}` | {ind.criterion} | {ind.weight:g} | {ind.title} |")
    current = None
    for ind in REGISTRY:
        if ind.criterion != current:
            current = ind.criterion
            lines += ["", f"### {current}"]
        doc = inspect.getdoc(ind.fn) or ""
        lines += ["", f"#### `{ind.key}` - {ind.title}", "", f"Weight in {ind.criterion}: {ind.weight:g}.", "", doc]
    lines += ["", "## Constants", ""]
    for module in (derived, periods, open_data, inventory, quality, topics, mqa, criteria):
        consts = _constants(module)
        if not consts:
            continue
        lines += [f"`{module.__name__}`:", ""]
        lines += [f"- `{name}` = `{value!r}`" for name, value in consts]
        lines.append("")
    lines += ["## Pinned tables", "",
              "- `indicators/data/formats.json` - format stars, machine-readable and open lists (ckanext-qa).",
              "- Licences: read from each record's `license_id`, normalized once by `connectors.vocab` (rules for"
              " the licence families, `connectors/data/licenses.csv`, the Open Definition registry"
              " okfn/licenses @ 98a3a6f8 in `connectors/data/opendefinition_licenses_all.json`).",
              "- `indicators/data/vocab.json` - Census key dataset words, performance words, column words.",
              "- `indicators/data/wwc-criteria.json` - the 2022 What Works Cities criteria (42 in the seed).",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
