"""http.py against a hostile local server: size cap on decompressed bytes, a deadline per request (retries
included), credentials that stay on their host. Small caps and deadlines are set here; the defaults are checked
against the promise in the README (a dripping portal's run fails within 5 minutes)."""
from __future__ import annotations

import json

import pytest
import requests

from connectors.base import PortalIncompatible, PortalUnavailable
from connectors.http import (
    DEFAULT_POLICY,
    DeadlineExceeded,
    ResponseTooLarge,
    RetryPolicy,
    get_json,
    make_session,
)
from tests.hostile import (
    HostileServer,
    drip_body,
    drip_headers,
    endless_body,
    gzip_bomb,
    json_body,
    redirect,
    status,
)

DOC = {"conformsTo": "https://project-open-data.cio.gov/v1.1/schema", "dataset": [{"title": "x" * 200}]}
DOC_BYTES = json.dumps(DOC).encode()  # 276 bytes


@pytest.fixture
def hostile():
    with HostileServer() as srv:
        yield srv


def bounded(sleeps=None, **kw) -> requests.Session:
    base = {"retries": 2, "backoff_s": 0.01, "backoff_cap_s": 0.02, "timeout_s": 0.5, "deadline_s": 1.0,
            "max_bytes": 100_000}
    base.update(kw)
    if sleeps is not None:
        base["sleep"] = sleeps
    return make_session(policy=RetryPolicy(**base))


def test_a_body_that_never_ends_stops_at_the_cap(hostile):
    hostile.route("/data.json", endless_body())
    with pytest.raises(ResponseTooLarge, match=r"larger than the 100000 bytes cap \(after decompression\)"):
        get_json(bounded(deadline_s=30), hostile.url + "/data.json")
    # the client hung up: the server's writes failed, and it had sent little more than the cap (plus what the
    # socket buffers held), not gigabytes
    assert hostile.hung_up.wait(10)
    assert hostile.sent["/data.json"] < 100_000 + 16 * 2**20


def test_a_gzip_bomb_is_capped_on_inflated_bytes(hostile):
    # 50 MB of zeros gzip to ~50 KB: under the 100 KB cap as sent, 500 times over it once inflated
    hostile.route("/data.json", gzip_bomb(50 * 2**20))
    with pytest.raises(ResponseTooLarge, match="after decompression"):
        get_json(bounded(deadline_s=30), hostile.url + "/data.json")


def test_gzip_within_the_cap_is_decoded(hostile):
    hostile.route("/data.json", json_body(DOC_BYTES, gzipped=True))
    assert get_json(bounded(), hostile.url + "/data.json") == DOC


def test_the_cap_is_inclusive_of_a_body_exactly_at_it(hostile):
    hostile.route("/data.json", json_body(DOC_BYTES))
    assert get_json(bounded(max_bytes=len(DOC_BYTES)), hostile.url + "/data.json") == DOC
    with pytest.raises(ResponseTooLarge):
        get_json(bounded(max_bytes=len(DOC_BYTES) - 1), hostile.url + "/data.json")


def test_a_dripping_body_fails_at_the_deadline(hostile):
    # one byte every 50 ms: each read is well within the 0.5 s read timeout, so only a deadline on the whole
    # request stops it; left alone the 276 bytes would take ~14 s and parse fine
    hostile.route("/data.json", drip_body(DOC_BYTES, every_s=0.05))
    with pytest.raises(DeadlineExceeded, match=r"data.json: no complete response within the 1 s deadline"):
        get_json(bounded(), hostile.url + "/data.json")
    assert len(hostile.requests) == 1  # a broken body is not retried: the deadline is the request's, not a try's


def test_dripping_headers_fail_at_the_deadline(hostile):
    hostile.route("/data.json", drip_headers(DOC_BYTES, every_s=0.05))
    with pytest.raises(DeadlineExceeded, match="deadline"):
        get_json(bounded(), hostile.url + "/data.json")


def test_the_deadline_includes_retries_and_their_waits(hostile):
    # 503 with Retry-After 0.3 s for ever, up to 50 retries: real waits (no recorder), so after ~3 of them the
    # next wait would pass the 1 s deadline, and the request fails then instead of sleeping on
    hostile.route("/data.json", status(503, retry_after="0.3"))
    with pytest.raises(DeadlineExceeded, match=r"next retry would wait 0.3 s"):
        get_json(bounded(retries=50, max_retry_after_s=5), hostile.url + "/data.json")
    assert 2 <= len(hostile.requests) <= 4


def test_an_html_page_with_200_is_incompatible_and_quoted_safely(hostile):
    # a portal's maintenance or login page, served as 200 where JSON belongs
    page = b"<!DOCTYPE html><html><head><title>Down for maintenance</title><script>alert(1)</script></head></html>"

    def html(request):
        yield (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + str(len(page)).encode()
               + b"\r\nConnection: close\r\n\r\n" + page)

    hostile.route("/data.json", html)
    with pytest.raises(PortalIncompatible, match=r"not valid JSON .*; 101 bytes starting '<!DOCTYPE html>"):
        get_json(bounded(), hostile.url + "/data.json")
    assert len(hostile.requests) == 1  # an answer in the wrong shape is not retried


def test_deadline_is_a_portal_unavailable_and_size_an_incompatible():
    # what the pipeline records: a slow portal may recover (unavailable); an oversized answer will not
    assert issubclass(DeadlineExceeded, PortalUnavailable)
    assert issubclass(ResponseTooLarge, PortalIncompatible)


def test_default_bounds_keep_a_dripping_portal_under_five_minutes():
    # The default deadline covers every attempt and wait of one request (test_the_deadline_includes_retries...),
    # and the watchdog cuts a read in flight (test_dripping_*): a dripping portal's request ends at the deadline
    # plus at most one read timeout when the socket cannot be shut (a proxy), well under 5 minutes.
    assert DEFAULT_POLICY.deadline_s + DEFAULT_POLICY.timeout_s < 300
    assert DEFAULT_POLICY.max_bytes == 64 * 2**20


# --- credentials stay home ---------------------------------------------------------------------------------

def test_app_token_and_auth_do_not_follow_a_redirect_to_another_host(hostile):
    with HostileServer(host="localhost") as other:
        other.route("/data.json", json_body(DOC_BYTES))
        hostile.route("/data.json", redirect(other.url + "/data.json"))
        s = make_session("tok123")
        s.headers["Authorization"] = "Bearer secret"
        s.headers["X-Api-Key"] = "k"
        assert get_json(s, hostile.url + "/data.json") == DOC
    sent_home, sent_away = hostile.requests[0].headers, other.requests[0].headers
    assert sent_home["X-App-Token"] == "tok123" and sent_home["Authorization"] == "Bearer secret"
    assert not {"X-App-Token", "Authorization", "X-Api-Key"} & set(sent_away)
    assert sent_away["User-Agent"] == sent_home["User-Agent"]  # only the credentials were dropped


def test_app_token_does_not_follow_a_redirect_to_another_port(hostile):
    with HostileServer() as other:  # same 127.0.0.1, another port: another origin
        other.route("/data.json", json_body(DOC_BYTES))
        hostile.route("/data.json", redirect(other.url + "/data.json"))
        assert get_json(make_session("tok123"), hostile.url + "/data.json") == DOC
    assert "X-App-Token" not in other.requests[0].headers


def test_app_token_follows_a_redirect_on_the_same_host(hostile):
    hostile.route("/old/data.json", redirect(hostile.url + "/data.json"))
    hostile.route("/data.json", json_body(DOC_BYTES))
    assert get_json(make_session("tok123"), hostile.url + "/old/data.json") == DOC
    assert [r.headers.get("X-App-Token") for r in hostile.requests] == ["tok123", "tok123"]


def test_redirect_loop_is_incompatible(hostile):
    hostile.route("/data.json", redirect("/data.json"))
    with pytest.raises(PortalIncompatible, match="too many redirects"):
        get_json(bounded(deadline_s=30), hostile.url + "/data.json")



def test_a_deadline_expired_after_its_request_ended_leaves_the_socket_alone():
    """The watchdog thread checks a deadline, then expires it; the request may end in between. Its socket is
    then back in the pool, serving the next request, and must not be shut under it."""
    import socket

    from connectors import http

    ours, peer = socket.socketpair()
    try:
        deadline = http._Deadline(0.0)  # already past
        deadline.attach(ours)
        deadline.finish()  # the request ended
        deadline.expire()  # the watchdog, late
        ours.sendall(b"next request")
        assert peer.recv(64) == b"next request" and not deadline.expired
    finally:
        ours.close()
        peer.close()
