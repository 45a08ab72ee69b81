"""Evidence `/evidence`: manual evidence for criteria metadata cannot show, behind a token, with an audit trail.

The only page that changes data. Every change needs the admin token (`[web] admin_token`, by default the
environment variable MATURITY_ADMIN_TOKEN), compared in constant time; storage writes the audit_log row in
the same transaction as the change.
"""
from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, date, datetime
from typing import cast

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, callback, dcc, html
from dash.development.base_component import Component

import storage
from layouts import _as_of
from layouts import _components as ui
from layouts import _figures as fig

dash.register_page(__name__, path="/evidence", name="Evidence", title="Evidence · City data maturity")

MAX_NOTE_CHARS = 2000
AUDIT_SHOWN = 200  # newest audit rows shown
AUDIT_HISTORY = 100_000  # audit rows a past view reads back through (years of edits by hand)
URL_RE = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)


def layout(city: str | None = None, as_of: str | None = None, **_query: str) -> html.Div:
    ctx = ui.context()
    day = _as_of.parse(as_of)
    token_env = ctx.settings.web.admin_token.env
    enabled = ctx.settings.web.admin_token.value() is not None
    cities = {c.key: c.name for c in ctx.settings.cities}
    titles = ui.criterion_titles()
    # a past view shows the records as they stood; a record made now is dated now, so editing is today's
    disabled = not enabled or day is not None
    notice = (dbc.Alert(["This is the evidence recorded up to the end of ", html.Strong(day), ". Records are "
                         "added and deleted in today's view."], color="light", className="border", id="ev-past")
              if day is not None else
              dbc.Alert(["Editing is enabled. Changes need the admin token and are written to the audit trail "
                         "below."], color="light", className="border")
              if enabled else
              dbc.Alert([html.Strong("Editing is disabled: "), "no admin token is configured. Set the environment "
                         "variable ", ui.cmd(token_env), " for the dashboard process (e.g. ",
                         ui.cmd(f"export {token_env}=$(openssl rand -hex 16)"), ") and restart it; then enter the "
                         "same token here to add or delete evidence."], color="warning", id="ev-disabled"))
    form = dbc.Card(dbc.CardBody([
        html.H4("Record evidence", className="h5"),
        dbc.Row([
            dbc.Col([dbc.Label("City", html_for="ev-city"),
                     ui.dropdown(id="ev-city", options=ui.choice_options(cities, cities),
                                  value=city if city in cities else None, disabled=disabled)], md=4),
            dbc.Col([dbc.Label("Criterion", html_for="ev-criterion"),
                     ui.dropdown(id="ev-criterion", options=[{"label": f"{k} · {v}", "value": k}
                                                              for k, v in titles.items()], disabled=disabled)], md=8),
        ], className="g-2"),
        dbc.Row([
            dbc.Col([dbc.Label("Evidence URL (policy, minutes, page)", html_for="ev-url"),
                     dbc.Input(id="ev-url", type="url", placeholder="https://…", disabled=disabled)], md=6),
            dbc.Col([dbc.Label("Date", html_for="ev-date"),
                     dbc.Input(id="ev-date", type="date", disabled=disabled)], md=3),
        ], className="g-2 mt-1"),
        dbc.Label("Note (e.g. meets quarterly; adopted by council resolution 123)", html_for="ev-note",
                  className="mt-1"),
        dbc.Textarea(id="ev-note", maxLength=MAX_NOTE_CHARS, disabled=disabled),
        dbc.Row([
            dbc.Col([dbc.Label("Your name", html_for="ev-actor"), dbc.Input(id="ev-actor", disabled=disabled)], md=4),
            dbc.Col([dbc.Label("Admin token", html_for="ev-token"),
                     dbc.Input(id="ev-token", type="password", autocomplete="off", disabled=disabled)], md=4),
            dbc.Col(dbc.Button("Save", id="ev-save", color="primary", disabled=disabled), md=2,
                    className="align-self-end"),
        ], className="g-2 mt-1"),
        html.Hr(),
        dbc.Row([
            dbc.Col([dbc.Label("Delete record id", html_for="ev-delete-id"),
                     dbc.Input(id="ev-delete-id", type="number", min=1, step=1, disabled=disabled)], md=3),
            dbc.Col(dbc.Button("Delete", id="ev-delete", color="danger", outline=True, disabled=disabled), md=2,
                    className="align-self-end"),
            dbc.Col(html.Small("Uses the name and token above.", className="text-muted"), className="align-self-end"),
        ], className="g-2"),
        html.Div(id="ev-message", className="mt-2"),
    ]), className="mb-4")
    return ui.page("Manual evidence", notice, form, dcc.Store(id="ev-changed"), dcc.Store(id="ev-as-of", data=day),
                   ui.loading(html.Div(id="ev-tables")),
                   subtitle="For criteria no portal metadata can show: policy URL and date, meeting cadence, "
                            "trainings. Shown on the city page's WWC status.")


def well_formed_token(given: object) -> bool:
    """A token as the form sends it: absent, or text that encodes (a forged post may send a number, a list, an
    object or a lone surrogate: refused with HTTP 401 before any comparison)."""
    if given is None:
        return True
    if not isinstance(given, str):
        return False
    try:
        given.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_token(given: object, expected: str | None) -> bool:
    if not (expected and given and isinstance(given, str) and well_formed_token(given)):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def validate(city: str | None, criterion: str | None, url: str | None, when: str | None, note: str | None,
             actor: str | None) -> list[str]:
    """Problems with a form submission, in words (empty when it can be saved)."""
    problems = []
    known = {c.key for c in ui.context().settings.cities}
    if city not in known:
        problems.append("choose a city")
    if not criterion or criterion not in ui.criterion_titles():
        problems.append("choose a criterion")
    if not (actor or "").strip():
        problems.append("enter your name (it goes into the audit trail)")
    if url and not URL_RE.match(url.strip()):
        problems.append("the URL must start with http:// or https://")
    if when:
        try:
            date.fromisoformat(when)
        except ValueError:
            problems.append("the date must be YYYY-MM-DD")
    if not (url or note):
        problems.append("give a URL or a note")
    if note and len(note) > MAX_NOTE_CHARS:
        problems.append(f"the note is longer than {MAX_NOTE_CHARS} characters")
    return problems


@callback(Output("ev-message", "children"), Output("ev-changed", "data"),
          Input("ev-save", "n_clicks"), Input("ev-delete", "n_clicks"),
          State("ev-city", "value"), State("ev-criterion", "value"), State("ev-url", "value"),
          State("ev-date", "value"), State("ev-note", "value"), State("ev-actor", "value"),
          State("ev-token", "value"), State("ev-delete-id", "value"), prevent_initial_call=True)
def change(_save: int | None, _delete: int | None, city: str | None, criterion: str | None, url: str | None,
           when: str | None, note: str | None, actor: str | None, token: str | None,
           delete_id: int | None) -> tuple[dbc.Alert, str | dash.NoUpdate]:
    if not well_formed_token(token):
        flask.abort(401)
    action = "delete" if dash.ctx.triggered_id == "ev-delete" else "save"
    return submit(action, city=city, criterion=criterion, url=url, when=when, note=note, actor=actor, token=token,
                  delete_id=delete_id, now=datetime.now(UTC))


def submit(action: str, *, city: str | None = None, criterion: str | None = None, url: str | None = None,
           when: str | None = None, note: str | None = None, actor: str | None = None, token: str | None = None,
           delete_id: int | None = None, now: datetime) -> tuple[dbc.Alert, str | dash.NoUpdate]:
    """Check the token, validate, write through storage (which writes the audit row). Returns (message, marker)."""
    ctx = ui.context()
    expected = ctx.settings.web.admin_token.value()
    if expected is None:
        return dbc.Alert("Editing is disabled (no admin token configured).", color="warning"), dash.no_update
    if not check_token(token, expected):
        return dbc.Alert("Wrong admin token: nothing was changed.", color="danger", id="ev-denied"), dash.no_update
    actor = (actor or "").strip()
    if action == "delete":
        if not actor:
            return dbc.Alert("Enter your name (it goes into the audit trail).", color="danger"), dash.no_update
        try:
            storage.delete_evidence(ctx.engine, int(delete_id or 0), actor=actor, at=now)
        except LookupError as exc:
            return dbc.Alert(str(exc), color="danger"), dash.no_update
        return dbc.Alert(f"Deleted record {int(delete_id or 0)}.", color="success", id="ev-ok"), now.isoformat()
    problems = validate(city, criterion, url, when, note, actor)
    if problems:
        return dbc.Alert("Not saved: " + "; ".join(problems) + ".", color="danger", id="ev-invalid"), dash.no_update
    # validate() has checked that city and criterion are known keys
    eid = storage.add_evidence(ctx.engine, cast(str, city), cast(str, criterion), url=(url or "").strip() or None,
                               date=when or None, note=(note or "").strip() or None, actor=actor, at=now)
    return dbc.Alert(f"Saved as record {eid}.", color="success", id="ev-ok"), now.isoformat()


@callback(Output("ev-tables", "children"), Input("ev-changed", "data"), Input("live-marker", "data"),
          State("ev-as-of", "data"))
def render_tables(_changed: str | None, _marker: object, day: str | None = None) -> Component | list[Component]:
    return tables(day)


def tables(day: str | None = None) -> Component | list[Component]:
    """The recorded evidence and the audit trail, as they stood at the end of `day` (today's when None)."""
    engine = ui.context().engine
    try:
        ev = _as_of.until(storage.evidence(engine), day, "created_at")
        # a past view filters the whole trail (it is small: one row per edit), then shows its newest rows
        audit = storage.audit_log(engine, limit=AUDIT_SHOWN) if day is None else \
            _as_of.until(storage.audit_log(engine, limit=AUDIT_HISTORY), day, "at").head(AUDIT_SHOWN)
    except Exception as exc:  # noqa: BLE001 - no schema yet
        return ui.empty_state("The database is not ready", f"Reading it failed ({type(exc).__name__}); run ",
                              ui.cmd("maturity db upgrade"), color="danger")
    audit = audit.assign(detail=[d if isinstance(d, str) else json.dumps(d, default=str, ensure_ascii=False)
                                 for d in audit["detail"]])
    ev = ev.assign(city=fig.city_names(ev["city_key"], fig.name_map(ui.query("cities", storage.cities))))
    return [
        html.H4("Recorded evidence", className="h5"),
        ui.grid("ev-grid", ev, [ui.num_col("id", "Id", width=80), ui.city_col(),
                                ui.col("criterion", "Criterion"), ui.col("url", "URL", flex=2),
                                ui.col("date", "Date"), ui.col("note", "Note", flex=3), ui.col("actor", "By"),
                                ui.time_col("created_at", "Recorded")], height=320, page_size=None),
        html.H4("Audit trail", className="h5 mt-4"),
        ui.grid("ev-audit", audit, [ui.time_col("at", "When"), ui.col("actor", "Who"), ui.col("action", "What"),
                                    ui.col("detail", "Detail", flex=4)], height=320, page_size=None),
    ]
