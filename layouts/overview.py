"""Overview `/`: every configured city, criteria × cities by stage, overall stage, change, last harvest."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import dash
import dash.exceptions
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html
from dash.development.base_component import Component

import storage
from layouts import _as_of
from layouts import _components as ui
from layouts import _figures as fig

dash.register_page(__name__, path="/", name="Overview", title="Overview · City data maturity",
                   draws_graphs=True, without_grids=True)


def layout(as_of: str | None = None, **_query: str) -> html.Div:
    day = _as_of.parse(as_of)
    return ui.page(
        "Overview",
        dcc.Location(id="ov-nav", refresh="callback-nav"),
        dcc.Store(id="ov-as-of", data=day),
        # the body comes with the page (a request and a render fewer before the matrix); `render` redraws it when
        # a run lands
        ui.loading(html.Div(body(day), id="ov-body"), id="ov-loading"),
        subtitle="Every configured city against the What Works Cities criteria that portal metadata can show. "
                 "Click a city, or a cell of the matrix, for its criteria, history and the datasets behind "
                 "each number.",
    )


@callback(Output("ov-body", "children"), Input("live-marker", "data"), State("ov-as-of", "data"),
          prevent_initial_call=True)
def render(_marker: object, day: str | None = None) -> Component | list[Component]:
    return body(day)


@callback(Output("ov-nav", "href"), Input("ov-matrix", "clickData"), State("ov-as-of", "data"),
          prevent_initial_call=True)
def open_cell(click: dict[str, Any] | None, day: str | None = None) -> str:
    """A click on a matrix cell opens that city's page on that criterion (the datasets behind the number)."""
    return cell_href(click, day)


def cell_href(click: dict[str, Any] | None, day: str | None = None) -> str:
    try:
        point = (click or {})["points"][0]  # no click (None): KeyError, caught below
        key, criterion = point["customdata"], point["y"]
    except (TypeError, KeyError, IndexError):
        raise dash.exceptions.PreventUpdate from None
    return _as_of.href(f"/city/{quote(str(key))}", day, {"criterion": criterion})


def body(day: str | None = None) -> Component | list[Component]:
    """The overview's content at the end of `day` (today's when None): a function of the database only, so tests
    and the benchmark call it."""
    try:
        cities = ui.query("cities", storage.cities)
    except Exception as exc:  # noqa: BLE001 - a database without schema: say how to create it
        return ui.empty_state("The database is not ready", f"Reading it failed ({type(exc).__name__}).",
                              ["Create the schema with ", ui.cmd("maturity db upgrade"), " then load data with ",
                               ui.cmd("maturity demo"), " or ", ui.cmd("maturity harvest"), "."],
                              color="danger", id="ov-empty")
    if cities.empty:
        return ui.empty_state("No cities configured yet",
                              ["Add a ", ui.cmd("[[cities]]"), " table to config.toml (see README, “Adding a city”) "
                               "and start the dashboard again."], id="ov-empty")
    content = ui.query("overview_view", _content, tuple(cities["key"]), day)
    names = fig.name_map(cities)
    # with time, not with the marker: not cached
    return ui.stale_banner(ui.stale_data(cities["key"], day), names, id="ov-stale") + content


def _content(_engine: storage.Engine, keys: tuple[str, ...], day: str | None = None) -> list[Component]:
    """The overview for the current run marker at the end of `day` (cached: the live poll and every visitor share
    it)."""
    cities = ui.query("cities", storage.cities)
    history = _as_of.until(ui.criterion_history(keys), day)
    # the matrix reads the criterion rows of each city's latest scoring
    latest = ui.query("latest_scores", storage.latest_scores) if day is None else _as_of.latest_scoring(history)
    runs = ui.latest_runs(keys, day)
    table = fig.overview_table(cities, history, runs, ui.flagged_history(keys, day))
    parts = []
    if history.empty:
        parts.append(ui.empty_state(
            "No scores yet",
            ["Nothing has been harvested and scored. Load the bundled recorded history with ",
             ui.cmd("maturity demo"), ", or harvest the configured portals with ", ui.cmd("maturity harvest"),
             " (needs internet). This page updates by itself when the first run lands."], id="ov-empty"))
    failing = table[table["harvest_status"] == "failed"]
    if len(failing):
        parts.append(dbc.Alert([html.Strong("Portal failing: "),
                                ", ".join(failing["city"]),
                                ". Their scores are from the last good run; see ",
                                dcc.Link("Harvests", href=_as_of.href("/harvests", day)), " for the error."],
                               color="warning",
                               id="ov-failing"))
    parts.append(_city_table(table, day))
    parts.append(html.H4("Criteria × cities", className="h5 mt-4"))
    parts.append(_legend())
    # a phone scrolls the matrix sideways inside its box: squeezed to the screen, nine cities' columns were a few
    # pixels wide under unreadable rotated names
    width = MATRIX_LABELS_PX + MATRIX_CITY_PX * len(cities)
    parts.append(html.Div(dcc.Graph(id="ov-matrix", figure=fig.stage_matrix(latest, cities, ui.criterion_titles()),
                                    config={"displayModeBar": False, "responsive": True},
                                    style={"minWidth": f"{width}px"}),
                          id="ov-matrix-box", style={"overflowX": "auto"}))
    return parts


MATRIX_LABELS_PX = 240  # the matrix's row labels ("DM2 · Maintaining a Comprehensive…")
MATRIX_CITY_PX = 80  # a city's column: room for a two-digit score and its name above


def _legend() -> html.Div:
    stages = [html.Span([html.Span(className="legend-swatch", style={"backgroundColor": fig.STAGE_COLORS[s]}), s],
                        className="me-3 small") for s in fig.STAGES]
    # an empty cell: no score, or nothing to measure (distinct from the grey of a real 0, "not evident")
    empty = html.Span([html.Span(className="legend-swatch legend-empty"), "no value"], className="me-3 small")
    return html.Div([*stages, empty], className="mb-2", id="ov-legend")


WIDE = "d-none d-md-table-cell"  # a column a phone leaves out (Bootstrap's md breakpoint, 768 px): the table fits
PHONE = "d-md-none"  # what a phone shows instead, in the City cell


def _city_table(table: pd.DataFrame, day: str | None = None) -> dbc.Table:
    """One row per city. On a phone the columns after Trend are left out and the harvest status moves under the
    city's name; its reason (a suspect run's is a sentence) is one tap away, never a column of wrapped words."""
    heads = ("City", "Overall stage", "Score", "Trend")
    wide = ("Change, about 30 days", "Change, about 90 days", "Scored as of", "Last harvest", "Status")
    head = html.Thead(html.Tr([html.Th(h) for h in heads] + [html.Th(h, className=WIDE) for h in wide]))
    body = []
    r: Any  # a row of fig.overview_table (pandas types its cells as any scalar)
    for r in table.itertuples(index=False):
        body.append(html.Tr([
            html.Td([dcc.Link(r.city, href=_as_of.href(f"/city/{quote(str(r.city_key))}", day),
                              id=f"ov-city-{r.city_key}"),
                     # a phone: only a status that needs attention (not "ok"), under the name
                     _status(r.harvest_status, r.harvest_error, className=PHONE)
                     if r.harvest_status != "ok" else None]),
            html.Td(ui.stage_badge(r.stage)),
            html.Td("–" if r.score is None else f"{r.score:.0f}"),
            html.Td(ui.overall_trend(r.series, flagged=r.flagged_series, id=f"ov-trend-{r.city_key}")),
            html.Td(r.since_30d or "–", id=f"ov-change30-{r.city_key}", className=f"small {WIDE}"),
            html.Td(r.since_90d or "–", id=f"ov-change90-{r.city_key}", className=f"small {WIDE}"),
            html.Td(ui.fmt_time(r.scored_at) if r.scored_at is not None else "not scored", className=WIDE),
            html.Td(ui.fmt_time(r.last_harvest), className=WIDE),
            html.Td(_status(r.harvest_status, r.harvest_error), className=WIDE),
        ]))
    return dbc.Table([head, html.Tbody(body)], id="ov-cities", hover=True, responsive=True, size="sm",
                     className="align-middle")


def _status(status: str | None, reason: object, className: str = "") -> html.Div:
    """The harvest status badge; its reason (an error, a suspect run's why) folded under it, opened by a tap."""
    badge = html.Span(ui.status_badge(status), className="ov-status")
    if not reason:
        return html.Div(badge, className=className)
    return html.Div(html.Details([html.Summary([badge, html.Span("why", className="small text-muted")]),
                                 html.Small(str(reason), className="text-muted")], className="ov-why"),
                    className=className)
