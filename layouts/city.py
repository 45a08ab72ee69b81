"""City `/city/<key>?criterion=DM4&indicator=…`: criteria cards, history, departments, fix-first, WWC status.

Every number is a link to the datasets behind it: a card's score opens the drill-down grid for that
criterion, a department's percentage opens the Datasets explorer filtered to it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html
from dash.development.base_component import Component

import storage
from layouts import _as_of, _print
from layouts import _components as ui
from layouts import _figures as fig
from layouts import _words as words

URL_STORE = ui.url_sync("city")
dash.register_page(__name__, path_template="/city/<key>", name="City", title="City · City data maturity",
                   draws_graphs=True)

ALL = "__all__"  # drill-down: every indicator of the selected criterion


def layout(key: str | None = None, criterion: str | None = None, indicator: str | None = None,
           as_of: str | None = None, **_query: object) -> Component:
    ctx = ui.context()
    known = {c.key for c in ctx.settings.cities}
    try:
        known |= set(ui.query("cities", storage.cities)["key"])
    except Exception:  # noqa: BLE001 - no schema yet: the body callback reports it
        pass
    if key not in known:
        return ui.page("Unknown city", ui.empty_state(
            f"No city with key “{key}”", ["Pick one on the ", dcc.Link("Overview", href="/"), "."], color="warning",
            id="city-unknown"))
    day = _as_of.parse(as_of)
    criteria = _criteria(key, day)
    crit = criterion if criterion in criteria else default_criterion(key, day)
    ind_options, ind_value = _indicator_options(key, crit, indicator, day)
    return ui.page(
        ctx.city_name(key),
        dcc.Store(id="city-key", data=key),
        dcc.Store(id="city-as-of", data=day),
        ui.url_stores("city"),
        # the header and the cards come with the page (a request and a render fewer before them); `render_summary`
        # redraws them when a run lands. They are the page's main content: its graphs and grids draw after they have
        # been painted (ui.first), each grid in tasks of its own (assets/grids.js)
        ui.first(ui.loading(html.Div(summary(key, day), id="city-summary"), id="city-summary-loading"),
                 shown="#city-cards, #city-empty"),
        html.H4("Maturity over time", className="h5 mt-2"),
        dbc.Row([
            dbc.Col([dbc.Label("Criterion", html_for="city-criterion"),
                     ui.dropdown(id="city-criterion", options=ui.choice_options(criteria, _titles_with_ids()),
                                  value=crit, clearable=False)], md=4),
            dbc.Col([dbc.Label("Datasets behind", html_for="city-indicator"),
                     ui.dropdown(id="city-indicator", options=ind_options, value=ind_value, clearable=False)],
                    md=5),
        ], className="g-2 mb-2"),
        ui.loading(ui.scroll_box(dcc.Graph(id="city-history", config={"displayModeBar": False, "responsive": True}),
                                 ui.PHONE_CHART_PX)),
        # tabIndex -1: the drill-down takes the focus when a score is clicked (keyboard and screen-reader users
        # land on it); the caption is a polite live region, so the new list is announced
        html.H4("Datasets behind the number", className="h5 mt-3", id="city-drill-title", tabIndex=-1),
        html.Div(id="city-drill-caption", className="small text-muted mb-1", role="status",
                 **{"aria-live": "polite"}),  # type: ignore[arg-type]  # Dash types no aria-* props
        dcc.Store(id="city-drill-focus"), dcc.Store(id="city-drill-focus-sink"),
        ui.loading(html.Div(id="city-drill")),
        ui.loading(html.Div(id="city-details"), id="city-details-loading"),
        subtitle=html.Div([html.Span(subtitle(key, day), id="city-subtitle"),
                           html.A("Print view", href=_print.href(key, day), id="city-print",
                                  className="ms-2 d-print-none",
                                  title="a printable single-column page with the same numbers")]),
    )


# --- time travel: ?as_of=YYYY-MM-DD shows the page as it stood at the end of that day (layouts/_as_of.py) ------

def _scores(key: str, day: str | None = None) -> pd.DataFrame:
    return _as_of.scores_at(ui.city_scores(key), day)


def _latest(key: str, day: str | None = None) -> pd.DataFrame:
    return ui.latest_city(key) if day is None else _as_of.scores_at(ui.city_scores(key), day, latest=True)


def _runs(key: str, day: str | None = None) -> pd.DataFrame:
    return _as_of.until(ui.city_runs(key), day)


def _cached(name: str, fn: Callable[..., Any], key: str, day: str | None) -> Any:
    """ui.city_query of `fn(engine, key, day)`; a past day is cached under its own name."""
    if day is None:
        return ui.city_query(name, fn, key)
    return ui.city_query(f"{name}@{day}", lambda engine, k: fn(engine, k, day), key)


def _failing(key: str, day: str | None = None) -> pd.DataFrame:
    if day is None:
        return ui.city_failing_cached(key)
    return ui.city_query(f"failing@{day}", lambda engine, k: ui.city_failing(engine, k, _as_of.end_of_day(day)),
                         key)


def _criteria(key: str, day: str | None = None) -> list[str]:
    hist = _scores(key, day)
    return fig.criteria_order(fig.criterion_rows(hist)["criterion"]) if not hist.empty else []


def default_criterion(key: str, day: str | None = None) -> str | None:
    """The weakest scored criterion: what a CDO would look at first (cached: the page's layout asks for it at
    every visit, and working it out from the score history was ~60% of that layout's time, ~50 ms on the demo)."""
    return cast(str | None, _cached("default_criterion", _default_criterion, key, day))


def _default_criterion(_engine: storage.Engine, key: str, day: str | None = None) -> str | None:
    cards = fig.criterion_cards(_scores(key, day))
    if cards.empty:
        return None
    scored = cards.dropna(subset=["value"])
    return (scored.sort_values(["value", "criterion"]).iloc[0] if len(scored) else cards.iloc[0])["criterion"]


def _indicator_options(key: str, criterion: str | None, current: str | None,
                       day: str | None = None) -> tuple[list[dict], str | None]:
    hist = _scores(key, day)
    titles = {k: m["title"] for k, m in ui.indicator_meta().items()}
    inds = sorted(k for k in hist.loc[hist["criterion"] == criterion, "indicator"].unique() if k) \
        if criterion and not hist.empty else []
    options = [{"label": f"all of {criterion}" if criterion else "all", "value": ALL}] + ui.choice_options(inds, titles)
    return options, (current if current in inds else ALL)


def _titles_with_ids() -> dict[str, str]:
    return {c: f"{c} · {t}" for c, t in ui.criterion_titles().items()}


# --- callbacks ------------------------------------------------------------------------------------------

@callback(Output("city-summary", "children"), Output("city-subtitle", "children"),
          Input("live-marker", "data"), State("city-key", "data"), State("city-as-of", "data"),
          prevent_initial_call=True)
def render_summary(_marker: object, key: str, day: str | None = None) -> Any:
    return summary(key, day), subtitle(key, day)


# Departments, Fix first and the WWC grid below the chart come in their own answer: the browser draws the cards
# first, then these three grids in a separate task, instead of one long main-thread task for everything.
@callback(Output("city-details", "children"), Input("live-marker", "data"), State("city-key", "data"),
          State("city-as-of", "data"))
def render_details(_marker: object, key: str, day: str | None = None) -> list[Component]:
    return details(key, day)


@callback(Output("city-history", "figure"), Output("city-indicator", "options"), Output("city-indicator", "value"),
          Input("city-criterion", "value"), Input("live-marker", "data"),
          State("city-key", "data"), State("city-indicator", "value"), State("city-as-of", "data"))
def render_history(criterion: str | None, _marker: object, key: str, current: str | None,
                   day: str | None = None) -> tuple[Any, list[dict], str | None]:
    return history(key, criterion, current, day)


@callback(Output("city-drill", "children"), Output("city-drill-caption", "children"),
          Input("city-criterion", "value"), Input("city-indicator", "value"), Input("live-marker", "data"),
          State("city-key", "data"), State("city-as-of", "data"))
def render_drill(criterion: str | None, indicator: str | None, _marker: object, key: str,
                 day: str | None = None) -> tuple[Component, str]:
    return drill(key, criterion, indicator, day)


@callback(Output("city-criterion", "value"), Output("city-drill-focus", "data"),
          Input({"type": "city-score", "criterion": dash.ALL}, "n_clicks"), State("city-drill-focus", "data"),
          prevent_initial_call=True)
def open_drill(clicks: list[int | None], focus: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """A click on a card's score shows that criterion's datasets and asks the browser to bring the list into view."""
    trigger = dash.ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks):  # cards redrawn (n_clicks back to None): no click
        raise dash.exceptions.PreventUpdate
    return trigger["criterion"], {"n": int((focus or {}).get("n", 0)) + 1, "criterion": trigger["criterion"]}


# Scroll to the drill-down and focus its heading: at once on the click, and again when the new list arrives
# (the list above it may have changed height meanwhile). Only after a click, never on a page load.
dash.clientside_callback(
    """function(focus, _caption) {
        var nu = window.dash_clientside.no_update;
        if (!focus) { return nu; }
        var trig = (window.dash_clientside.callback_context.triggered || [])[0] || {};
        var fromClick = trig.prop_id === "city-drill-focus.data";
        if (!fromClick && window.__cityDrillPending !== focus.n) { return nu; }
        window.__cityDrillPending = fromClick ? focus.n : null;
        var el = document.getElementById("city-drill-title");
        if (el) { el.scrollIntoView({block: "start"}); el.focus({preventScroll: true}); }
        return nu;
    }""",
    Output("city-drill-focus-sink", "data"), Input("city-drill-focus", "data"), Input("city-drill-caption", "children"))


@callback(Output(URL_STORE, "data"), Input("city-criterion", "value"), Input("city-indicator", "value"),
          State("city-as-of", "data"))
def sync_url(criterion: str | None, indicator: str | None, day: str | None = None) -> str:
    q = {"criterion": criterion} if criterion else {}
    if indicator and indicator != ALL:
        q["indicator"] = indicator
    if day:
        q["as_of"] = day  # a past view stays past when its controls change
    return "?" + urlencode(q) if q else ""


# --- page content (plain functions of the database: tests and the benchmark call them) ------------------

def subtitle(key: str, day: str | None = None) -> Any:
    runs = _runs(key, day)
    if runs.empty:
        return "No harvest yet."
    latest = runs.drop_duplicates("portal_key")
    parts: list[Component | str] = []
    for r in latest.itertuples(index=False):
        imported = getattr(r, "source", None) == "import"
        when = ui.fmt_time(cast(pd.Timestamp, r.as_of if imported else r.finished_at))
        note = " (imported snapshot)" if imported else ""
        parts += [f"{r.portal_key}: ", ui.status_badge(str(r.status)), f"{when}{note}  "]
    return parts


def summary(key: str, day: str | None = None) -> list[Component]:
    hist = _scores(key, day)
    runs = _runs(key, day)
    out = []
    last = runs.drop_duplicates("portal_key") if not runs.empty else runs
    for r in last.itertuples(index=False) if not last.empty else ():
        if r.status == "failed":
            out.append(dbc.Alert([html.Strong(f"{r.portal_key} is failing: "), str(r.error or "no reason recorded"),
                                  ". Scores below come from the last good run."], color="warning"))
        elif r.status == "suspect":
            out.append(dbc.Alert([html.Strong(f"{r.portal_key}'s latest run is suspect: "),
                                  str(r.suspect_reason or ""), ". Datasets missing from it are not counted as "
                                  "deletions, and its scores are not drawn as the city's state."], color="warning"))
        elif r.status == "empty":
            out.append(dbc.Alert([html.Strong(f"{r.portal_key}'s latest run came back empty: "),
                                  str(r.suspect_reason or ""), ". Scores below come from the last complete crawl."],
                                 color="warning"))
    # with time, not with a run: never cached; a past view is judged at the end of its day
    out += ui.stale_banner(ui.stale_data([key], day), id="city-stale")
    if hist.empty:
        out.append(ui.empty_state("Not scored yet", ["Harvest this city with ",
                                                     ui.cmd(f"maturity harvest --city {key}"),
                                                     " or load the demo with ", ui.cmd("maturity demo"), "."],
                                  id="city-empty"))
        return out
    # the header ranks the city among all cities: cached per run marker (another city's run moves the rank)
    out.append(ui.query("city_overall_view", _overall, key, day))
    out.append(_cached("cards_view", _cards, key, day))
    return out


def _overall(_engine: storage.Engine, key: str, day: str | None = None) -> Any:
    """The city header: overall score and stage (indicators.criteria's one rule), rank among the scored cities
    (the overview's inputs: every city's complete runs up to `day`), trend with the flagged scorings marked,
    change since ~30/90 days."""
    o = fig.overall_summary(_as_of.until(ui.city_criterion_history(key), day))
    if o is None:
        return None
    rank = fig.rank_text(ranks(day), key)
    flagged = fig.flagged_overall(ui.flagged_history([key], day))
    return html.Div([
        html.Span("Overall ", className="me-1"),
        html.Span(f"{o['score']:.0f}", className="kpi me-2", id="city-overall-score"),
        ui.stage_badge(o["stage"], id="city-overall-stage"),
        html.Span(rank, className="small fw-semibold", id="city-rank") if rank else None,
        ui.overall_trend(o["series"], flagged=flagged, id="city-overall-trend", width=160, height=36),
        # the changes and the date as one run of text: on a phone it wraps as a paragraph, not one line (and a
        # flex row's gap) per item; the rows of the header are close together (row-gap-1) for the same reason
        html.Span([html.Span("about 30 days: ", className="text-muted"),
                   html.Span(o["since_30d"], id="city-overall-30"), html.Span(" · ", className="text-muted"),
                   html.Span("about 90 days: ", className="text-muted"),
                   html.Span(o["since_90d"], id="city-overall-90"), html.Span(" · ", className="text-muted"),
                   html.Span(f"scored as of {ui.fmt_time(o['as_of'])}", className="text-muted")],
                  className="small", id="city-overall-since"),
    ], id="city-overall", className="d-flex flex-wrap align-items-center column-gap-3 row-gap-1 mb-3")


def ranks(day: str | None = None) -> pd.DataFrame:
    """`_figures.overall_ranks` of every city from its complete runs up to the end of `day`."""
    keys = tuple(ui.query("cities", storage.cities)["key"])
    return fig.overall_ranks(fig.city_score_history(_as_of.until(ui.criterion_history(keys), day)))


def _cards(_engine: storage.Engine, key: str, day: str | None = None) -> dbc.Row:
    """The criterion cards (cached per city stamp: they change only with the city's own runs)."""
    cards = fig.criterion_cards(_scores(key, day))
    titles = ui.criterion_titles()
    notes = criterion_notes(key, day)
    rows: list[Any] = list(cards.itertuples(index=False))  # criterion_cards rows
    return dbc.Row([dbc.Col(_card(key, c, titles.get(c.criterion, ""), notes.get(c.criterion)), xs=12, sm=6, lg=4,
                            xl=3, className="mb-3") for c in rows], id="city-cards")


def criterion_notes(key: str, day: str | None = None) -> dict[str, str]:
    """Criterion → what its score measures, for criteria that need a document metadata cannot show (OD1's policy)."""
    from indicators import criteria

    wwc = criteria.wwc_criteria()
    needs = frozenset(wwc.loc[wwc["metadata"] == "partial", "criterion"])
    meta = ui.indicator_meta()
    inds = fig.indicator_rows(_latest(key, day))
    out = {}
    for c in needs:
        shown = [meta.get(k, {}).get("title", k) for k in sorted(inds.loc[inds["criterion"] == c, "indicator"])] \
            if not inds.empty else []
        note = words.metadata_note(c, shown, needs)
        if note:
            out[c] = note
    return out


def details(key: str, day: str | None = None) -> list[Component]:
    """Departments, fix-first list and WWC status (below the chart)."""
    if _scores(key, day).empty:
        return []
    # departments and fix-first change only with the city's runs: cached per city stamp; the WWC status
    # also reads manual evidence, which an edit changes without a run, so it is built every time
    return _cached("details_view", _details, key, day) + _statuses(key, day)


def _details(_engine: storage.Engine, key: str, day: str | None = None) -> list[Component]:
    datasets = _datasets(key, day)
    return _departments(key, datasets, day) + _fix_first(key, datasets, day) + _schema_errors(key, datasets, day)


def _schema_errors(key: str, datasets: pd.DataFrame, day: str | None = None) -> list[Component]:
    """data.json schema errors per dataset (GSA Project Open Data dashboard style): what "N schema error(s)" in
    the open-data scores is made of. Nothing for a city without a data.json check on record."""
    import storage.queries

    found = storage.queries.city_schema_checks(ui.context().engine, key, _as_of.end_of_day(day))
    checks = {k: c for k, c in found.items() if c is not None}
    if not checks:
        return []
    lines = []
    for portal_key, c in checks.items():
        with_errors = sum(1 for sid in c.errors if sid)
        lines.append(html.Li(f"{portal_key}: {c.entries:,} datasets checked against {c.schema}: "
                             f"{c.error_count:,} errors in {with_errors:,} datasets"
                             + (" and the document itself" if "" in c.errors else "")))
    rows = fig.schema_error_rows(checks, datasets)
    out = [html.H4("data.json schema errors", className="h5 mt-4", id="city-schema-title"),
           html.Ul(lines, className="small mb-1", id="city-schema-summary")]
    if rows.empty:
        return out + [dbc.Alert("No schema errors: every dataset validates.", color="success", id="city-schema-none")]
    kinds = fig.schema_error_kinds(rows)
    out.append(html.Div([html.Span("Commonest: ", className="text-muted"),
                         html.Ul([html.Li(f"{message} ({n:,} datasets)") for message, n in kinds.items()],
                                 className="mb-1")], className="small", id="city-schema-kinds"))
    cols = [ui.col("title", "Dataset", flex=2), ui.num_col("errors", "Errors shown", width=120),
            ui.col("messages", "Schema errors", flex=4, wrapText=True, autoHeight=True), ui.portal_link_col()]
    return out + [html.P("The first few messages per dataset (all are counted above), as the Project Open Data "
                         "dashboard lists them.", className="small text-muted"),
                  ui.grid("city-schema-errors", rows, cols, height=420, page_size=None)]


def _card(key: str, c: Any, title: str, note: str | None = None) -> dbc.Card:  # c: a criterion_cards row
    # a button, not a link: the page stays (no re-render), the drill-down below shows and takes the focus
    score = html.Button("–" if pd.isna(c.value) else f"{c.value:.0f}",
                        id={"type": "city-score", "criterion": c.criterion}, className="btn btn-link p-0 score-link",
                        title="show the datasets behind this score",
                        **{"aria-controls": "city-drill", "data-criterion": c.criterion})
    return dbc.Card(dbc.CardBody([
        # the whole title, wrapped: cut to one line it lost the words that tell criteria apart ("Data-Driven
        # Budget and Financial …" is BF1 and BF2)
        html.Div([html.Strong(c.criterion), html.Span(f" {title}", className="small text-muted")], title=title),
        html.Div([html.Span(score, className="score me-2"),
                  ui.stage_badge(c.stage)], className="d-flex align-items-center my-1"),
        html.Div(f"Δ 90 days {ui.fmt_delta(c.change_90d)}", className="small"),
        html.Div(note, className="small text-muted criterion-note", id=f"city-note-{c.criterion}") if note else None,
        html.Img(src=fig.sparkline_svg(c.series), alt=f"{c.criterion} score over time", className="sparkline",
                 style={"width": "100%", "height": "40px"}),
    ]), className="criterion-card h-100")


def _datasets(key: str, day: str | None = None) -> pd.DataFrame:
    return ui.city_datasets_at(key, day)


def _departments(key: str, datasets: pd.DataFrame, day: str | None = None) -> list[Component]:
    out = [html.H4("Departments", className="h5 mt-2")]
    b = fig.department_breakdown(datasets)
    if b.empty:
        return out + [html.P("No datasets in the latest harvest.", className="text-muted")]
    def link(department: str, **query: object) -> str:
        # the Datasets page at the same date: the catalog these percentages were counted on
        return _as_of.href("/datasets", day, {"cities": key, "department": department, **query})

    b = b.assign(stale_link=[link(d, freshness="overdue,delinquent") for d in b["department"]],
                 undoc_link=[link(d, doc_max=fig.UNDOCUMENTED_BELOW - 1) for d in b["department"]])
    cols = [ui.col("department", "Department", flex=2),
            ui.num_col("datasets", "Datasets"),
            ui.app_path_col("stale_pct", "Stale %", "stale_link", filter="agNumberColumnFilter"),
            ui.app_path_col("undocumented_pct", "Undocumented %", "undoc_link", filter="agNumberColumnFilter"),
            ui.num_col("views", "Views")]
    return out + [dbc.Row([
        dbc.Col(ui.scroll_box(dcc.Graph(id="city-departments", figure=fig.department_figure(b),
                                        config={"displayModeBar": False, "responsive": True}), ui.PHONE_CHART_PX),
                lg=6),
        dbc.Col(ui.grid("city-departments-grid", b, cols, height=360, page_size=None), lg=6),
    ])]


# A column whose text wraps, its row as tall as the text (AG Grid's autoHeight; not for the drill-down's infinite row
# model, which needs one row height; not for Fix first, where a dataset failing 15 indicators filled the box with one
# row). maturity.css's .cell-wrap sets the lines' height.
WRAP = {"wrapText": True, "autoHeight": True, "cellClass": "cell-wrap"}


def _fix_first(key: str, datasets: pd.DataFrame, day: str | None = None) -> list[Component]:
    failing = _failing(key, day)
    latest = _latest(key, day)
    meta = ui.indicator_meta()
    weights = ui.criterion_weights(meta, fig.indicator_rows(latest))
    denominators = {str(r.indicator): cast(float, r.denominator)
                    for r in fig.indicator_rows(latest).itertuples(index=False)}
    ranked = fig.fix_first(failing, datasets, weights, denominators)  # titles from `datasets`
    titles = {k: m["title"] for k, m in meta.items()}
    ranked["indicators"] = [words.indicator_titles(str(x).split(", "), titles) for x in ranked["indicators"]]
    cols = [ui.col("title", "Dataset", flex=3), ui.col("department", "Department", flex=2),
            ui.col("indicators", "Fails", flex=2), ui.col("reasons", "Why", flex=3),
            ui.num_col("points", "Points gained"), ui.num_col("usage", "Views + downloads"),
            ui.num_col("priority", "Priority", sort="desc"), ui.portal_link_col()]
    return [html.H4("Fix first", className="h5 mt-4"),
            html.P("Datasets ranked by the criterion points fixing them would gain × log10(10 + views + "
                   "downloads): fix the popular ones that lift the most first.", className="small text-muted"),
            ui.grid("city-fix-first", ranked, cols, height=380, page_size=None)]


def _statuses(key: str, day: str | None = None) -> list[Component]:
    # a past view judges that day's scoring with the evidence recorded by the end of that day
    st, est = ui.city_statuses(key, None if day is None else _latest(key, day), _as_of.end_of_day(day))
    if st is None:
        return []
    # title and evidence wrap (42 rows: cheap to measure): the evidence is the reason for the verdict, cut to one
    # line it showed "no portal metadata shows this: record a docume…"
    cols = [ui.col("criterion", "Criterion", width=100), ui.col("practice", "Practice"),
            ui.col("title", "Title", flex=2, **WRAP),
            ui.col("status", "Source", width=110), ui.col("met", "Met", width=90),
            ui.col("evidence", "Evidence", flex=4, **WRAP)]
    head = [html.H4("WWC certification criteria", className="h5 mt-4")]
    if est:
        head.append(dbc.Alert([html.Strong("Certification estimate (not a certification). "),
                               est.get("label") or ""], color="secondary", id="city-estimate"))
    return head + [ui.grid("city-statuses", st.assign(met=st["met"].map({True: "yes", False: "no"})), cols,
                           height=560, page_size=None)]


def history(key: str, criterion: str | None, current: str | None,
            day: str | None = None) -> tuple[Any, list[dict], str | None]:
    if not criterion:
        return fig.empty_figure("No scores yet."), [], ALL
    hist = _scores(key, day)
    meta = ui.indicator_meta()
    titles = {k: m["title"] for k, m in meta.items()}
    runs = _runs(key, day)
    # partial and empty crawls are marked on the chart; their scores are never on its lines (storage.queries)
    suspect = list(runs.loc[runs["status"].isin(["suspect", "empty"]), "as_of"]) if not runs.empty else []
    figure = fig.criterion_history(hist, criterion, titles=titles, suspect_times=suspect,
                                   flagged=_as_of.until(ui.city_flagged(key), day))
    options, value = _indicator_options(key, criterion, current, day)
    return figure, options, value


DRILL_BLOCK = 100  # rows per block the drill-down grid asks for (AG Grid's infinite row model)
DRILL_COLUMNS = ["source_id", "title", "department", "indicators", "reasons", "freshness", "doc_score", "views",
                 "landing_url"]


def drill(key: str, criterion: str | None, indicator: str | None, day: str | None = None) -> tuple[Component, str]:
    """The drill-down grid (its rows come block by block from `drill_page`) and its caption."""
    if not criterion:
        return ui.empty_state("Nothing scored yet", "Scores appear after the first harvest."), ""
    rows = drill_rows(key, criterion, indicator, day)
    meta = ui.indicator_meta()
    what = meta.get(indicator, {}).get("title", indicator) if indicator and indicator != ALL else f"all of {criterion}"
    if rows.empty:
        return (dbc.Alert(f"No failing datasets recorded for {what}.", color="success", id="city-drill-none"),
                f"{what}: nothing to fix.")
    cols = [ui.col("title", "Dataset", flex=3), ui.col("department", "Department", flex=2),
            ui.col("indicators", "Fails", flex=2), ui.col("reasons", "Why", flex=3),
            ui.word_col("freshness", "Freshness"), ui.num_col("doc_score", "Doc score"), ui.num_col("views", "Views"),
            ui.portal_link_col()]
    options = {"cacheBlockSize": DRILL_BLOCK, "infiniteInitialRowCount": min(len(rows), DRILL_BLOCK)}
    fail = "dataset fails" if len(rows) == 1 else "datasets fail"
    return (ui.grid("city-drill-grid", None, cols, height=fitted_height(len(rows), DRILL_HEIGHT_PX),
                    rowModelType="infinite", dashGridOptions=options),
            f"{len(rows):,} {fail} {what} in the latest scored run{f' as of {day}' if day else ''}; "
            "sort and filter the columns, open a dataset on its portal.")


DRILL_HEIGHT_PX = 460  # the drill-down's box with many rows: about eight of them in view, the rest a scroll away
GRID_CHROME_PX = 150  # a grid's header, filter row and pagination bar (AG Grid's quartz theme: 49 + 49 + ~50 px)
GRID_ROW_PX = 42  # the theme's row height


def fitted_height(rows: int, most: int) -> int:
    """A grid box as tall as its rows need, at most `most` px: one failing dataset is not a row above an empty box."""
    return min(most, GRID_CHROME_PX + GRID_ROW_PX * max(rows, 1))


@callback(Output("city-drill-grid", "getRowsResponse"), Input("city-drill-grid", "getRowsRequest"),
          State("city-key", "data"), State("city-criterion", "value"), State("city-indicator", "value"),
          State("city-as-of", "data"), prevent_initial_call=True)
def drill_block(request: dict[str, Any] | None, key: str, criterion: str | None, indicator: str | None,
                day: str | None = None) -> dict:
    return drill_page(key, criterion, indicator, day, request)


def drill_page(key: str, criterion: str | None, indicator: str | None, day: str | None,
               request: dict[str, Any] | None) -> dict:
    """The block of drill-down rows the grid asked for (its filters and sort applied) and how many match; a sorted
    or filtered view is kept in the city cache, so its next blocks are cut from it."""
    if not criterion:
        return ui.grid_page(pd.DataFrame(columns=DRILL_COLUMNS), request)
    how = ui.view_key(request)
    if not how:
        return ui.grid_block(drill_rows(key, criterion, indicator, day), request)
    one = indicator if indicator and indicator != ALL else ALL
    view = ui.city_query(f"drill:{criterion}:{one}@{day}:{how}",
                         lambda _engine, k: ui.grid_view(drill_rows(k, criterion, indicator, day), request), key)
    return ui.grid_block(view, request)


def drill_rows(key: str, criterion: str, indicator: str | None, day: str | None = None) -> pd.DataFrame:
    """DRILL_COLUMNS, one row per dataset failing the criterion (or its one indicator), by source_id: built once
    per (city, criterion, indicator, day) and kept in the city cache until the city's next run or scoring."""
    one = indicator if indicator and indicator != ALL else ALL
    return ui.city_query(f"drill:{criterion}:{one}@{day}",
                         lambda _engine, k: _drill_rows(k, criterion, one, day), key)


def _drill_rows(key: str, criterion: str, indicator: str, day: str | None) -> pd.DataFrame:
    failing = _failing(key, day)
    f = failing[failing["criterion"] == criterion] if not failing.empty else failing
    if indicator != ALL:
        f = f[f["indicator"] == indicator]
    if f.empty:
        return pd.DataFrame(columns=DRILL_COLUMNS)
    titles = {k: m["title"] for k, m in ui.indicator_meta().items()}
    g = failing_by_dataset(f, titles)
    datasets = _datasets(key, day)
    g = g.merge(datasets[["source_id", "title", "department", "freshness", "doc_score", "views", "landing_url"]]
                .drop_duplicates("source_id"), on="source_id", how="left")
    # an id that is not a dataset of the catalog (a key dataset the portal lacks, say): show the id itself
    g["title"] = g["title"].where(g["title"].notna(), g["source_id"])
    return g[DRILL_COLUMNS]


def failing_by_dataset(failing: pd.DataFrame, titles: dict[str, str]) -> pd.DataFrame:
    """Failing rows (indicator, source_id, reason; a dataset at most once per indicator) -> one row per dataset,
    by source_id: `indicators` = the titles of those it fails (words.indicator_titles), `reasons` = its distinct
    reasons in indicator order, "; "-joined.

    Worked out once per *pattern* (which indicators a dataset fails, for which reasons), not once per dataset:
    a criterion has a few indicators and reasons repeat, so 200,000 failing datasets share a few hundred
    patterns, and the per-dataset work stays in pandas.
    """
    order = list(pd.unique(failing["indicator"]))  # the scores' order: the order reasons are listed in
    reason_codes, reasons = pd.factorize(failing["reason"].astype(object))  # -1: no reason
    # per dataset and indicator: 0 = does not fail it, 1 = fails it without a reason, 2 + i = fails it for reasons[i]
    wide = (failing.assign(code=reason_codes + 2).pivot(index="source_id", columns="indicator", values="code")
            .reindex(columns=order).fillna(0).astype(int))
    pattern, patterns = pd.MultiIndex.from_frame(wide).factorize()
    texts = []
    for codes in patterns:
        failed = [(ind, c) for ind, c in zip(order, codes, strict=True) if c]
        why = dict.fromkeys(str(reasons[c - 2]) for _, c in failed if c > 1 and reasons[c - 2])
        texts.append((words.indicator_titles([ind for ind, _ in failed], titles), "; ".join(why)))
    per = pd.DataFrame(texts, columns=["indicators", "reasons"]).iloc[pattern]
    return pd.DataFrame({"source_id": wide.index.to_numpy(), "indicators": per["indicators"].to_numpy(),
                         "reasons": per["reasons"].to_numpy()})
