"""Meta-tests that keep the registry, the docstrings, the tests and the Methodology document honest."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from indicators import criteria, methodology
from indicators.registry import REGISTRY, docstring_part

HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def test_keys_are_unique_permanent_style_and_prefixed_by_criterion():
    keys = [i.key for i in REGISTRY]
    assert len(keys) == len(set(keys))
    for ind in REGISTRY:
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", ind.key), ind.key
        assert ind.key.startswith(ind.criterion.lower() + "_"), ind.key


def test_every_indicator_names_its_criterion_and_formula():
    wwc = set(criteria.wwc_criteria()["criterion"])
    for ind in REGISTRY:
        doc = inspect.getdoc(ind.fn) or ""
        assert doc.splitlines()[0].startswith(ind.criterion), ind.key
        assert ind.criterion in wwc, ind.key
        assert "Formula:" in doc and ind.formula, ind.key
        assert ind.source, f"{ind.key}: no Source: in the docstring"
        assert docstring_part(ind.fn, "Empty"), f"{ind.key}: no Empty: in the docstring"
        assert ind.formula == docstring_part(ind.fn, "Formula")


def test_every_indicator_has_a_test():
    texts = "\n".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)
    missing = [i.key for i in REGISTRY if i.key not in texts]
    assert not missing, f"no test mentions {missing}"


def test_methodology_document_matches_the_code():
    committed = (ROOT / "docs" / "methodology.md").read_text()
    assert committed == methodology.markdown(), "run: python -m indicators.methodology > docs/methodology.md"


def test_methodology_lists_every_indicator_and_constant():
    md = methodology.markdown()
    for ind in REGISTRY:
        assert f"`{ind.key}`" in md
    for name in ("DATASET_COUNT_FULL", "HDX_DUE_GRACE_DAYS", "DESCRIPTION_MIN_CHARS", "MET_FROM", "MQA_POINTS"):
        assert name in md
