"""Methodology `/methodology`: rendered from the indicator registry and the criteria module (one source of truth).

Prose and tables built from `indicators.REGISTRY` (title, formula, weight, source) and `indicators.criteria`
(stage thresholds, criteria that need a document), as text: no raw docstrings, no Markdown mangling of code.
"""
from __future__ import annotations

import re
from types import ModuleType

import dash
import dash_bootstrap_components as dbc
from dash import html

from layouts import _components as ui
from layouts import _figures as fig
from layouts import _words as words

dash.register_page(__name__, path="/methodology", name="Methodology", title="Methodology · City data maturity",
                   without_grids=True)


def layout(**_query: str) -> html.Div:
    return ui.page(
        "Methodology",
        html.Div([html.H4("How the dashboard reads the scores", className="h5"),
                  html.Ul([
                      html.Li("Overall stage of a city: the median of its scored criteria's stages (rounded down)."),
                      html.Li("Change since 30 / 90 days: the mean of the criterion scores at the city's latest "
                              "scored run minus the same at the last run at least that long before it."),
                      html.Li("Freshness on the Datasets page: the indicators' HDX aging of the data update against "
                              "the declared "
                              f"frequency ({', '.join(fig.FRESHNESS_STATES)})."),
                      html.Li("Documentation score of a dataset: the share of six checks passed (description ≥ 20 "
                              "characters, keywords, licence, contact, category, columns described)."),
                      html.Li("Fix first: criterion points gained by fixing a dataset × "
                              "log10(10 + views + downloads)."),
                      html.Li("Colours: Okabe–Ito palette (colour-blind safe); every coloured cell also carries "
                              "its value or stage as text."),
                  ])], className="mb-4"),
        html.Div(body(), id="meth-body", className="methodology"),
        subtitle="Generated from the indicator registry: what each score measures, its formula and its source.",
    )


def body() -> list:
    """Stages, then one section per criterion with a table of its indicators (all from the code's own tables)."""
    import indicators
    from indicators import criteria

    titles = ui.criterion_titles()
    out: list = [html.H2("Stages", className="h5 mt-2"), _stages_table(criteria)]
    wwc = criteria.wwc_criteria()
    needs = frozenset(wwc.loc[wwc["metadata"] == "partial", "criterion"])
    out.append(html.P(f"A criterion that portal metadata can show fully counts as met from a score of "
                      f"{criteria.MET_FROM:.0f} on; one it shows only in part is \"supported by metadata\" and "
                      "counts as met once a record on the Evidence page (a URL, a date, a note) confirms it. A "
                      "record on the Evidence page meets any criterion."))
    by_criterion: dict[str, list] = {}
    for ind in indicators.REGISTRY:
        by_criterion.setdefault(ind.criterion, []).append(ind)
    for c in fig.criteria_order(by_criterion):
        inds = by_criterion[c]
        out.append(html.H2(words.criterion_label(c, titles), className="h5 mt-4", id=f"meth-{c}"))
        note = words.metadata_note(c, [i.title for i in inds], needs)
        if note:
            out.append(html.P(f"The score {note}.", className="fst-italic"))
        rows = [html.Tr([html.Td(i.title), html.Td(_plain(i.formula)), html.Td(_weight(i.weight)),
                         html.Td(_plain(i.source) or "project choice")]) for i in inds]
        out.append(dbc.Table([html.Thead(html.Tr([html.Th("Indicator"), html.Th("How it is computed"),
                                                  html.Th("Weight"), html.Th("Source")])),
                              html.Tbody(rows)], bordered=False, hover=True, responsive=True, size="sm"))
    return out


def _stages_table(criteria: ModuleType) -> dbc.Table:
    bounds = getattr(criteria, "STAGES", ())
    rows = [html.Tr([html.Td(ui.stage_badge(name)), html.Td(f"{lo:.0f}" if lo else "0, or no score")])
            for lo, name in sorted(bounds)] if bounds else []
    return dbc.Table([html.Thead(html.Tr([html.Th("Stage"), html.Th("from a score of")])), html.Tbody(rows)],
                     size="sm", className="w-auto")


def _plain(text: str | None) -> str:
    """A registry text as one line of prose (no code quoting, no doubled spaces, Python's None said as "no
    score"); "" when there is none."""
    if not text or str(text).strip() in ("", "None"):
        return ""
    return re.sub(r"\bNone\b", "no score", " ".join(str(text).replace("`", "").split()))


def _weight(w: float) -> str:
    if not w:
        return "0 (shown, not counted)"
    return f"{w:g}"
