"""Datasets `/datasets?cities=…&department=…&freshness=…&doc_min=…&doc_max=…&licence=…&format=…`.

An explorer across cities' latest catalogs with filters and a CSV download of the filtered rows.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html
from dash.development.base_component import Component

import storage
from layouts import _as_of
from layouts import _components as ui
from layouts import _figures as fig
from maturity import csv_writer

URL_STORE = ui.url_sync("ds")
dash.register_page(__name__, path="/datasets", name="Datasets", title="Datasets · City data maturity",
                   shows_grids=True)

# The grid asks for rows block by block as the user pages or scrolls (AG Grid's infinite row model), filtered
# and sorted here: a 12,000-dataset explorer sends the browser a page's worth, never the whole table.
GRID_BLOCK = 100
FILTERS = ("cities", "department", "freshness", "licence", "format")
TYPE_TO_SEARCH = "any (type to search)"
# menu id -> the explorer column its options come from (normalized values: licence ids, not licence texts)
MENU_COLUMNS = {"ds-department": "department", "ds-licence": "license_id", "ds-format": "formats"}
Chosen = list[str] | None  # a multi-select menu's value (None before the first choice)
Range = list[int] | None  # the documentation slider's [low, high]


def _split(v: str | None) -> list[str]:
    return [x for x in (v or "").split(",") if x]


def layout(cities: str | None = None, department: str | None = None, freshness: str | None = None,
           doc_min: str | None = None, doc_max: str | None = None, licence: str | None = None,
           format: str | None = None, as_of: str | None = None, **_query: str) -> html.Div:
    ctx = ui.context()
    day = _as_of.parse(as_of)
    names = {c.key: c.name for c in ctx.settings.cities}
    lo, hi = _int(doc_min, 0), _int(doc_max, 100)
    # a department name may hold commas: take the parameter whole when it names a known department
    known = set(datasets_for(_split(cities), day)["department"].dropna()) if department else set()
    depts = [department] if department and department in known else _split(department)  # `and`: for mypy
    # the grid and its count come with the page (a request and a render fewer before the grid asks for its first
    # block, and no answer to a grid that has not asked yet); `render` redraws them when a menu changes
    grid, count = body(_split(cities), depts, _split(freshness), [lo, hi], _split(licence), _split(format), None, day)

    def multi(id_: str, label: str, value: list[str], options: Iterable[dict] = (), width: int = 4,
              placeholder: str = "any") -> dbc.Col:
        return dbc.Col([dbc.Label(label, html_for=id_),
                        ui.dropdown(id=id_, options=list(options), value=value, multi=True, placeholder=placeholder)],
                       md=6, lg=width)

    return ui.page(
        "Datasets",
        ui.url_stores("ds"),
        dcc.Store(id="ds-as-of", data=day),
        dbc.Row([
            multi("ds-cities", "City", _split(cities), ui.choice_options(names, names)),
            multi("ds-department", "Department", depts, ui.choice_options(depts), placeholder=TYPE_TO_SEARCH),
            multi("ds-freshness", "Freshness", _split(freshness), ui.choice_options(fig.FRESHNESS_STATES), width=4),
            multi("ds-licence", "Licence", _split(licence), ui.choice_options(_split(licence)),
                  placeholder=TYPE_TO_SEARCH),
            multi("ds-format", "Format", _split(format), ui.choice_options(_split(format)), placeholder=TYPE_TO_SEARCH),
            dbc.Col([dbc.Label("Documentation score", html_for="ds-doc"),
                     dcc.RangeSlider(id="ds-doc", min=0, max=100, step=1, value=[lo, hi],
                                     marks={0: "0", 50: "50", 100: "100"},
                                     tooltip={"placement": "bottom", "always_visible": False})], md=6, lg=4),
        ], className="g-2 mb-2"),
        dbc.Row([dbc.Col(html.Div(count, id="ds-count", className="small text-muted"), className="align-self-center"),
                 dbc.Col(dbc.Button("Download CSV", id="ds-download-btn", color="primary", size="sm"),
                         width="auto")], className="mb-2"),
        dcc.Download(id="ds-download"),
        dcc.Store(id="ds-grid-state"),  # the grid's own filters and sort as it last asked for rows
        ui.loading(html.Div(grid, id="ds-body")),
        subtitle="The latest catalog of every city (as of the chosen date, when one is). Filters stay in the "
                 "address bar, so a view can be shared.",
    )


def _int(v: str | None, default: int) -> int:
    try:
        return max(0, min(100, int(v or "")))  # "" as None: not a number
    except (TypeError, ValueError):
        return default


def all_datasets(day: str | None = None) -> pd.DataFrame:
    """Every city's explorer rows at the end of `day`, concatenated (cached per run marker, built from the per-city
    cache)."""
    return ui.query("all_datasets", _all_datasets, day)


def _all_datasets(_engine: storage.Engine, day: str | None = None) -> pd.DataFrame:
    return _concat(list(ui.query("cities", storage.cities)["key"]), day)


def datasets_for(cities: Sequence[str] | None, day: str | None = None) -> pd.DataFrame:
    """The chosen cities' rows (only those are read), or every city's when none is chosen; each city's latest
    catalog at the end of `day` (today's when None)."""
    return _concat(list(cities), day) if cities else all_datasets(day)


def _concat(keys: Iterable[str], day: str | None = None) -> pd.DataFrame:
    frames = [ui.city_datasets_at(k, day) for k in keys]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=fig.DATASET_COLUMNS)


def _keys(cities: Sequence[str] | None) -> list[str]:
    return list(cities) if cities else list(ui.query("cities", storage.cities)["key"])


def built(cities: Sequence[str] | None) -> bool:
    """Whether the explorer table of every chosen city (every city when none is chosen) is built."""
    return all(ui.city_cached("datasets", k) is not None for k in _keys(cities))


def unfiltered(department: Chosen, freshness: Chosen, doc: Range, licence: Chosen, formats: Chosen,
               request: dict[str, Any] | None) -> bool:
    """No menu filter, no filter or sort of the grid's own: the rows in the explorer table's own order."""
    request = request or {}
    return (not (department or freshness or licence or formats) and (not doc or list(doc) == [0, 100])
            and not request.get("filterModel") and not request.get("sortModel"))


def stored_rows(cities: Sequence[str] | None, start: int, stop: int) -> tuple[pd.DataFrame, int]:
    """Rows [start, stop) of the unfiltered explorer of the chosen cities, read straight from storage, and how many
    there are. Until a large city's table is built (a 300,000-dataset catalog takes minutes to decode), its
    unfiltered view pages through the stored catalog in the table's own order; filters and sorts wait for it."""
    engine = ui.context().engine
    frames, total = [], 0
    for k in _keys(cities):
        frame, n = ui.city_dataset_rows(engine, k, max(0, start - total), max(0, stop - total))
        total += n
        if len(frame):
            frames.append(frame)
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0] if frames else \
        pd.DataFrame(columns=fig.DATASET_COLUMNS)
    return rows, total


def filtered(cities: Chosen, department: Chosen, freshness: Chosen, doc: Range, licence: Chosen,
             formats: Chosen, day: str | None = None) -> pd.DataFrame:
    doc = doc or [0, 100]
    return fig.filter_datasets(datasets_for(cities or (), day), departments=department or (),
                               freshness=freshness or (), min_doc=doc[0] if doc[0] > 0 else None,
                               max_doc=doc[1] if doc[1] < 100 else None, licenses=licence or (),
                               formats=formats or ())


@callback(Output("ds-body", "children"), Output("ds-count", "children"),
          Input("ds-cities", "value"), Input("ds-department", "value"), Input("ds-freshness", "value"),
          Input("ds-doc", "value"), Input("ds-licence", "value"), Input("ds-format", "value"),
          Input("live-marker", "data"), State("ds-grid-state", "data"), State("ds-as-of", "data"),
          prevent_initial_call=True)
def render(cities: Chosen, department: Chosen, freshness: Chosen, doc: Range, licence: Chosen, formats: Chosen,
           _marker: object, grid_state: dict[str, Any] | None, day: str | None = None) -> tuple[Component, str]:
    return body(cities, department, freshness, doc, licence, formats, (grid_state or {}).get("filterModel"), day)


def _menu_options(menu: str) -> Callable[..., list[dict]]:
    @callback(Output(menu, "options"), Input("ds-cities", "value"), Input(menu, "value"),
              Input(menu, "search_value"), Input("live-marker", "data"), State("ds-as-of", "data"))
    def options(cities: Chosen, value: Chosen, search: str | None, _marker: object,
                day: str | None = None) -> list[dict]:
        return menu_options(MENU_COLUMNS[menu], cities, value, search, day)
    return options


for _menu in MENU_COLUMNS:
    _menu_options(_menu)


def menu_options(column: str, cities: Chosen, value: Chosen, search: str | None,
                 day: str | None = None) -> list[dict]:
    """A filter menu's options in the chosen cities: the chosen values, then the commonest matching `search`."""
    counts = ui.query("ds_counts", _counts, tuple(cities or ()), column, day)
    return fig.capped_options(counts, value or (), search)


def _counts(_engine: storage.Engine, cities: tuple[str, ...], column: str, day: str | None = None) -> pd.Series:
    return fig.value_counts(datasets_for(cities, day), column)


def body(cities: Chosen, department: Chosen, freshness: Chosen, doc: Range, licence: Chosen, formats: Chosen,
         grid_filter: dict[str, Any] | None = None, day: str | None = None) -> tuple[Component, str]:
    if (day is None and unfiltered(department, freshness, doc, licence, formats, {"filterModel": grid_filter})
            and not built(cities)):
        size = stored_rows(cities, 0, 0)[1]  # today's rows come from storage until the table is built
        return (_grid(size, grid_filter) if size else _empty()), count_label(size, size, bool(cities))
    scope = datasets_for(cities or (), day)
    if scope.empty:
        return _empty(), ""
    rows = filtered(cities, department, freshness, doc, licence, formats, day)
    shown = ui.grid_view(rows, {"filterModel": grid_filter})
    return _grid(len(shown), grid_filter), count_label(len(shown), len(scope), bool(cities))


def _empty() -> Component:
    return ui.empty_state("No datasets yet", ["Harvest with ", ui.cmd("maturity harvest"),
                                              " or load the demo with ", ui.cmd("maturity demo"), "."], id="ds-empty")


def _grid(shown: int, grid_filter: dict[str, Any] | None) -> Component:
    """The explorer grid (rows come from `grid_rows` block by block) for `shown` matching rows."""
    # The least widths add up to what a 1440 px screen holds, so every column, the portal link last, is in view
    # (a longer city name or title shows whole on hover).
    cols = [ui.city_col(minWidth=150, width=170), ui.col("title", "Title", minWidth=200, tooltipField="title"),
            ui.col("asset_type", "Type", width=100), ui.col("department", "Department", minWidth=140),
            ui.word_col("freshness", "Freshness", width=120), ui.word_col("declared_frequency", "Declared", width=120),
            ui.time_col("data_modified", "Data updated", width=150), ui.num_col("doc_score", "Doc score", width=110),
            ui.col("license", "Licence"), ui.col("formats", "Formats"),
            ui.num_col("views", "Views", width=100, minWidth=80), ui.portal_link_col()]
    options = {"cacheBlockSize": GRID_BLOCK, "infiniteInitialRowCount": min(shown, GRID_BLOCK)}
    # The grid is drawn anew when a menu filter changes; it keeps the filters typed into its own columns
    # (filterModel), so the two kinds of filter add up instead of one wiping the other.
    kw: dict[str, Any] = {"filterModel": grid_filter} if grid_filter else {}
    return ui.grid("ds-grid", None, cols, height=600, rowModelType="infinite", dashGridOptions=options, **kw)


def count_label(shown: int, scope: int, chosen_cities: bool) -> str:
    """"N of M datasets match": N = the rows the grid shows (menus and the grid's own filters), M = the scope."""
    return f"{shown:,} of {scope:,} datasets match" + (" in the chosen cities" if chosen_cities else "")


@callback(Output("ds-grid", "getRowsResponse"), Output("ds-count", "children", allow_duplicate=True),
          Output("ds-grid-state", "data"), Input("ds-grid", "getRowsRequest"),
          State("ds-cities", "value"), State("ds-department", "value"), State("ds-freshness", "value"),
          State("ds-doc", "value"), State("ds-licence", "value"), State("ds-format", "value"),
          State("ds-as-of", "data"), prevent_initial_call=True)
def grid_rows(request: dict[str, Any] | None, cities: Chosen, department: Chosen, freshness: Chosen, doc: Range,
              licence: Chosen, formats: Chosen, day: str | None = None) -> tuple[dict, str, dict[str, Any]]:
    """A block of the filtered rows, with the grid's own column filters and sort applied; the count follows them."""
    state = {k: (request or {}).get(k) for k in ("filterModel", "sortModel")}  # for the CSV and the next redraw
    if day is None and unfiltered(department, freshness, doc, licence, formats, request) and not built(cities):
        start = max(0, int((request or {}).get("startRow") or 0))
        rows, size = stored_rows(cities, start, max(start, int((request or {}).get("endRow") or start + GRID_BLOCK)))
        return {"rowData": ui.rows(rows), "rowCount": size}, count_label(size, size, bool(cities)), state
    page = ui.grid_block(shown_rows(cities, department, freshness, doc, licence, formats, request, day), request)
    return page, count_label(page["rowCount"], len(datasets_for(cities or (), day)), bool(cities)), state


def shown_rows(cities: Chosen, department: Chosen, freshness: Chosen, doc: Range, licence: Chosen, formats: Chosen,
               request: dict[str, Any] | None, day: str | None = None) -> pd.DataFrame:
    """The rows the grid shows, in its order: the menus' filters, then the grid's own filters and sort. Kept per
    view until the next run, so the blocks of a sorted 300,000-row view are cut from one sort, not a sort each."""
    menus = (tuple(cities or ()), tuple(department or ()), tuple(freshness or ()), tuple(doc or (0, 100)),
             tuple(licence or ()), tuple(formats or ()), day)
    return ui.query("ds_view", lambda _engine, *_: ui.grid_view(
        filtered(cities, department, freshness, doc, licence, formats, day), request), *menus, ui.view_key(request))


@callback(Output("ds-download", "data"), Input("ds-download-btn", "n_clicks"),
          State("ds-cities", "value"), State("ds-department", "value"), State("ds-freshness", "value"),
          State("ds-doc", "value"), State("ds-licence", "value"), State("ds-format", "value"),
          State("ds-grid-state", "data"), State("ds-as-of", "data"), prevent_initial_call=True)
def download(_n: int | None, cities: Chosen, department: Chosen, freshness: Chosen, doc: Range, licence: Chosen,
             formats: Chosen, grid_state: dict[str, Any] | None, day: str | None = None) -> dict[str, Any]:
    """The rows the grid shows, in its order: the menus, the grid's own column filters and its sort."""
    rows = ui.grid_view(filtered(cities, department, freshness, doc, licence, formats, day), grid_state)
    return dcc.send_data_frame(csv_frame(rows).to_csv, "datasets.csv", index=False)


def csv_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The download as written: the one CSV writer's cells (ISO UTC times, formula cells kept as text)."""
    return csv_writer.csv_frame(rows)


@callback(Output(URL_STORE, "data"),
          Input("ds-cities", "value"), Input("ds-department", "value"), Input("ds-freshness", "value"),
          Input("ds-doc", "value"), Input("ds-licence", "value"), Input("ds-format", "value"),
          State("ds-as-of", "data"))
def sync_url(cities: Chosen, department: Chosen, freshness: Chosen, doc: Range, licence: Chosen,
             formats: Chosen, day: str | None = None) -> str:
    q: dict[str, str | int]  # doc_min / doc_max are numbers
    q = {k: ",".join(v) for k, v in (("cities", cities), ("department", department), ("freshness", freshness),
                                     ("licence", licence), ("format", formats)) if v}
    if doc and doc[0] > 0:
        q["doc_min"] = doc[0]
    if doc and doc[1] < 100:
        q["doc_max"] = doc[1]
    return _as_of.href("", day, q)
