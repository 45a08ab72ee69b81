"""maturity/webserver.py: a stop ends idle connections at once and still answers a request in flight."""
from __future__ import annotations

import socket
import threading

import pytest

from maturity.webserver import DrainingServer

WAIT_S = 10  # bounds a wait that should end at once: a hang fails the test instead of the suite


def _app(release: threading.Event, entered: threading.Event):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            entered.set()
            release.wait(WAIT_S)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    return app


@pytest.fixture
def server():
    release, entered = threading.Event(), threading.Event()
    srv = DrainingServer("127.0.0.1", 0, _app(release, entered))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv, release, entered
    release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(WAIT_S)


def _request(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_stop_ends_a_connection_that_has_not_sent_its_request(server):
    """A browser opens connections ahead of its next request (Chromium keeps preconnected spare sockets): the
    handler thread of such a connection waits for a request line when the server stops."""
    srv, _release, _entered = server
    sock = socket.create_connection(("127.0.0.1", srv.server_port), timeout=WAIT_S)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _read_all(sock).endswith(b"ok")  # a connection that was used is closed after its answer (werkzeug)
    sock.close()
    idle = socket.create_connection(("127.0.0.1", srv.server_port), timeout=WAIT_S)
    with srv._changed:
        assert srv._changed.wait_for(lambda: len(srv._open) == 1, WAIT_S)  # accepted, waiting for its request
    srv.shutdown()
    # its handler thread ends at once (a plain ThreadedWSGIServer left it reading, and the process's exit closed
    # the socket under it: "OSError: [Errno 9] Bad file descriptor")
    assert srv.close_connections(timeout=WAIT_S) == 0
    try:  # the server's side is closed: the end of the stream, or a reset (the reading side was shut)
        assert idle.recv(4096) == b""
    except ConnectionResetError:
        pass
    idle.close()


def test_a_request_in_flight_still_gets_its_answer(server):
    srv, release, entered = server
    sock = _request(srv.server_port, "/slow")
    assert entered.wait(WAIT_S)
    srv.shutdown()
    left: list[int] = []
    closer = threading.Thread(target=lambda: left.append(srv.close_connections(timeout=WAIT_S)))
    closer.start()
    release.set()
    closer.join(WAIT_S)
    answer = _read_all(sock)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    assert left == [0]


def test_the_wait_is_bounded_and_says_how_many_were_left(server):
    srv, release, entered = server
    sock = _request(srv.server_port, "/slow")
    assert entered.wait(WAIT_S)
    assert srv.close_connections(timeout=0.05) == 1  # the slow request is still being answered
    release.set()
    assert _read_all(sock).endswith(b"ok")
    sock.close()
