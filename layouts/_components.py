"""Shared bits of the pages: where the database is, a marker-keyed query cache, and small UI pieces.

Not a page (the `_` prefix keeps Dash from registering it). Pages call `query(...)` instead of touching
`storage` directly when the result depends only on harvested data, so a page reads each table once per
new run instead of once per callback.
"""
from __future__ import annotations

import functools
import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import flask
import pandas as pd
from dash import dcc, html
from dash.development.base_component import Component

import storage
from layouts import _figures as fig
from maturity.settings import Settings

CONTEXT_KEY = "MATURITY_DASHBOARD"  # key of the Context on the Flask app's config
CACHE_SIZE = 1024  # results kept: ~6 per city (history, runs, datasets, failing, …) plus a few global ones


@dataclass(frozen=True)
class Context:
    """What the pages of one app need: the settings and the database URL (engines are cached by storage)."""

    settings: Settings
    url: str

    @property
    def engine(self) -> storage.Engine:
        return storage.open_db(self.url)

    def city_name(self, key: str) -> str:
        for c in self.settings.cities:
            if c.key == key:
                return c.name
        return key


def context() -> Context:
    return flask.current_app.config[CONTEXT_KEY]


_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # (url, marker or stamp, name, args) -> result
_markers: dict[str, tuple] = {}  # url -> the marker the global entries of `_cache` belong to
_lock = threading.Lock()


def marker() -> tuple:
    """storage.latest_run_marker, read at most once per request."""
    if flask.has_request_context():
        if "maturity_marker" not in flask.g:
            flask.g.maturity_marker = tuple(storage.latest_run_marker(context().engine))
        return flask.g.maturity_marker
    return tuple(storage.latest_run_marker(context().engine))


def query(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(engine, *args)`, cached until a new run or score lands (the marker changes).

    Callers must not mutate the result (DataFrames are shared between requests).
    """
    ctx = context()
    current = marker()
    key = (ctx.url, current, name, args)
    with _lock:
        if _markers.get(ctx.url) != current:
            # a new run or score landed: results of older markers are dead; drop them now so they do not
            # push the per-city entries (still valid) out of the LRU
            _markers[ctx.url] = current
            for k in [k for k in _cache if k[0] == ctx.url and k[1] != current]:
                del _cache[k]
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = fn(ctx.engine, *args)
    with _lock:
        # Only while `current` is still the newest marker: a request or the background refresher that read
        # the marker before a run landed must not file its result after the newer marker dropped the old ones.
        if _markers.get(ctx.url) == current:
            _cache[key] = value
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return value


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _epochs.clear()
        _markers.clear()


# Per-city cache. The global marker moves with every run of any city, but a city's history and catalog
# only change with its own runs and scores: keyed by the city's stamp (its newest run id among the
# recent runs, its latest scored as_of, and an epoch), 50 cities cost one reload per new run, not 50.
# A re-score of past dates (`maturity score --all`) moves the score marker without moving any city's
# latest as_of: that bumps the epoch and reloads every city.
RECENT_RUNS = 500  # newest runs scanned for the stamps; a city's new run is always among them
_epochs: dict[str, tuple] = {}


def city_stamps() -> dict[Hashable, tuple]:  # city key (pandas types it Hashable) -> stamp
    return query("city_stamps", _city_stamps)


def _city_stamps(engine: storage.Engine) -> dict[Hashable, tuple]:
    url = context().url
    run_id, score_id = marker()
    latest = query("latest_scores", storage.latest_scores)
    as_of = {k: str(v) for k, v in latest.groupby("city_key")["as_of"].max().items()} if not latest.empty else {}
    recent = storage.runs(engine, limit=RECENT_RUNS)
    last_run = recent.groupby("city_key")["run_id"].max().to_dict() if not recent.empty else {}
    with _lock:
        prev = _epochs.get(url)
        epoch = 0
        if prev is not None:
            prev_score_id, prev_as_of, epoch = prev
            if score_id != prev_score_id and as_of == prev_as_of:
                epoch += 1
        _epochs[url] = (score_id, as_of, epoch)
    keys = set(as_of) | set(last_run) | {c.key for c in context().settings.cities}
    return {k: (int(last_run.get(k, 0)), as_of.get(k), epoch) for k in keys}


def city_query(name: str, fn: Callable[..., Any], key: str) -> Any:
    """`fn(engine, key)` for one city, cached until that city's stamp changes (see above)."""
    ctx = context()
    stamp = city_stamps().get(key)
    cache_key = ("city", ctx.url, name, key, stamp)
    with _lock:
        if cache_key in _cache:
            _cache.move_to_end(cache_key)
            return _cache[cache_key]
    value = fn(ctx.engine, key)
    if city_stamps().get(key) != stamp:  # the city ran again meanwhile: the value is already stale, not filed
        return value
    with _lock:
        # this city's entries of older stamps are dead: drop them so they do not crowd the LRU
        for k in [k for k in _cache if k[0] == "city" and k[1] == ctx.url and k[3] == key and k[4] != stamp]:
            del _cache[k]
        _cache[cache_key] = value
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def warm(server: flask.Flask) -> None:
    """Fill the per-city caches (history, runs, catalog rows) so the first visitor does not pay for them.

    Run in a daemon thread at app start: ~0.2 s a city on SQLite. Errors are logged once, not raised
    (an empty or unreachable database is reported by the pages and /health instead).
    """
    import logging

    log = logging.getLogger(__name__)
    with server.app_context():
        try:
            keys = list(query("cities", storage.cities)["key"])
            for k in keys:
                city_criterion_history(k)
                city_runs(k)
                city_datasets_cached(k)
        except Exception as exc:  # noqa: BLE001 - a background nicety must never take the app down
            log.warning("dashboard cache warm-up stopped: %s", exc)
            return
    settle_gc()
    log.info("dashboard cache warm for %d cities", len(keys))


def settle_gc() -> None:
    """Collect once, then freeze what is left (the caches) out of the collector's future walks.

    The caches hold millions of objects (every city's explorer rows, catalogs, histories). Each automatic
    full collection walked them all: ~0.1 s of a request, at random, growing with the caches, and the
    main cause of the after-run p95s. Frozen objects are still freed by reference counting when a cache
    drops them; only a frozen reference cycle waits, until the next call unfreezes and collects it. Called
    by `warm`, i.e. in the background refresher once per landed run, never in a request.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def keep_warm(server: flask.Flask, period_s: float, stop: threading.Event | None = None) -> None:
    """Warm at start, then again whenever the run marker moves (checked every `period_s`).

    Without it a page nobody opened for a while pays, on its next view, for every city that ran since;
    with it each new run costs one city's reload in the background, right after it lands.
    """
    import time

    last = None
    while stop is None or not stop.is_set():
        with server.app_context():
            try:
                now = tuple(storage.latest_run_marker(context().engine))
            except Exception:  # noqa: BLE001 - database not reachable yet: try again next period
                now = None
        if now is not None and now != last:
            warm(server)
            last = now
        time.sleep(period_s)


def city_scores(key: str) -> pd.DataFrame:
    return city_query("scores", storage.scores, key)


def city_criterion_history(key: str) -> pd.DataFrame:
    return city_query("criterion_history", _criterion_history, key)


def _criterion_history(engine: storage.Engine, key: str) -> pd.DataFrame:
    # only the roll-up rows are read (storage.scores would bring ~5x as many indicator rows to filter out)
    return storage.criterion_scores(engine, key)


def criterion_history(keys: Iterable[str]) -> pd.DataFrame:
    """Criterion roll-up rows of several cities (for the overview and compare)."""
    frames = [city_criterion_history(k) for k in keys]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["city_key", "as_of", "criterion", "indicator", "value", "numerator", "denominator", "stage"])


def city_runs(key: str) -> pd.DataFrame:
    return city_query("runs", _city_runs, key)


def _city_runs(engine: storage.Engine, key: str) -> pd.DataFrame:
    return storage.runs(engine, city_key=key)


def latest_runs(keys: Iterable[str]) -> pd.DataFrame:
    """Newest first, a few runs per city (enough for "last harvest" and its status per portal)."""
    frames = [city_runs(k).head(10) for k in keys]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else storage.runs(context().engine, limit=0)


def now() -> datetime:
    """The page's clock (whether data is old depends on today; pure builders take it as an argument)."""
    return datetime.now(UTC)


def stale_data(keys: Iterable[str]) -> pd.DataFrame:
    """`_figures.stale_portals` of these cities' portals, at `now()`, with their configured schedules.

    Not cached with the page: data turns old with time alone, without any new run moving the marker.
    """
    keys = set(keys)
    schedules = {p.key: p.schedule for c in context().settings.cities if c.key in keys for p in c.portals}
    frames = [f for f in (city_runs(k) for k in sorted(keys)) if not f.empty]
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["portal_key", "status"])
    return fig.stale_portals(runs, schedules, now())


def stale_banner(stale: pd.DataFrame, names: Mapping[str, str] | None = None, *, id: str) -> dbc.Alert | None:
    """A warning naming each portal (or city, with `names`) whose latest complete harvest is older than
    `_figures.STALE_INTERVALS` times its schedule's interval; None when none is."""
    if stale.empty:
        return None
    items = []
    r: Any  # an itertuples row
    for r in stale.itertuples(index=False):
        who = names.get(str(r.city_key), str(r.city_key)) if names else str(r.portal_key)
        items.append(html.Li(f"{who}: latest complete harvest {r.last_complete:%Y-%m-%d} "
                             f"({fig.duration_words(r.age)} ago), scheduled every {fig.duration_words(r.interval)}"))
    return dbc.Alert([html.Strong("Old data: "),
                      f"the latest complete harvest is older than {fig.STALE_INTERVALS} times the harvest "
                      "schedule, so the scores show the portal as it stood then. See Harvests for the runs.",
                      html.Ul(items, className="mb-0 small")], color="warning", id=id)


# --- shareable state -----------------------------------------------------------------------------------

URL_SYNC_JS = """function(search) {
    if (typeof search === 'string' && search !== window.location.search) {
        window.history.replaceState(null, '', window.location.pathname + search);
    }
    return window.dash_clientside.no_update;
}"""


def url_sync(prefix: str) -> str:
    """Register the page's address-bar writer; returns the id of the store a page callback fills with "?a=b".

    replaceState fires no navigation event, so the pages router does not re-render: the view stays
    shareable while its controls change, without a reload.
    """
    import dash

    store = f"{prefix}-url"
    dash.clientside_callback(URL_SYNC_JS, dash.Output(f"{prefix}-url-sink", "data"), dash.Input(store, "data"))
    return store


def url_stores(prefix: str) -> html.Div:
    return html.Div([dcc.Store(id=f"{prefix}-url"), dcc.Store(id=f"{prefix}-url-sink")])


# --- formatting -----------------------------------------------------------------------------------------

def fmt_time(t: pd.Timestamp | str | None) -> str:
    if t is None or (not isinstance(t, str) and pd.isna(t)):
        return "never"
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC") if pd.Timestamp(t).tzinfo \
        else pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")


def fmt_delta(d: float | None) -> str:
    if d is None or pd.isna(d):
        return "–"
    return f"{d:+.1f}"


def overall_trend(series: pd.DataFrame | None, *, id: str | None = None, width: int = 120,
                  height: int = 32) -> Component | str:
    """The overall score over all complete runs as a small SVG line (numbers only, no portal text); "–" without."""
    if series is None or not len(series):
        return "–"
    kw: dict[str, Any] = {"id": id} if id else {}
    n = len(series)
    return html.Img(src=fig.sparkline_svg(series, width=width, height=height), className="overall-trend",
                    alt=f"overall score over {n} complete run{'s' if n != 1 else ''}",
                    title=f"overall score over {n} complete run{'s' if n != 1 else ''}",
                    style={"width": f"{width}px", "height": f"{height}px"}, **kw)


def stage_badge(stage: str | None, *, id: str | None = None) -> html.Span:
    color = fig.STAGE_COLORS.get(stage or "", fig.NO_SCORE_COLOR)
    text_color = "#fff" if stage in ("emerging", "leading", "not evident") else "#000"
    kw: dict[str, Any] = {"id": id} if id else {}
    return html.Span(stage or "not scored", className="badge stage-badge",
                     style={"backgroundColor": color, "color": text_color}, **kw)


STATUS_BADGE = {"ok": "success", "suspect": "warning", "failed": "danger", "running": "info"}


def status_badge(status: str | None) -> dbc.Badge:
    return dbc.Badge(status or "no run", color=STATUS_BADGE.get(status or "", "secondary"), className="me-1")


def empty_state(title: str, *lines: Any, color: str = "info", id: str | None = None) -> dbc.Alert:
    """An empty or error state that says what to do next."""
    kw: dict[str, Any] = {"id": id} if id else {}
    return dbc.Alert([html.H5(title, className="alert-heading"), *[html.P(x, className="mb-1") for x in lines]],
                     color=color, **kw)


def cmd(text: str) -> html.Code:
    return html.Code(text)


# --- grids ----------------------------------------------------------------------------------------------

def rows(frame: pd.DataFrame) -> list[dict]:
    """DataFrame → JSON-safe records: times as ISO text (sorts correctly), NaN/NaT as null."""
    out = as_shown(frame)
    out = out.astype(object).where(out.notna(), None)
    return out.to_dict("records")


def as_shown(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with times as the grids show them ("2022-07-23 00:00")."""
    out = frame.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d %H:%M").astype(object)
    return out


def grid_page(frame: pd.DataFrame, request: Mapping[str, Any] | None) -> dict:
    """One block for an infinite-model grid (`getRowsRequest` -> `getRowsResponse`): `frame` filtered by the
    grid's column filters, sorted by its sort model, rows [startRow, endRow) as `rows()` records, and the
    number of matching rows. Filters see the values as the grid shows them (times as text)."""
    request = request or {}
    view = grid_view(frame, request)
    start = max(0, int(request.get("startRow") or 0))
    end = max(start, int(request.get("endRow") or start + 100))
    return {"rowData": rows(view.iloc[start:end]), "rowCount": len(view)}


def grid_view(frame: pd.DataFrame, request: Mapping[str, Any] | None) -> pd.DataFrame:
    """`frame` with an AG Grid request's column filters (`filterModel`) and sort (`sortModel`) applied: the rows
    the grid shows, in its order (the page's count and CSV download use it too, so all three agree)."""
    request = request or {}
    models = {c: m for c, m in (request.get("filterModel") or {}).items()
              if c in frame.columns and isinstance(m, Mapping)}
    view = frame
    if models:
        shown = as_shown(frame[list(models)])  # as rows() sends them, so a text filter matches what the user sees
        keep = pd.Series(True, index=shown.index)
        for column, model in models.items():
            keep &= _filter_mask(shown[column], model)
        view = frame[keep.to_numpy()]
    sort = [s for s in request.get("sortModel") or () if isinstance(s, Mapping) and s.get("colId") in frame.columns]
    if sort:
        view = view.sort_values([s["colId"] for s in sort], ascending=[s.get("sort") != "desc" for s in sort],
                                key=_sort_key, na_position="last", kind="stable")
    return view


def _sort_key(s: pd.Series) -> pd.Series:
    """Text case-insensitively, as the grid's own sort does; numbers and times as they are."""
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return s
    return s.map(lambda v: v.lower() if isinstance(v, str) else v)


_TEXT_TESTS: dict[str, Callable[[pd.Series, str], pd.Series]] = {
    "contains": lambda v, f: v.str.contains(f, regex=False),
    "notContains": lambda v, f: ~v.str.contains(f, regex=False),
    "equals": lambda v, f: v == f, "notEqual": lambda v, f: v != f,
    "startsWith": lambda v, f: v.str.startswith(f), "endsWith": lambda v, f: v.str.endswith(f),
}
_NUMBER_TESTS: dict[str, Callable[[pd.Series, float, float], pd.Series]] = {
    "equals": lambda v, a, b: v == a, "notEqual": lambda v, a, b: v != a, "lessThan": lambda v, a, b: v < a,
    "lessThanOrEqual": lambda v, a, b: v <= a, "greaterThan": lambda v, a, b: v > a,
    "greaterThanOrEqual": lambda v, a, b: v >= a, "inRange": lambda v, a, b: (v >= a) & (v <= b),
}


def _filter_mask(values: pd.Series, model: Mapping[str, Any]) -> pd.Series:
    """AG Grid's text and number filter models (one condition, or several joined by AND/OR) as a row mask."""
    if "conditions" in model:
        masks = [_filter_mask(values, m) for m in model["conditions"] if isinstance(m, Mapping)]
        if not masks:
            return pd.Series(True, index=values.index)
        joined = masks[0]
        for m in masks[1:]:
            joined = (joined | m) if model.get("operator") == "OR" else (joined & m)
        return joined
    kind, test = model.get("filterType"), model.get("type")
    blank = values.isna() | (values.astype(str).str.strip() == "")
    if test == "blank":
        return blank
    if test == "notBlank":
        return ~blank
    if kind == "number" and test in _NUMBER_TESTS and model.get("filter") is not None:
        numbers = pd.to_numeric(values, errors="coerce")
        to = model.get("filterTo")
        return _NUMBER_TESTS[test](numbers, float(model["filter"]), float(to) if to is not None else 0.0).fillna(False)
    if kind == "text" and test in _TEXT_TESTS and model.get("filter") is not None:
        text = values.where(~values.isna(), "").astype(str).str.lower()
        return _TEXT_TESTS[test](text, str(model["filter"]).lower()).fillna(False)
    return pd.Series(True, index=values.index)  # a filter this server does not know narrows nothing


def col(field: str, header: str | None = None, **kw: Any) -> dict:
    d = {"field": field, "headerName": header or field.replace("_", " ")}
    d.update(kw)
    return d


def num_col(field: str, header: str | None = None, **kw: Any) -> dict:
    return col(field, header, filter="agNumberColumnFilter", type="rightAligned", **kw)


def portal_link_col(field: str = "landing_url", header: str = "on portal") -> dict:
    return col(field, header, cellRenderer="PortalLink", filter=False, sortable=False, width=110)


def app_path_col(field: str, header: str, path_field: str, **kw: Any) -> dict:
    """A cell linking to the in-app path (with its query) that the row's `path_field` holds, built server-side."""
    return col(field, header, cellRenderer="AppPath", cellRendererParams={"field": path_field}, **kw)


def grid(id: str, frame: pd.DataFrame | None, columns: Sequence[dict], *, height: int = 420,
         page_size: int | None = 50, **kw: Any) -> dag.AgGrid:
    """A sortable, filterable grid; cells are text (no HTML renderer touches portal strings). `frame` None: the
    rows come from the server block by block (pass rowModelType="infinite" and answer with `grid_page`)."""
    options: dict[str, Any] = {"animateRows": False, "enableCellTextSelection": True, "ensureDomOrder": True}
    if page_size:
        options.update(pagination=True, paginationPageSize=page_size,
                       paginationPageSizeSelector=[20, 50, 100, 500])
    options.update(kw.pop("dashGridOptions", {}))
    if frame is not None:
        kw["rowData"] = rows(frame)
    return dag.AgGrid(
        id=id, columnDefs=[readable(c) for c in columns],
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True,
                       "minWidth": 90},
        dashGridOptions=options, columnSize="responsiveSizeToFit", style={"height": f"{height}px"}, **kw)


TEXT_MIN_WIDTH_PX = 110  # per unit of flex: a text column never fits the screen by shrinking to a few letters


def readable(column: dict) -> dict:
    """A text column (one with `flex`) gets a minimum width, so on a phone the grid scrolls sideways instead of
    cutting every title to "Buildin…" (responsiveSizeToFit shrinks columns down to their minWidth)."""
    if "flex" in column and "minWidth" not in column:
        return {**column, "minWidth": min(300, TEXT_MIN_WIDTH_PX * int(column["flex"]))}
    return column


def page(title: str, *children: Any, subtitle: Any = None) -> html.Div:
    head: list[Component] = [html.H2(title, className="h3 mb-1")]
    if subtitle is not None:
        head.append(html.Div(subtitle, className="text-muted small mb-3"))
    return html.Div([html.Div(head, className="mb-2"), *children])


def loading(*children: Any, id: str | None = None) -> dcc.Loading:
    kw: dict[str, Any] = {"id": id} if id else {}
    return dcc.Loading(html.Div(list(children)), type="default", delay_show=250, **kw)


def choice_options(values: Iterable[Any], labels: Mapping[Any, Any] | None = None) -> list[dict]:
    labels = labels or {}
    return [{"label": str(labels.get(v, v)), "value": v} for v in values]


# --- derived, cached per run marker -----------------------------------------------------------------------

def criterion_titles() -> dict[str, str]:
    """WWC criterion id → title (the 2022 standard as the indicators package ships it)."""
    return dict(_criterion_titles())


@functools.lru_cache(maxsize=1)
def _criterion_titles() -> tuple[tuple[str, str], ...]:
    from indicators import criteria

    w = criteria.wwc_criteria()
    return tuple(zip(w["criterion"], w["title"], strict=True))


def indicator_meta() -> dict[str, dict]:
    """Indicator key → {title, criterion, weight, formula, source} from `indicators.REGISTRY`."""
    import indicators

    return {i.key: {"title": i.title, "criterion": i.criterion, "weight": float(i.weight), "formula": i.formula,
                    "source": i.source} for i in getattr(indicators, "REGISTRY", ())}


def criterion_weights(meta: Mapping[str, dict], latest_indicators: pd.DataFrame) -> dict[str, float]:
    """Each scored indicator's share of its criterion (weight / sum of weights of the criterion's scored ones)."""
    scored = latest_indicators.dropna(subset=["value"]) if not latest_indicators.empty else latest_indicators
    w = {str(r.indicator): meta.get(str(r.indicator), {}).get("weight", 1.0) for r in scored.itertuples(index=False)}
    crit = {str(r.indicator): str(r.criterion) for r in scored.itertuples(index=False)}
    totals: dict[str, float] = {}
    for k, c in crit.items():
        totals[c] = totals.get(c, 0.0) + w[k]
    return {k: (w[k] / totals[crit[k]] if totals[crit[k]] else 0.0) for k in w}


def city_datasets(engine: storage.Engine, key: str, as_of: datetime | None = None) -> pd.DataFrame:
    """The explorer rows (`_figures.dataset_table`) of a city's latest catalog (at/before `as_of`), aged at its
    latest run."""
    harvest = storage.city_harvest(engine, key, as_of)
    return fig.dataset_table(harvest.frame, catalog_as_of(harvest.runs))


def catalog_as_of(runs: pd.DataFrame) -> pd.Timestamp:
    """The newest run's as_of (storage.city_harvest(...).runs), now when there is none."""
    times = pd.to_datetime(runs["as_of"], utc=True).dropna() if len(runs) else ()
    return max(times) if len(times) else pd.Timestamp.now(tz="UTC")


def scores_as_of(scores: pd.DataFrame, as_of: datetime | None, *, latest: bool = False) -> pd.DataFrame:
    """Score rows (storage.scores shape) of scorings at/before `as_of` (all when None); with `latest`, only the
    newest such scoring's rows - what latest_scores returned on that date."""
    if scores.empty:
        return scores
    times = pd.to_datetime(scores["as_of"], utc=True)
    keep = scores[times <= pd.Timestamp(as_of)] if as_of is not None else scores
    if latest and len(keep):
        kept = times[keep.index]
        keep = keep[kept == kept.max()]
    return keep


def latest_city(key: str) -> pd.DataFrame:
    latest = query("latest_scores", storage.latest_scores)
    return latest[latest["city_key"] == key] if not latest.empty else latest


def city_datasets_cached(key: str) -> pd.DataFrame:
    return city_query("datasets", city_datasets, key)


def city_failing_cached(key: str) -> pd.DataFrame:
    return city_query("failing", city_failing, key)


def city_failing(engine: storage.Engine, key: str, as_of: datetime | None = None) -> pd.DataFrame:
    """indicator, criterion, source_id, reason: the failing datasets of every latest indicator score (the latest
    at/before `as_of` when given)."""
    latest = fig.indicator_rows(storage.latest_scores(engine, key) if as_of is None
                                else scores_as_of(storage.scores(engine, key), as_of, latest=True))
    rows = []
    for r in latest.itertuples(index=False):
        found = storage.score_evidence(engine, key, str(r.indicator), as_of)
        if not found:
            continue
        for sid, reason in (found[1].get("failing") or {}).items():
            rows.append({"indicator": r.indicator, "criterion": r.criterion, "source_id": sid, "reason": reason})
    return pd.DataFrame(rows, columns=["indicator", "criterion", "source_id", "reason"])


def city_statuses(key: str, latest: pd.DataFrame | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Any]] | tuple[None, None]:
    """(statuses DataFrame, certification estimate dict) from indicators.criteria, or (None, None); `latest` = the
    scoring to judge (default the city's latest)."""
    from indicators import criteria

    latest = latest_city(key) if latest is None else latest
    rollup = criteria.stored_rollup(latest)
    if rollup.empty:
        return None, None
    from maturity import (
        pipeline,  # read-only: merges config.toml's [[cities.evidence]] with records made on the Evidence page
    )

    ctx = context()
    manual = pipeline.manual_evidence(ctx.settings, ctx.engine, key)  # not cached: edits do not move the marker
    st = criteria.statuses(rollup, manual)
    return st, criteria.certification_estimate(st)
