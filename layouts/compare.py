"""Compare `/compare?cities=a,b,c`: latest profile, criterion scores over time on shared axes, indicator gaps."""
from __future__ import annotations

from collections.abc import Sequence

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html
from dash.development.base_component import Component

import storage
from layouts import _as_of, palette
from layouts import _components as ui
from layouts import _figures as fig
from layouts import _words as words

URL_STORE = ui.url_sync("cmp")
dash.register_page(__name__, path="/compare", name="Compare", title="Compare · City data maturity",
                   draws_graphs=True)

DEFAULT_CITIES = 4  # preselected when the URL names none: the first scored cities (a city never scored shows nothing)


def layout(cities: str | None = None, as_of: str | None = None, **_query: str) -> html.Div:
    day = _as_of.parse(as_of)
    all_cities = _cities()
    keys = list(all_cities["key"]) if not all_cities.empty else []
    chosen = [k for k in (cities or "").split(",") if k in keys] or default_cities(keys, day)
    names = fig.name_map(all_cities) if keys else {}
    return ui.page(
        "Compare cities",
        ui.url_stores("cmp"),
        dcc.Store(id="cmp-as-of", data=day),
        dbc.Row(dbc.Col([dbc.Label("Cities", html_for="cmp-cities"),
                         ui.dropdown(id="cmp-cities", options=ui.choice_options(keys, names), value=chosen,
                                      multi=True, placeholder="choose cities")], lg=8), className="mb-3"),
        # the comparison comes with the page (a request and a render fewer before the charts); `render` redraws it
        # when the choice of cities changes or a run lands
        ui.loading(html.Div(body(chosen, day), id="cmp-body")),
        subtitle="Several cities side by side on the same absolute thresholds (scores are never rescaled "
                 "within a city, so they compare).",
    )


def default_cities(keys: list[str], day: str | None = None) -> list[str]:
    """The first DEFAULT_CITIES cities that have scores (by the end of `day`), in the cities' order."""
    try:
        latest = latest_scores(keys, day)
    except Exception:  # noqa: BLE001 - no schema yet: nothing is scored
        return []
    scored = set(latest["city_key"]) if not latest.empty else set()
    return [k for k in keys if k in scored][:DEFAULT_CITIES]


def latest_scores(keys: Sequence[str], day: str | None = None) -> pd.DataFrame:
    """storage.latest_scores as it stood at the end of `day` (today's when None), of these cities."""
    if day is None or not keys:
        return ui.query("latest_scores", storage.latest_scores)
    every = pd.concat([ui.city_scores(k) for k in keys], ignore_index=True)
    return _as_of.scores_at(every, day, latest=True)


def _cities() -> pd.DataFrame:
    try:
        return ui.query("cities", storage.cities)
    except Exception:  # noqa: BLE001 - no schema yet: the body says so
        return pd.DataFrame(columns=["key", "name"])


@callback(Output("cmp-body", "children"), Input("cmp-cities", "value"), Input("live-marker", "data"),
          State("cmp-as-of", "data"), prevent_initial_call=True)
def render(keys: list[str] | None, _marker: object, day: str | None = None) -> Component | list[Component]:
    return body(keys or [], day)


@callback(Output(URL_STORE, "data"), Input("cmp-cities", "value"), State("cmp-as-of", "data"))
def sync_url(keys: list[str] | None, day: str | None = None) -> str:
    return _as_of.href("", day, {"cities": ",".join(keys) if keys else None})


def body(keys: list[str], day: str | None = None) -> Component | list[Component]:
    if not keys:
        return ui.empty_state("Choose cities", "Pick two or more cities above to compare them.", id="cmp-empty")
    return ui.query("compare_view", _content, tuple(keys), day)


def _content(_engine: storage.Engine, keys: Sequence[str], day: str | None = None) -> list[Component]:
    """The comparison for the current run marker at the end of `day` (cached per choice of cities and day)."""
    keys = list(keys)
    cities = _cities()
    history = _as_of.until(ui.criterion_history(keys), day)
    latest = latest_scores(keys, day)
    names = fig.name_map(cities)
    titles = {k: m["title"] for k, m in ui.indicator_meta().items()}
    gaps = fig.indicator_gaps(latest, keys, titles)
    crit_titles = ui.criterion_titles()
    gaps = gaps.assign(criterion=[words.criterion_label(c, crit_titles) for c in gaps["criterion"]])
    overall = fig.overall_gap_row(latest, keys)
    cols = [ui.col("title", "Indicator", flex=2), ui.col("criterion", "Criterion", flex=2),
            *[ui.num_col(k, names.get(k, k)) for k in keys], ui.num_col("gap", "Gap (best − worst)", sort="desc")]
    colors = palette.city_colors(cities["key"])
    panels = fig.compare_panels(history, cities, keys, crit_titles)
    return [
        # the cities' legend for every chart below, in their stable colours
        html.Div([html.Span("Showing: ", className="text-muted"),
                  *[dbc.Badge([html.Span(className="legend-swatch", style={"backgroundColor": colors.get(k)}),
                               names.get(k, k)], color="light", text_color="dark", className="me-1 border",
                              id=f"cmp-chosen-{k}") for k in keys]], className="mb-2", id="cmp-chosen"),
        # where the cities stand now first, then how they got there
        html.H4("Latest profile", className="h5"),
        ui.scroll_box(dcc.Graph(id="cmp-profile", figure=fig.compare_profile(latest, cities, keys, crit_titles),
                                config={"displayModeBar": False, "responsive": True}), 720),
        html.H4("Overall and criterion scores over time", className="h5 mt-3"),
        html.Div([_panel(c, label, figure) for c, label, figure in panels]
                 or ui.empty_state("No scores yet", "No scores for the chosen cities yet."),
                 id="cmp-history", className="panel-grid"),
        html.H4("Indicator gaps", className="h5 mt-3"),
        html.P("The overall score, then the latest value of every indicator per city, largest gap first: where one "
               "city can learn from another.",
               className="small text-muted"),
        # the overall row pinned on top: it stays first whatever column the grid is sorted by
        ui.grid("cmp-gaps", gaps, cols, height=420, page_size=None,
                dashGridOptions={"pinnedTopRowData": ui.rows(overall)}),
    ]


def _panel(criterion: str, label: str, figure: dict) -> html.Div:
    """One criterion's small chart under its name (page text, so it wraps as the panel's width asks)."""
    return html.Div([html.Div(label, className="panel-title"),
                     dcc.Graph(id=f"cmp-history-{criterion}", figure=figure, style={"height": f"{fig.PANEL_HEIGHT}px"},
                               config={"displayModeBar": False, "responsive": True})],
                    className="panel")
