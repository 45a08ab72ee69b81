"""http.py against the emulator: retries, Retry-After, backoff cap, and the error each failure becomes."""
from __future__ import annotations

import os
from datetime import UTC

import pytest

from connectors.base import PortalAuthError, PortalIncompatible, PortalUnavailable
from connectors.http import USER_AGENT, RetryPolicy, get_json, make_session, retry_after_s

DOC = {"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": []}


@pytest.fixture
def emu(emulator):
    return emulator(dcat={"city": DOC})


def test_session_names_the_project_and_carries_the_token():
    s = make_session("tok123")
    assert s.headers["User-Agent"].startswith("city-maturity/0.1")
    assert s.headers["X-App-Token"] == "tok123"
    assert "X-App-Token" not in make_session().headers


def test_user_agent_reaches_the_server(emu, session):
    assert get_json(session, emu.dcat_url("city") + "/data.json") == DOC
    assert emu.requests[-1][2]["User-Agent"] == USER_AGENT


def test_500_twice_then_success_is_retried(emu, session, sleeps):
    emu.fault("/dcat/city/data.json", status=500, times=2)
    assert get_json(session, emu.dcat_url("city") + "/data.json") == DOC
    # two failures → two sleeps, exponential from backoff_s=0.01: 0.01, 0.02
    assert sleeps.calls == [0.01, 0.02]
    assert len(emu.requests) == 3


def test_backoff_is_capped(emu, session, sleeps):
    emu.fault("/dcat/city/data.json", status=503)  # always
    with pytest.raises(PortalUnavailable, match=r"HTTP 503 after 4 attempts"):
        get_json(session, emu.dcat_url("city") + "/data.json")
    # 0.01, 0.02, 0.04 (= cap 0.04); 3 retries → 3 sleeps, 4 attempts
    assert sleeps.calls == [0.01, 0.02, 0.04]


def test_retry_after_is_honoured(emu, session, sleeps):
    emu.fault("/dcat/city/data.json", status=429, retry_after="3", times=1)
    assert get_json(session, emu.dcat_url("city") + "/data.json") == DOC
    assert sleeps.calls == [3.0]  # the server's 3 s, not the 0.01 s backoff


def test_retry_after_beyond_the_cap_fails_readably(emu, session, sleeps):
    emu.fault("/dcat/city/data.json", status=429, retry_after="3600", times=1)
    with pytest.raises(PortalUnavailable, match=r"retry after 3600 s, more than the 5 s"):
        get_json(session, emu.dcat_url("city") + "/data.json")
    assert sleeps.calls == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_fatal(emu, session, sleeps, status):
    emu.fault("/dcat/city/data.json", status=status)
    with pytest.raises(PortalAuthError, match=f"HTTP {status}"):
        get_json(session, emu.dcat_url("city") + "/data.json")
    assert len(emu.requests) == 1 and sleeps.calls == []


def test_other_4xx_is_fatal_incompatible(emu, session):
    with pytest.raises(PortalIncompatible, match="HTTP 404"):
        get_json(session, emu.dcat_url("nowhere") + "/data.json")
    assert len(emu.requests) == 1


def test_truncated_json_is_incompatible(emu, session):
    emu.fault("/dcat/city/data.json", truncate=True)
    with pytest.raises(PortalIncompatible, match="not valid JSON"):
        get_json(session, emu.dcat_url("city") + "/data.json")


def test_timeout_becomes_unavailable(emulator, sleeps):
    emu = emulator(dcat={"city": DOC})
    fast = make_session(policy=RetryPolicy(retries=1, backoff_s=0.01, timeout_s=0.2, sleep=sleeps))
    emu.fault("/dcat/city/data.json", timeout_s=1.0)
    with pytest.raises(PortalUnavailable, match=r"timed out after 0.2 s after 2 attempts"):
        get_json(fast, emu.dcat_url("city") + "/data.json")


def test_latency_below_the_timeout_is_fine(emu, session):
    emu.fault("/dcat/city/data.json", latency_s=0.1)
    assert get_json(session, emu.dcat_url("city") + "/data.json") == DOC


def test_connection_refused_becomes_unavailable(emulator, session):
    emu = emulator()
    url = emu.url + "/data.json"
    emu.stop()
    with pytest.raises(PortalUnavailable, match="connection failed"):
        get_json(session, url)


def test_retry_after_http_date():
    from datetime import datetime

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s({"Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT"}, now=now) == 30.0
    assert retry_after_s({"Retry-After": "soon"}) is None
    assert retry_after_s({}) is None


def test_bad_url_is_incompatible_not_retried(session, sleeps):
    with pytest.raises(PortalIncompatible, match="request rejected before sending"):
        get_json(session, "not-a-url/data.json")
    assert sleeps.calls == []


def test_sodapy_style_json_error_is_incompatible(emulator, session):
    # a client that parses with response.json() (as sodapy does) on a truncated body
    from connectors.http import call_with_retries

    emu = emulator(dcat={"city": DOC})
    emu.fault("/dcat/city/data.json", truncate=True)
    url = emu.dcat_url("city") + "/data.json"
    with pytest.raises(PortalIncompatible, match="not valid JSON"):
        call_with_retries(session, lambda: session.get(url, timeout=1).json(), url)


def test_environment_read_once_unless_a_proxy_is_configured(emu, monkeypatch, tmp_path):
    for name in [n for n in os.environ if n.lower().endswith("_proxy") or n == "NETRC"]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    quiet = make_session()
    assert quiet.trust_env is False and quiet.verify == "/etc/ssl/certs/ca-certificates.crt"
    assert get_json(quiet, emu.dcat_url("city") + "/data.json") == DOC

    # A configured proxy: requests reads the environment as usual, and the request goes through the proxy (the
    # emulator, which serves the path of the absolute URL a proxy receives; the host does not exist).
    monkeypatch.setenv("HTTP_PROXY", emu.url)
    proxied = make_session()
    assert proxied.trust_env is True
    assert get_json(proxied, "http://portal.invalid/dcat/city/data.json") == DOC
    assert emu.requests[-1][0] == "/dcat/city/data.json"
