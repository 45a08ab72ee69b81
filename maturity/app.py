"""The Dash dashboard: `create_app(settings)` builds it; `server` is the WSGI app (`gunicorn maturity.app:server`).

Pages live in `layouts/` (one module a page, Dash Pages); they read the database only through `storage`
queries and find it through the `layouts._components.Context` stored on the Flask config, so several
apps (tests, the benchmark) can live in one process on different databases.

Live updates: a `dcc.Interval` polls `storage.latest_run_marker` (two max() lookups) every
`[web] poll_seconds`; only when the marker changes does the `live-marker` store change, and the pages'
callbacks that take it as input redraw.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dash
import dash_bootstrap_components as dbc
import flask
import werkzeug
from dash import Input, Output, State, dcc, html
from dash.dash import _ID_CONTENT, _ID_DUMMY, _ID_LOCATION, _ID_STORE
from dash.exceptions import PreventUpdate

import layouts

if TYPE_CHECKING:  # for annotations only: create_app imports these when it runs
    from types import ModuleType

    from maturity.settings import Settings

PAGES = Path(layouts.__file__).resolve().parent
WARMED_KEY = "maturity.warmed"  # server.config: a threading.Event set when the start's cache warm-up is over
ASSETS = PAGES / "assets"
log = logging.getLogger(__name__)

# A date typed into the header's box takes effect this long after the last keystroke (a date box changes its value
# at each digit of the day and year: "2020-07-02" on the way to "2020-07-25").
AS_OF_DEBOUNCE_MS = 600
# Same checks as layouts._as_of.parse: a real date, year from 1990 (EARLIEST_YEAR); anything else is not a choice.
_AS_OF_VALID_JS = """function asOfDay(text) {
    var ok = typeof text === "string" && /^\\d{4}-\\d{2}-\\d{2}$/.test(text) && +text.slice(0, 4) >= 1990
        && !isNaN(Date.parse(text + "T00:00:00Z"));
    return ok ? text : "";
}"""
_AS_OF_LINKS_JS = """function(search) {
    ASOFDAY
    var day = asOfDay(new URLSearchParams(search || "").get("as_of"));
    var q = day ? "?as_of=" + day : "";
    return [day, "/" + q].concat(PATHS.map(function(h) { return h + q; }));
}"""
_AS_OF_NAV_JS = """function(value) {
    ASOFDAY
    var nu = window.dash_clientside.no_update;
    var day = asOfDay(value);
    if (value && !day) { return nu; }
    var p = new URLSearchParams(window.location.search);
    if ((p.get("as_of") || "") === day) { return nu; }
    if (day) { p.set("as_of", day); } else { p.delete("as_of"); }
    var s = p.toString().replace(/%2C/g, ",");
    return window.location.pathname + (s ? "?" + s : "");
}"""

NAV = (("Overview", "/"), ("Compare", "/compare"), ("Datasets", "/datasets"), ("Harvests", "/harvests"),
       ("Methodology", "/methodology"), ("Evidence", "/evidence"))
AS_OF_LINKS_JS = _AS_OF_LINKS_JS.replace("ASOFDAY", _AS_OF_VALID_JS).replace(
    "PATHS", json.dumps([href for _, href in NAV]))
AS_OF_NAV_JS = _AS_OF_NAV_JS.replace("ASOFDAY", _AS_OF_VALID_JS)


def create_app(settings: Settings, *, url: str | None = None, warm: bool = True) -> dash.Dash:
    """The dashboard on `url` (default `settings.storage_url`); the schema must exist (`maturity db upgrade`).

    `warm`: a background thread fills the per-city query caches at start and refreshes the city that ran
    whenever the run marker moves (every `[web] poll_seconds`), so no visitor of a large database
    (50 cities x 2 years) waits for many cities' histories and catalogs to load.
    """
    import storage
    from layouts._cache import CONTEXT_KEY, Context

    # Page modules are re-executed by every Dash(use_pages=True) and register their `dash.callback`s again;
    # drop registrations left by an earlier app in this process (tests, benchmark) so none is doubled.
    dash._callback.GLOBAL_CALLBACK_LIST.clear()
    dash._callback.GLOBAL_CALLBACK_MAP.clear()

    server = flask.Flask(__name__)
    server.config[CONTEXT_KEY] = Context(settings=settings, url=url or settings.storage_url)
    app = dash.Dash(
        # Dash annotates `server` as bool | Callable[[], Any]; its docstring and code take a Flask instance too.
        __name__, server=server,  # type: ignore[arg-type]
        use_pages=True, pages_folder="", assets_folder=str(ASSETS),
        title="City data maturity", suppress_callback_exceptions=True, serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    _load_pages()
    poll_ms = max(1, int(settings.web.poll_seconds)) * 1000

    def shell() -> html.Div:
        return html.Div([
            # Below Bootstrap's md width (768 px: phones) the links fold behind a menu button.
            dbc.Navbar(dbc.Container([
                dbc.NavbarBrand("City data maturity", href="/", id="nav-brand"),
                dbc.NavbarToggler(id="nav-toggler", n_clicks=0),
                dbc.Collapse([
                    dbc.Nav([dbc.NavLink(label, href=href, active="exact", id=f"nav-{label.lower()}")
                             for label, href in NAV], navbar=True, className="flex-wrap"),
                    # time travel: every page as it stood at the end of the chosen day (layouts/_as_of.py)
                    html.Div([dbc.Label("As of", html_for="as-of", className="small text-light mb-0 me-2"),
                              dbc.Input(id="as-of", type="date", size="sm", debounce=AS_OF_DEBOUNCE_MS,
                                        min="1990-01-01", style={"width": "9.5rem"})],
                             title="every page as it stood at the end of this day (empty: today)",
                             className="d-flex align-items-center ms-md-auto me-md-3 my-2 my-md-0"),
                    html.Span(id="live-status", className="navbar-text small text-light"),
                ], id="nav-collapse", is_open=False, navbar=True),
            ], fluid=True), color="dark", dark=True, expand="md", className="mb-3"),
            dcc.Interval(id="live-interval", interval=poll_ms),
            dcc.Store(id="live-marker", data=_marker_or_none(storage, server)),
            dcc.Location(id="as-of-nav", refresh="callback-nav"),
            dbc.Container([html.Div(id="as-of-banner"), page_container(app)], fluid=True, className="pb-5"),
        ])

    app.layout = shell

    # A pre-filled page (page_container) was chosen from the layout request's Referer. Should that not be the address
    # the browser shows, the location is told to look again (it listens to popstate): it reports the address and
    # Dash's router draws that page. (Not an Output on the location: the shell's callbacks on its props would then
    # wait for this one and, when it changes nothing, not run at all.)
    app.clientside_callback(
        """function(prefilled) {
            if (prefilled && prefilled !== window.location.pathname + window.location.search) {
                window.dispatchEvent(new PopStateEvent("popstate"));
            }
            return window.dash_clientside.no_update;
        }""",
        Output(PREFILLED, "modified_timestamp"), Input(PREFILLED, "data"))

    # the menu button opens and closes the links; following a link closes them again
    app.clientside_callback(
        """function(_n, _path, open) {
            const trig = (window.dash_clientside.callback_context.triggered || [])[0] || {};
            return trig.prop_id === "nav-toggler.n_clicks" ? !open : false;
        }""",
        Output("nav-collapse", "is_open"), Input("nav-toggler", "n_clicks"), Input(PAGES_LOCATION, "pathname"),
        State("nav-collapse", "is_open"), prevent_initial_call=True)

    # The address bar holds the date: the links of the header carry it and the date box shows it ...
    app.clientside_callback(
        AS_OF_LINKS_JS,
        Output("as-of", "value"), Output("nav-brand", "href"),
        *[Output(f"nav-{label.lower()}", "href") for label, _ in NAV],
        Input(PAGES_LOCATION, "search"))
    # ... and a date chosen in the box opens the same page at that date (an emptied box: today)
    app.clientside_callback(AS_OF_NAV_JS, Output("as-of-nav", "href"), Input("as-of", "value"),
                            prevent_initial_call=True)

    @app.callback(Output("as-of-banner", "children"), Input(PAGES_LOCATION, "pathname"),
                  Input(PAGES_LOCATION, "search"))
    def as_of_banner(path: str | None, search: str | None) -> Any:
        from layouts import _components as ui

        return ui.as_of_banner(path or "/", search or "")

    # Not at load (prevent_initial_call): the layout has just read the marker. A callback of the page's that waits
    # on live-marker would also wait for this answer at load, and not run at all when it changes nothing.
    @app.callback(Output("live-marker", "data"), Output("live-status", "children"),
                  Input("live-interval", "n_intervals"), State("live-marker", "data"), prevent_initial_call=True)
    def poll(_n: int | None, current: object) -> tuple[object, str]:
        new = _marker_or_none(storage, server)
        if new == current:
            raise PreventUpdate
        return new, f"updated {datetime.now(UTC):%H:%M} UTC"

    from layouts import _print

    _print.register(server)  # /print/city/<key>: the printable city page (the export report's template)
    _serve_plotlyjs(app)
    _shape_index(app)

    @server.route("/health")
    def health() -> flask.Response:
        return flask.jsonify(_health(storage, server))

    # Run Dash's first-request setup now (it moves the pages' `dash.callback`s from the global list into
    # this app), so a second app built in the same process before this one serves cannot take them.
    with server.test_request_context("/"):
        server.preprocess_request()
    if warm:
        import threading

        from layouts._warmup import keep_warm

        server.config[WARMED_KEY] = warmed = threading.Event()
        threading.Thread(target=keep_warm, args=(server, float(settings.web.poll_seconds), None, warmed),
                         name="dashboard-warm", daemon=True).start()
    return app


# dash.page_container's ids, as Dash's router callback (Output content, Input location) and its title callback
# (Input store) address them
PAGES_LOCATION, PAGES_CONTENT, PAGES_STORE, PAGES_DUMMY = _ID_LOCATION, _ID_CONTENT, _ID_STORE, _ID_DUMMY
PREFILLED = "pages-prefilled"  # the path and query the container was filled for ("" when it was not)


def page_container(app: dash.Dash) -> html.Div:
    """dash.page_container, with the requested page's layout already in it when the request says which page.

    Dash Pages fills its container from a callback: the browser loads the shell layout (`_dash-layout`), mounts the
    location, which reports the address, and only then asks the router for the page (one more round trip and
    render before any page content, ~150-300 ms of a first visit). The `_dash-layout` request is the page's own
    fetch: its Referer is the page's address (same-origin requests carry the full URL under the browsers' default
    policy, strict-origin-when-cross-origin). Here the page's layout is rendered into the container for that
    address, and the location's `pathname` and `search` are set to it: the location then finds nothing to report
    on mount, so the router (prevent_initial_call) does not run, and the page's callbacks fire with the shell's.
    Without a usable Referer (none, or no page at that path) the container is Dash's empty one, routed as before;
    a Referer that is not the address shown is routed again by the clientside callback on PREFILLED.
    """
    prefilled = _requested_page(app)
    if prefilled is not None:
        pathname, search, content, title = prefilled
        location = dcc.Location(id=PAGES_LOCATION, refresh="callback-nav", pathname=pathname, search=search)
        return html.Div([location, html.Div(content, id=PAGES_CONTENT, disable_n_clicks=True),
                         dcc.Store(id=PAGES_STORE, data={"title": title}),
                         html.Div(id=PAGES_DUMMY, disable_n_clicks=True),
                         dcc.Store(id=PREFILLED, data=pathname + search)])
    return html.Div([dcc.Location(id=PAGES_LOCATION, refresh="callback-nav"),
                     html.Div(id=PAGES_CONTENT, disable_n_clicks=True), dcc.Store(id=PAGES_STORE),
                     html.Div(id=PAGES_DUMMY, disable_n_clicks=True), dcc.Store(id=PREFILLED, data="")])


def _requested_page(app: dash.Dash) -> tuple[str, str, Any, str] | None:
    """(pathname, search, layout, title) of the page the current request's Referer names, as Dash's router would
    render it; None without a request, a Referer, or a registered page at its path."""
    from urllib.parse import urlsplit

    from dash._pages import _parse_query_string, _path_to_page  # the router's own parsing (dash/dash.py)

    if not flask.has_request_context() or not flask.request.referrer:
        return None
    ref = urlsplit(flask.request.referrer)
    if ref.netloc and ref.netloc != flask.request.host:
        return None
    pathname, search = ref.path or "/", f"?{ref.query}" if ref.query else ""
    page, variables = _path_to_page(app.strip_relative_path(pathname))
    if not page:
        return None  # no such page: Dash's router answers with its 404
    try:
        layout = page.get("layout", "")
        if callable(layout):
            layout = layout(**{**(variables or {}), **_parse_query_string(search)})
        title = page["title"]
        if callable(title):
            title = title(**(variables or {}))
    except Exception:  # the router will call the same layout again and report what fails
        log.exception("event=prefill path=%s failed", pathname)
        return None
    return pathname, search, layout, title


def _load_pages() -> None:
    """Run every page module of `layouts` afresh, under its import name (`layouts.<page>`).

    This is what Dash's `pages_folder` does, except for the name: Dash names a folder's pages by their path
    relative to the app's own module, and the app lives in the `maturity` package, so it would import
    `layouts/datasets.py` a second time as some `work.….layouts.datasets` beside `layouts.datasets`, and reject
    the two for sharing one URL. Re-running the modules (not a plain import) lets every app built in one
    process (tests, the benchmark) register the pages' callbacks again, as the folder import did.
    """
    for path in sorted(PAGES.glob("[!_]*.py")):
        if "register_page" not in path.read_text(encoding="utf-8"):
            continue
        name = f"{layouts.__name__}.{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        page = dash.page_registry.get(name)
        if page is not None and not page.get("supplied_layout"):
            page["layout"] = module.layout


# where dcc.Graph asks for plotly.js when the app serves its scripts itself (serve_locally): Dash's renderer
# sets this address (window._dashPlotlyJSURL) and the graph component loads it the first time a graph mounts
PLOTLYJS_PATH = "_dash-component-suites/plotly/package_data/plotly.min.js"
# what the first graph of a page loads: plotly.js and dcc's graph code (a chunk of its own, fetched at that address)
GRID_CHUNK_PATH = "_dash-component-suites/dash_ag_grid/async-community.js"
GRAPH_SCRIPTS = (PLOTLYJS_PATH, "_dash-component-suites/dash/dcc/async-graph.js")


def _serve_plotlyjs(app: dash.Dash) -> None:
    """Answer the graphs' request for plotly.js with the basic bundle (maturity/plotlyjs.py), when fetched.

    A route of its own at the exact address: werkzeug matches it before Dash's `<package>/<path>` route, so
    the full bundle is neither read nor sent. Pages without a graph load no plotly.js at all, as before.
    """
    from maturity import plotlyjs

    bundle = plotlyjs.installed()
    if bundle is None:
        log.info("event=plotlyjs bundle=full reason=basic bundle not fetched (python -m maturity.plotlyjs)")
        return

    script = plotlyjs.served(bundle)  # read once: 1.5 MB held for the process's life

    def basic_plotlyjs() -> werkzeug.Response:
        # revalidated by ETag on every visit, as Dash serves its unfingerprinted scripts
        response = flask.Response(script, mimetype="text/javascript")
        response.add_etag()
        return response.make_conditional(flask.request)

    app.server.add_url_rule(app.config.routes_pathname_prefix + PLOTLYJS_PATH, "basic_plotlyjs",
                            basic_plotlyjs)


def _page_patterns(flag: str) -> list[re.Pattern[str]]:
    """The paths of the pages registered with `flag=True` (a path template's <variable> matches one segment)."""
    return [re.compile("^" + re.sub(r"<[^>/]+>", "[^/]+", page.get("path_template") or page["path"]) + "$")
            for page in dash.page_registry.values() if page.get(flag)]


# Dash's scripts as the index lists them (dash.Dash._generate_scripts_html): the polyfill first, AG Grid's bundle with
# the component libraries, Dash's renderer after them
_POLYFILL_TAG = re.compile(r'<script src="([^"]*/dash/deps/polyfill@[^"]*)"></script>\n?')
_GRID_LIB_TAG = re.compile(r'<script src="([^"]*/dash_ag_grid/dash_ag_grid\.[^"]*)"></script>\n?')
_RENDERER_TAG = re.compile(r'<script src="[^"]*/dash-renderer/build/dash_renderer\.[^"]*"></script>')
# What the scripts Dash serves need of the polyfill (@babel/polyfill 7: core-js 2 and regenerator-runtime) that a
# current browser lacks: the global `regeneratorRuntime` (dash-renderer's and dcc's lazy loaders call it once a chunk
# has loaded; dash-bootstrap-components' bundle, listed before them, defines it). ES2018-2019 built-ins stand for
# the rest: a browser without them gets the whole polyfill, before Dash's renderer runs.
_POLYFILL_NEEDED_JS = ("!(window.regeneratorRuntime && Object.fromEntries && Array.prototype.flat "
                       "&& Promise.prototype.finally && window.Symbol && Symbol.asyncIterator)")


def _shape_index(app: dash.Dash) -> None:
    """What a page's index asks for at once, and which of Dash's scripts it leaves out (a first visit: nothing in
    the browser's caches, every script evaluated before Dash's renderer asks for the page).

    - every page: the layout and the callbacks' list (`_dash-layout`, `_dash-dependencies`) are preloaded, so they
      arrive while the scripts load and run instead of after them (Dash's renderer then finds them fetched);
    - a page that draws graphs (registered with `draws_graphs=True`): plotly.js and dcc's graph code, instead of
      when the first graph mounts, once the page's layout and its callbacks' answers are in (1.5-2 s into a first
      visit); the graph's own request then finds them loaded;
    - a page whose main content is a grid (`shows_grids=True`): AG Grid's lazily loaded chunk;
    - a page that draws no grid (`without_grids=True`): no AG Grid bundle (1.3 MB; layouts/assets/grids.js loads it
      should a grid be drawn after all: another page opened in place), only a prefetch link naming it;
    - no page: @babel/polyfill (99 kB, ~40 ms of CPU at the start of every first visit); an inline check before
      Dash's renderer writes it into the page for a browser that needs it (_POLYFILL_NEEDED_JS).
    """
    prefix = app.config.requests_pathname_prefix
    head_all = "".join(f'<link rel="preload" as="fetch" crossorigin href="{prefix}{path}">'
                       for path in ("_dash-layout", "_dash-dependencies"))
    head_graphs = "".join(f'<link rel="preload" as="script" href="{prefix}{path}">' for path in GRAPH_SCRIPTS)
    head_grids = f'<script async src="{prefix}{GRID_CHUNK_PATH}"></script>'
    graph_pages, grid_pages, grid_free = (_page_patterns(flag) for flag in ("draws_graphs", "shows_grids",
                                                                             "without_grids"))
    interpolate = app.interpolate_index

    def interpolate_index(**parts: Any) -> str:
        path = flask.request.path if flask.has_request_context() else None
        head = head_all
        if path is not None and any(p.match(path) for p in graph_pages):
            head += head_graphs
        if path is not None and any(p.match(path) for p in grid_pages):
            head += head_grids
        scripts = parts.get("scripts", "")
        polyfill = _POLYFILL_TAG.search(scripts)
        if polyfill and _RENDERER_TAG.search(scripts):
            check = (f"<script>if ({_POLYFILL_NEEDED_JS}) "
                     f"document.write('<script src=\"{polyfill.group(1)}\"><\\/script>');</script>")
            scripts = _RENDERER_TAG.sub(lambda m: check + "\n" + m.group(0), _POLYFILL_TAG.sub("", scripts), count=1)
        grid_lib = _GRID_LIB_TAG.search(scripts)
        if grid_lib and path is not None and any(p.match(path) for p in grid_free):
            head += f'<link rel="prefetch" as="script" id="dash-ag-grid-lib" href="{grid_lib.group(1)}">'
            scripts = _GRID_LIB_TAG.sub("", scripts)
        html = interpolate(**{**parts, "scripts": scripts})
        return html.replace("</head>", head + "</head>", 1)

    app.interpolate_index = interpolate_index  # type: ignore[method-assign,assignment]


def _marker_or_none(storage: ModuleType, server: flask.Flask) -> Any:
    from layouts._cache import CONTEXT_KEY

    try:
        marker = storage.latest_run_marker(storage.open_db(server.config[CONTEXT_KEY].url))
        # as the browser's store will hold it (tuples become lists), so an unchanged marker compares equal
        return json.loads(json.dumps(marker))
    except Exception as exc:  # noqa: BLE001 - an unreachable or empty database must not break the shell
        log.warning("latest_run_marker failed: %s", exc)
        return None


def _health(storage: ModuleType, server: flask.Flask) -> dict[str, Any]:
    """{"status": "ok"|"degraded", "db": bool, "latest_run": ISO time or None, "latest_status": …}."""
    from layouts._cache import CONTEXT_KEY

    ctx = server.config[CONTEXT_KEY]
    out = {"status": "degraded", "db": False, "latest_run": None, "latest_status": None}
    try:
        runs = storage.runs(storage.open_db(ctx.url), limit=1)
    except Exception as exc:  # noqa: BLE001 - the health check reports, it does not raise
        out["error"] = type(exc).__name__
        return out
    out.update(status="ok", db=True)
    if len(runs):
        r = runs.iloc[0]
        t = r["finished_at"] if r["finished_at"] is not None and str(r["finished_at"]) != "NaT" else r["started_at"]
        out["latest_run"] = None if t is None or str(t) == "NaT" else _iso(t)
        out["latest_status"] = r["status"]
    return out


def _iso(t: datetime) -> str:
    import pandas as pd

    ts = pd.Timestamp(t)
    return (ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")).isoformat()


_lazy_app: dash.Dash | None = None


def get_app() -> dash.Dash:
    """The app built from `settings.load()` (MATURITY_CONFIG, DATABASE_URL), once per process."""
    global _lazy_app
    if _lazy_app is None:
        from maturity import settings as settings_mod

        _lazy_app = create_app(settings_mod.load())
    return _lazy_app


def __getattr__(name: str) -> Any:
    # gunicorn reads this attribute; building lazily keeps the import free of side effects.
    if name == "server":
        return get_app().server
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
