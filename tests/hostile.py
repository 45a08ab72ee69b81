"""A hostile HTTP server on loopback: it answers with raw bytes, byte by byte if asked, for the fault tests.

The portal emulator (tests/emulator.py) plays well-behaved portals with injected HTTP faults; this one plays
portals that break the protocol's good manners: a body that never ends, a gzip bomb, headers or a body dripped
one byte at a time, redirects to another host. Each path is given a script:

    with HostileServer() as srv:
        srv.route("/drip", drip_body(b'{"dataset": []}', every_s=0.05))
        srv.route("/bomb", gzip_bomb(50 * 2**20))
        ... srv.url + "/drip" ...

A script is a function of the request (`Request`: path, headers) returning an iterator of byte strings; each
is sent as it comes (a script that sleeps between yields drips). Every request is recorded in `srv.requests`.
A script stops when the client hangs up; `srv.sent[path]` counts the bytes it got out.
"""
from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from socketserver import BaseRequestHandler, ThreadingTCPServer

from tests.emulator import LoopbackServer

DRIP_LIMIT_S = 60.0  # a dripping script ends by itself after this, so a broken client deadline fails, not hangs


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]


Script = Callable[[Request], Iterator[bytes]]


class HostileServer(LoopbackServer):
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Script] = {}
        self.requests: list[Request] = []
        self.sent: dict[str, int] = {}
        self.hung_up = threading.Event()  # set when a client closed a connection mid-script
        self._server: ThreadingTCPServer | None = None

    def route(self, path: str, script: Script) -> None:
        self.routes[path] = script

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> HostileServer:
        srv = self

        class Handler(BaseRequestHandler):
            def handle(self) -> None:
                srv._handle(self.request)

        self._server = _Server((self.host if self.host != "localhost" else "127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(DRIP_LIMIT_S)
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(4096)
            if not data:
                return
            head += data
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1].split("?")[0]
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        request = Request(path=path, headers=headers)
        self.requests.append(request)
        script = self.routes.get(path, not_found)
        try:
            for piece in script(request):
                conn.sendall(piece)
                self.sent[path] = self.sent.get(path, 0) + len(piece)
        except OSError:  # the client hung up: what the bounded reads are for
            self.hung_up.set()
        finally:
            conn.close()


class _Server(ThreadingTCPServer):
    allow_reuse_address = True


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def not_found(request: Request) -> Iterator[bytes]:
    yield _head("404 Not Found", {"Content-Length": "0"})


def json_body(body: bytes, *, gzipped: bool = False) -> Script:
    """A well-formed answer (gzip-encoded if asked)."""
    payload = gzip.compress(body) if gzipped else body

    def script(request: Request) -> Iterator[bytes]:
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        yield _head("200 OK", headers) + payload

    return script


def endless_body(chunk: bytes = b"[" + b"0," * 32 * 1024) -> Script:
    """200 with no length and a body that never ends (until the client hangs up)."""
    def script(request: Request) -> Iterator[bytes]:
        yield _head("200 OK", {"Content-Type": "application/json"})
        while True:
            yield chunk

    return script


def gzip_bomb(inflated_bytes: int) -> Script:
    """A small gzip body (~1/1000 of `inflated_bytes`) that inflates to `inflated_bytes` of zeros."""
    payload = gzip.compress(b"\0" * inflated_bytes, compresslevel=9)

    def script(request: Request) -> Iterator[bytes]:
        yield _head("200 OK", {"Content-Type": "application/json", "Content-Encoding": "gzip",
                               "Content-Length": str(len(payload))}) + payload

    return script


def drip_body(body: bytes, *, every_s: float) -> Script:
    """Headers at once, then the body one byte every `every_s` (each read well within any read timeout)."""
    def script(request: Request) -> Iterator[bytes]:
        yield _head("200 OK", {"Content-Type": "application/json"})
        yield from _drip(body, every_s)

    return script


def drip_headers(body: bytes, *, every_s: float) -> Script:
    """The status line and headers themselves one byte every `every_s`."""
    def script(request: Request) -> Iterator[bytes]:
        yield from _drip(_head("200 OK", {"Content-Length": str(len(body))}) + body, every_s)

    return script


def _drip(data: bytes, every_s: float) -> Iterator[bytes]:
    """One byte at a time; the whole run never longer than DRIP_LIMIT_S (then the rest at once)."""
    end = time.monotonic() + DRIP_LIMIT_S
    for i in range(len(data)):
        if time.monotonic() > end:
            yield data[i:]
            return
        yield data[i:i + 1]
        time.sleep(every_s)


def redirect(location: str) -> Script:
    def script(request: Request) -> Iterator[bytes]:
        yield _head("302 Found", {"Location": location, "Content-Length": "0"})

    return script


def status(code: int, *, retry_after: str | None = None, body: bytes = b"{}") -> Script:
    def script(request: Request) -> Iterator[bytes]:
        headers = {"Content-Length": str(len(body))}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        yield _head(f"{code} Status", headers) + body

    return script


def first_then(first: Script, then: Script) -> Script:
    """`first` for the first request to the path, `then` for every later one (a portal that recovers)."""
    calls = []

    def script(request: Request) -> Iterator[bytes]:
        calls.append(request)
        return (first if len(calls) == 1 else then)(request)

    return script
