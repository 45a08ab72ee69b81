"""The print view of a city page, `/print/city/<key>`: one printable single-column page for the mayor's office.

It is the exported report's own template (exports.report_html, layouts/templates/report.html.j2) for that one
city, without the charts: the same numbers as the city page and the scheduled report, never a second
rendering of them. A plain Flask route (not a Dash page): it prints without the app's JavaScript.
"""
from __future__ import annotations

from datetime import UTC, datetime

import flask

from layouts import _as_of
from layouts._cache import CONTEXT_KEY

PATH = "/print/city/<key>"


def href(key: str, day: str | None = None) -> str:
    """The print view of a city, as of the end of `day` when given (the city page's `?as_of=`)."""
    from urllib.parse import quote

    return _as_of.href(f"/print/city/{quote(key, safe='')}", day)


def register(server: flask.Flask) -> None:
    @server.route(PATH)
    def print_city(key: str) -> flask.Response:
        from maturity import exports

        ctx = server.config[CONTEXT_KEY]
        if key not in {c.key for c in ctx.settings.cities}:
            return flask.Response(f"No city with key {key!r}.", status=404, mimetype="text/plain")
        day = _as_of.parse(flask.request.args.get(_as_of.PARAM))
        at = _as_of.end_of_day(day)
        snap = exports.snapshot(ctx.settings, ctx.engine, key, as_of=None if at is None else at.to_pydatetime())
        now = datetime.now(UTC)
        page = exports.report_html([snap], title=snap.city.name, stamp=(snap.as_of or now).date(), generated=now,
                                   print_view=True, back_href=_as_of.href(f"/city/{key}", day),
                                   drill_href=lambda criterion, indicator: _as_of.href(
                                       f"/city/{key}", day, {"criterion": criterion, "indicator": indicator}))
        return flask.Response(page, mimetype="text/html")
