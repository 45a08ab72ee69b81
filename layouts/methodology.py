"""Methodology `/methodology`: rendered from the indicator registry and docstrings (one source of truth)."""
from __future__ import annotations

import dash
from dash import dcc, html

from layouts import _components as ui
from layouts import _figures as fig

dash.register_page(__name__, path="/methodology", name="Methodology", title="Methodology · City data maturity")


def layout(**_query):
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
        # Our own text (docstrings and registry), not portal text; HTML stays disabled regardless.
        dcc.Markdown(text(), id="meth-body", className="methodology", dangerously_allow_html=False),
        subtitle="Generated from the indicator registry: the formulas below are the code's own docstrings.",
    )


def text() -> str:
    """`indicators.methodology.markdown()`; until that module exists, the registry's own lines."""
    try:
        from indicators import methodology
    except ImportError:
        import indicators

        lines = ["# Indicators", ""]
        for i in indicators.REGISTRY:
            lines += [f"## {i.criterion} · {i.title} (`{i.key}`)", "", f"Formula: {i.formula}", "",
                      f"Source: {i.source}" if i.source else "", ""]
        return "\n".join(lines)
    return methodology.markdown()
