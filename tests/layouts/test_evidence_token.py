"""Forged Evidence posts: a token that is not text answers HTTP 401 (it gave 500), and changes nothing."""
from __future__ import annotations

import pytest

import storage
from tests.layouts.test_pages import call

FORM = {"ev-city.value": "chicago", "ev-criterion.value": "DM1", "ev-url.value": "https://x.org/policy",
        "ev-actor.value": "Mallory", "ev-save.n_clicks": 1}


@pytest.mark.parametrize("token", [123, ["s3cret-token"], {"a": 1}, True, "\ud800"],
                         ids=["number", "list", "object", "bool", "lone-surrogate"])
def test_a_malformed_token_is_401_and_changes_nothing(dash_app, layout_db, monkeypatch, token):
    monkeypatch.setenv("MATURITY_ADMIN_TOKEN", "s3cret-token")
    engine = storage.open_db(layout_db[0])
    before = len(storage.evidence(engine))
    r = call(dash_app.server.test_client(), "ev-message", {**FORM, "ev-token.value": token},
             changed=["ev-save.n_clicks"])
    assert r.status_code == 401
    assert len(storage.evidence(engine)) == before


def test_a_wrong_string_token_is_refused_in_the_page(dash_app, layout_db, monkeypatch):
    monkeypatch.setenv("MATURITY_ADMIN_TOKEN", "s3cret-token")
    engine = storage.open_db(layout_db[0])
    before = len(storage.evidence(engine))
    r = call(dash_app.server.test_client(), "ev-message", {**FORM, "ev-token.value": "guess"},
             changed=["ev-save.n_clicks"])
    assert r.status_code == 200 and "Wrong admin token" in r.get_data(as_text=True)
    assert len(storage.evidence(engine)) == before
