"""Harvests `/harvests?city=…`: the run log per portal (status incl. suspect, counts, durations, errors)."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html
from dash.development.base_component import Component

import storage
from layouts import _as_of
from layouts import _components as ui
from layouts import _figures as fig

URL_STORE = ui.url_sync("hv")
RECENT = 500  # runs shown for all cities (newest first); pick a city for its whole log
dash.register_page(__name__, path="/harvests", name="Harvests", title="Harvests · City data maturity",
                   draws_graphs=True, shows_grids=True)


def layout(city: str | None = None, as_of: str | None = None, **_query: str) -> html.Div:
    ctx = ui.context()
    keys = [c.key for c in ctx.settings.cities]
    city = city if city in keys else None
    day = _as_of.parse(as_of)
    return ui.page(
        "Harvest runs",
        ui.url_stores("hv"),
        dcc.Store(id="hv-as-of", data=day),
        dbc.Row(dbc.Col([dbc.Label("City", html_for="hv-city"),
                         ui.dropdown(id="hv-city",
                                      options=ui.choice_options(keys, {c.key: c.name for c in ctx.settings.cities}),
                                      value=city, placeholder="all cities")], md=4),
                className="mb-3"),
        # the run log comes with the page (a request and a render fewer before the grid is asked for); `render`
        # redraws it when another city is chosen or a run lands
        ui.loading(html.Div(body(city, day), id="hv-body")),
        subtitle="Every harvest and import, newest first. A suspect run shrank sharply against the last good "
                 "run: its missing datasets are not treated as deletions. A failed run never hides the last good one.",
    )


@callback(Output("hv-body", "children"), Input("hv-city", "value"), Input("live-marker", "data"),
          State("hv-as-of", "data"), prevent_initial_call=True)
def render(city: str | None, _marker: object, day: str | None = None) -> Component | list[Component | None]:
    return body(city, day)


@callback(Output(URL_STORE, "data"), Input("hv-city", "value"), State("hv-as-of", "data"))
def sync_url(city: str | None, day: str | None = None) -> str:
    return _as_of.href("", day, {"city": city})


def body(city: str | None, day: str | None = None) -> Component | list[Component | None]:
    return ui.query("harvests_view", _content, city, day)


def past_runs(day: str) -> pd.DataFrame:
    """The newest RECENT runs of all cities dated (as_of) at or before the end of `day`, newest first."""
    frames = [_as_of.until(ui.city_runs(c.key), day) for c in ui.context().settings.cities]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return storage.runs(ui.context().engine, limit=0)
    runs = pd.concat(frames, ignore_index=True)
    return runs.sort_values(["as_of", "run_id"], ascending=False, ignore_index=True).head(RECENT)


def _content(_engine: storage.Engine, city: str | None, day: str | None = None) -> Component | list[Component | None]:
    """The run log for the current run marker at the end of `day` (cached per city choice and day)."""
    try:
        if city:
            runs = _as_of.until(ui.city_runs(city), day)
        else:
            runs = past_runs(day) if day else ui.query("runs", storage.runs, None, None, RECENT)
    except Exception as exc:  # noqa: BLE001 - no schema yet
        return ui.empty_state("The database is not ready", f"Reading it failed ({type(exc).__name__}); run ",
                              ui.cmd("maturity db upgrade"), color="danger")
    if runs.empty:
        return ui.empty_state("No harvest runs yet",
                              ["Run ", ui.cmd("maturity harvest"), " (needs internet) or ", ui.cmd("maturity demo"),
                               " to import the bundled recorded history."], id="hv-empty")
    counts = fig.run_status_counts(runs)
    kpis = dbc.Row([dbc.Col(dbc.Card(dbc.CardBody([html.Div(str(n), className="kpi", id=f"hv-count-{s}"),
                                                   html.Div([ui.status_badge(s), "runs"])])), xs=6, md=3)
                    for s, n in counts.items()], className="g-2 mb-3")
    log = fig.run_log(runs, fig.name_map(ui.query("cities", storage.cities)))
    note = html.P(f"The newest {RECENT} runs of all cities; choose a city for its whole log.",
                  className="small text-muted") if not city and len(runs) >= RECENT else None
    # What a CDO reads first comes first: whose run, when, how it ended and why. At 1440 px the log is wider than
    # the screen, and the reason, last, had been out of view.
    cols = [ui.num_col("run_id", "Run", width=90), ui.city_col(),
            ui.col("portal_key", "Portal", minWidth=150, tooltipField="portal_key"), ui.time_col("as_of", "As of"),
            ui.col("status", "Status", cellClassRules={
                "text-danger fw-bold": "params.value == 'failed'",
                "text-warning fw-bold": "params.value == 'suspect'"}),
            ui.col("problem", "Error / suspect reason", flex=3, tooltipField="problem"),
            ui.num_col("items", "Items"), ui.num_col("reported_total", "Portal total"),
            ui.num_col("new_versions", "New versions"), ui.num_col("removed", "Removed"),
            ui.num_col("repeats", "Repeats"), ui.num_col("duration_s", "Seconds"),
            ui.time_col("finished_at", "Finished"), ui.col("source", "Source")]
    return [kpis,
            # drawn after the log's first rows (ui.first): its box is as tall as the chart from the start, so the log
            # does not move down when it is drawn
            ui.scroll_box(dcc.Graph(id="hv-timeline", figure=fig.run_timeline(runs),
                                    style={"height": f"{fig.RUN_TIMELINE_PX}px"},
                                    config={"displayModeBar": False, "responsive": True}), ui.PHONE_CHART_PX),
            # the log is the page's main content: the timeline above it draws after its first rows are painted
            note, ui.first(ui.grid("hv-grid", log, cols, height=520))]
