"""Shared bits of the pages: the city data they read (through the caches of `layouts._cache`), shareable URL
state, formatting and small UI pieces. The caches and the AG Grid row model live in `_cache` and `_grid`; their
names are re-exported here, so a page imports one module as `ui`.

Not a page (the `_` prefix keeps Dash from registering it).
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html
from dash.development.base_component import Component

import storage
from layouts import _as_of
from layouts import _figures as fig

# Re-exported: the pages import this one module as `ui` (the caches and the grid live in _cache and _grid).
from layouts._cache import CACHE_SIZE as CACHE_SIZE
from layouts._cache import CONTEXT_KEY as CONTEXT_KEY
from layouts._cache import RECENT_RUNS as RECENT_RUNS
from layouts._cache import Context as Context
from layouts._cache import city_cached as city_cached
from layouts._cache import city_query as city_query
from layouts._cache import city_stamps as city_stamps
from layouts._cache import clear_cache as clear_cache
from layouts._cache import context as context
from layouts._cache import marker as marker
from layouts._cache import query as query
from layouts._grid import TEXT_MIN_WIDTH_PX as TEXT_MIN_WIDTH_PX
from layouts._grid import app_path_col as app_path_col
from layouts._grid import as_shown as as_shown
from layouts._grid import city_col as city_col
from layouts._grid import col as col
from layouts._grid import grid as grid
from layouts._grid import grid_block as grid_block
from layouts._grid import grid_page as grid_page
from layouts._grid import grid_view as grid_view
from layouts._grid import num_col as num_col
from layouts._grid import portal_link_col as portal_link_col
from layouts._grid import readable as readable
from layouts._grid import rows as rows
from layouts._grid import time_col as time_col
from layouts._grid import view_key as view_key
from layouts._grid import word_col as word_col


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


def city_flagged(key: str) -> pd.DataFrame:
    """The city's flagged score rows (storage.scores shape, flag "partial" or "empty"): scorings of short crawls,
    stored but never on a line; the charts draw them as hollow points."""
    return city_query("flagged", _city_flagged, key)


def _city_flagged(engine: storage.Engine, key: str) -> pd.DataFrame:
    rows = storage.scores(engine, key, flagged=True)
    return rows[rows["flag"].notna()] if not rows.empty else rows


def city_flagged_criteria(key: str) -> pd.DataFrame:
    """The city's flagged criterion roll-up rows only (about a fifth of `city_flagged`): the overall trend lines."""
    return city_query("flagged_criteria", _city_flagged_criteria, key)


def _city_flagged_criteria(engine: storage.Engine, key: str) -> pd.DataFrame:
    rows = storage.criterion_scores(engine, key, flagged=True)
    return rows[rows["flag"].notna()] if not rows.empty else rows


def flagged_history(keys: Iterable[str], day: str | None = None) -> pd.DataFrame:
    """Flagged criterion roll-up rows of several cities, at/before the end of `day`."""
    frames = [_as_of.until(city_flagged_criteria(k), day) for k in keys]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["city_key", "as_of", "criterion", "indicator", "value", "stage", "flag"])


def latest_runs(keys: Iterable[str], day: str | None = None) -> pd.DataFrame:
    """Newest first, a few runs per city (enough for "last harvest" and its status per portal), at/before `day`."""
    frames = [_as_of.until(city_runs(k), day).head(10) for k in keys]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else storage.runs(context().engine, limit=0)


def now() -> datetime:
    """The page's clock (whether data is old depends on today; pure builders take it as an argument)."""
    return datetime.now(UTC)


def stale_data(keys: Iterable[str], day: str | None = None) -> pd.DataFrame:
    """`_figures.stale_portals` of these cities' portals with their configured schedules, judged at `now()`, or
    at the end of `day` on the runs up to then; `demo` marks a portal whose latest complete crawl is a snapshot
    of the bundled demo (`demo_snapshots`).

    Not cached with the page: data turns old with time alone, without any new run moving the marker.
    """
    keys = set(keys)
    schedules = {p.key: p.schedule for c in context().settings.cities if c.key in keys for p in c.portals}
    frames = [f for f in (_as_of.until(city_runs(k), day) for k in sorted(keys)) if not f.empty]
    runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["portal_key", "status"])
    return fig.stale_portals(runs, schedules, _as_of.clock(day, now()), recorded=demo_snapshots())


def demo_snapshots() -> frozenset[tuple[str, pd.Timestamp]]:
    """(portal key, as_of) of every snapshot of the bundled demo (maturity/demo_data/manifest.toml): a run dated
    exactly so for that portal is the demo's recording, not a harvest that stopped. Empty without a bundle."""
    return _demo_snapshots(context().settings)


@functools.lru_cache(maxsize=4)
def _demo_snapshots(settings: Any) -> frozenset[tuple[str, pd.Timestamp]]:
    from maturity import demo

    try:
        snaps = demo.manifest(demo.bundle_dir(settings))
    except demo.DemoError:
        return frozenset()
    return frozenset((s.portal_key, pd.Timestamp(s.as_of).tz_convert("UTC")) for s in snaps)


def stale_banner(stale: pd.DataFrame, names: Mapping[str, str] | None = None, *, id: str) -> list[Component]:
    """The old-data banners of `stale_data`: a warning naming each portal (or city, with `names`) whose latest
    complete harvest is older than `_figures.STALE_INTERVALS` times its schedule's interval (id `id`), and one note
    for portals showing the bundled demo's recordings (id `<id>-demo`, see `demo_banner`); [] when none is old."""
    out: list[Component] = []
    demo = stale[stale["demo"].astype(bool)] if "demo" in stale else stale.iloc[:0]
    real = stale.drop(demo.index)
    if len(demo):
        out.append(demo_banner(demo, id=f"{id}-demo", one_city=names is None))
    if real.empty:
        return out
    items = []
    r: Any  # an itertuples row
    for r in real.itertuples(index=False):
        who = names.get(str(r.city_key), str(r.city_key)) if names else str(r.portal_key)
        items.append(html.Li(f"{who}: latest complete harvest {r.last_complete:%Y-%m-%d} "
                             f"({fig.duration_words(r.age)} ago), scheduled every {fig.duration_words(r.interval)}"))
    out.append(dbc.Alert([html.Strong("Old data: "),
                          f"the latest complete harvest is older than {fig.STALE_INTERVALS} times the harvest "
                          "schedule, so the scores show the portal as it stood then. See Harvests for the runs.",
                          html.Ul(items, className="mb-0 small")], color="warning", id=id))
    return out


def demo_banner(demo: pd.DataFrame, *, id: str, one_city: bool = False) -> dbc.Alert:
    """One note for the portals that show the bundled demo (`stale_data` rows with `demo`): recorded in the
    past on purpose, so no warning per city; a live harvest that succeeds replaces them (and the note).
    `one_city`: the note of a city's own page ("This city shows …")."""
    first, last = min(demo["last_complete"]), max(demo["last_complete"])
    when = f"on {last:%Y-%m-%d}" if first.date() == last.date() else f"between {first:%Y-%m-%d} and {last:%Y-%m-%d}"
    n = demo["city_key"].nunique()
    who = "This city shows" if one_city else f"{n} {'city shows' if n == 1 else 'cities show'}"
    return dbc.Alert([html.Strong("Demo data: "),
                      f"{who} the bundled demo, real catalogs recorded {when}, so the scores show "
                      f"{'its portal as it stood' if one_city else 'those portals as they stood'} then, not today. "
                      f"{'Its' if one_city else 'Each city’s'} own harvests take over as they run (see Harvests)."],
                     color="info", id=id)


def as_of_banner(path: str, search: str) -> dbc.Alert | None:
    """The note of a past view (`?as_of=`), with a link back to the same page today; None for today's view and
    for pages that do not change with time (Methodology)."""
    text = dict(parse_qsl(search.lstrip("?"))).get(_as_of.PARAM)
    if not text or path.startswith("/methodology"):
        return None
    day = _as_of.parse(text)
    today = dcc.Link("Today's view", href=_as_of.href(path + search, None), id="as-of-today")
    if day is None:
        return dbc.Alert([f"“{text}” is not a date (YYYY-MM-DD) from {_as_of.EARLIEST_YEAR} on: showing today's "
                          "view. ", today], color="warning", id="as-of-banner-invalid")
    return dbc.Alert([html.Strong(f"As of {day}: "), "this page as it stood at the end of that day (UTC): the runs "
                      "and scores up to then. Links keep the date. ", today], color="info", id="as-of-note",
                     className="py-2")


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


def overall_trend(series: pd.DataFrame | None, *, flagged: pd.DataFrame | None = None, id: str | None = None,
                  width: int = 120, height: int = 32) -> Component | str:
    """The overall score over all complete runs as a small SVG line (numbers only, no portal text); "–" without.

    `flagged` (as_of, value, flag): overall scores of partial or empty crawls, drawn as hollow points off the line;
    the hover (the image's title) says they are not counted."""
    if series is None or not len(series):
        return "–"
    kw: dict[str, Any] = {"id": id} if id else {}
    n = len(series)
    what = f"overall score over {n} complete run{'s' if n != 1 else ''}"
    hover = what + "".join(f"\n○ {t:%Y-%m-%d}: {v:.0f}, {flag} crawl: not counted"
                           for t, v, flag in fig.flagged_points(flagged))
    return html.Img(src=fig.sparkline_svg(series, width=width, height=height, flagged=flagged),
                    className="overall-trend", alt=what, title=hover,
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


def page(title: str, *children: Any, subtitle: Any = None) -> html.Div:
    head: list[Component] = [html.H2(title, className="h3 mb-1")]
    if subtitle is not None:
        head.append(html.Div(subtitle, className="text-muted small mb-3"))
    return html.Div([html.Div(head, className="mb-2"), *children])


PHONE_CHART_PX = 600  # a chart's least width: its legend beside or under the plot, a department's name and bar


def scroll_box(graph: dcc.Graph, min_px: int) -> html.Div:
    """A chart that keeps at least `min_px` of width and scrolls sideways inside its box on a narrower screen: a
    phone squeezed small multiples, legends and department names into charts a few dozen pixels wide."""
    g: Any = graph  # Dash components take their props as attributes (not declared to the type checker)
    g.style = {**(getattr(g, "style", None) or {}), "minWidth": f"{min_px}px"}
    return html.Div(g, id=f"{g.id}-box", className="scroll-box", style={"overflowX": "auto"})


def first(*children: Any, shown: str | None = None) -> html.Div:
    """The page's main content: the page's other graphs and grids draw once it has been painted (assets/first.js).

    `shown`: the selector of what it holds once drawn, for content that is neither a grid nor a graph (the city page's
    cards); by default a grid row, a grid's "no rows" overlay or a drawn graph."""
    kw: dict[str, Any] = {"data-shown": shown} if shown else {}
    return html.Div(list(children), className="shows-first", **kw)


def loading(*children: Any, id: str | None = None) -> dcc.Loading:
    kw: dict[str, Any] = {"id": id} if id else {}
    # show_initially=False: content that comes with the page is shown at once; dcc.Loading's default hides it
    # behind a spinner at start-up until the loading state is known (~100-150 ms of a first visit)
    return dcc.Loading(html.Div(list(children)), type="default", delay_show=250, show_initially=False, **kw)


DROPDOWN_BOX_CLASS = "dropdown-box"  # maturity.css: the height of a closed dcc.Dropdown, reserved before it draws


def dropdown(**kw: Any) -> html.Div:
    """A dcc.Dropdown in a box as tall as the drawn dropdown. Dash loads the dropdown's code when a page first shows
    one, and until it arrives draws nothing in its place: the page below moved down 34 px when it came (after the
    Harvests run log's first rows, on a loaded machine)."""
    return html.Div(dcc.Dropdown(**kw), className=DROPDOWN_BOX_CLASS)


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


EXPLORER_CHUNK_ROWS = 5_000  # catalog rows decoded at a time (~17 KB each while decoded: ~90 MB); 15 columns kept
# Explorer columns whose values repeat (a handful of types, cadences, licences and states): kept as categories, a
# small integer a row instead of a string object a row. Department and formats stay text: the filters fill and
# split them with values that are not among their categories.
EXPLORER_CATEGORIES = ("city_key", "city", "asset_type", "freshness", "declared_frequency", "license", "license_id")


def city_datasets(engine: storage.Engine, key: str, as_of: datetime | None = None) -> pd.DataFrame:
    """The explorer rows (`_figures.dataset_table`) of a city's latest catalog (at/before `as_of`), aged at its
    latest run.

    Built chunk by chunk (storage.city_catalog_chunks): only one chunk of full records is in memory at a time,
    so a 300,000-dataset city costs its explorer table (~15 slim columns), not its decoded catalog.
    """
    stamp, names = _catalog_stamp(engine, key, as_of), fig.name_map(storage.cities(engine))
    # .copy(): dataset_table's columns can be views of the chunk's 2-D blocks, which would keep every decoded
    # record (descriptions, column lists) alive: ~7 KB a dataset kept instead of ~0.5 KB
    frames = [fig.dataset_table(chunk, stamp, names).copy()
              for chunk in storage.city_catalog_chunks(engine, key, as_of, rows=EXPLORER_CHUNK_ROWS)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=fig.DATASET_COLUMNS)
    out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for c in EXPLORER_CATEGORIES:
        out[c] = out[c].astype("category")
    return out


def city_dataset_rows(engine: storage.Engine, key: str, start: int, stop: int) -> tuple[pd.DataFrame, int]:
    """Rows [start, stop) of `city_datasets(engine, key)`, in its order, read straight from storage (only those
    records decoded), and how many rows it has: the unfiltered explorer before the city's table is built."""
    frame, total = storage.catalog_rows(engine, key, start, stop)
    return fig.dataset_table(frame, _catalog_stamp(engine, key, None), fig.name_map(storage.cities(engine))), total


def _catalog_stamp(engine: storage.Engine, key: str, as_of: datetime | None) -> pd.Timestamp:
    """What the explorer ages a city's catalog at: its newest finished run's as_of (at/before `as_of`)."""
    runs = storage.runs(engine, city_key=key)
    runs = runs[runs["status"] != "running"]
    if as_of is not None:
        runs = runs[pd.to_datetime(runs["as_of"], utc=True) <= pd.Timestamp(as_of)]
    return catalog_as_of(runs)


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


def city_datasets_at(key: str, day: str | None) -> pd.DataFrame:
    """The city's explorer rows as of the end of `day` (today's: `city_datasets_cached`), cached per city."""
    if day is None:
        return city_datasets_cached(key)
    return city_query(f"datasets@{day}", lambda engine, k: city_datasets(engine, k, _as_of.end_of_day(day)), key)


def city_failing_cached(key: str) -> pd.DataFrame:
    return city_query("failing", city_failing, key)


def city_failing(engine: storage.Engine, key: str, as_of: datetime | None = None) -> pd.DataFrame:
    """indicator, criterion, source_id, reason: the failing datasets of every latest indicator score (the latest
    at/before `as_of` when given). Built a column at a time from each score's evidence (a 300,000-dataset city
    fails its indicators hundreds of thousands of times: no dict per row); `reason` is categorical (reasons
    repeat: a few distinct texts over all those rows)."""
    latest = fig.indicator_rows(storage.latest_scores(engine, key) if as_of is None
                                else scores_as_of(storage.scores(engine, key), as_of, latest=True))
    frames = []
    ids: dict[str, str] = {}  # one string object per dataset id, however many indicators it fails
    for r in latest.itertuples(index=False):
        found = storage.score_evidence(engine, key, str(r.indicator), as_of)
        failing = (found[1].get("failing") or {}) if found else {}
        if failing:
            frames.append(pd.DataFrame({"indicator": r.indicator, "criterion": r.criterion,
                                        "source_id": [ids.setdefault(sid, sid) for sid in failing],
                                        "reason": pd.Categorical(list(failing.values()))}))
    if not frames:
        return pd.DataFrame(columns=["indicator", "criterion", "source_id", "reason"])
    out = pd.concat(frames, ignore_index=True)
    out["reason"] = out["reason"].astype("category")
    return out


def city_statuses(key: str, latest: pd.DataFrame | None = None, as_of: pd.Timestamp | None = None
                  ) -> tuple[pd.DataFrame, dict[str, Any]] | tuple[None, None]:
    """(statuses DataFrame, certification estimate dict) from indicators.criteria, or (None, None); `latest` = the
    scoring to judge (default the city's latest), `as_of` = a past view's moment: evidence recorded later is not
    counted."""
    from indicators import criteria

    latest = latest_city(key) if latest is None else latest
    rollup = criteria.stored_rollup(latest)
    if rollup.empty:
        return None, None
    from maturity import (
        pipeline,  # read-only: merges config.toml's [[cities.evidence]] with records made on the Evidence page
    )

    ctx = context()
    # not cached: edits do not move the marker
    manual = pipeline.manual_evidence(ctx.settings, ctx.engine, key,
                                      as_of=None if as_of is None else as_of.to_pydatetime())
    st = criteria.statuses(rollup, manual)
    return st, criteria.certification_estimate(st)
