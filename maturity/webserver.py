"""The embedded web server of `maturity serve`: werkzeug's threaded server, stopped without losing a request.

Flask's `app.run` stops by leaving `serve_forever` and letting the interpreter end. A browser opens connections
ahead of its next request (Chromium keeps preconnected spare sockets), and their handler threads were still
waiting for a request line when the process closed its sockets: werkzeug printed `OSError: [Errno 9] Bad file
descriptor` tracebacks at a stop with a browser attached. Here a stop first stops accepting, then ends each open
connection's reading side (a handler waiting for a request reads the end of the stream and ends cleanly; a
request being answered still sends its answer), and waits up to DRAIN_S for the handler threads to finish.
"""
from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from werkzeug.serving import ThreadedWSGIServer

log = logging.getLogger(__name__)
DRAIN_S = 5.0  # a request still being answered after this long does not hold the stop back


class DrainingServer(ThreadedWSGIServer):
    """A ThreadedWSGIServer that knows its open connections, so `close_connections` can end them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._changed = threading.Condition()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._changed:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:  # called as a connection's handler thread ends
        try:
            super().shutdown_request(request)
        finally:
            with self._changed:
                self._open.discard(request)
                self._changed.notify_all()

    def close_connections(self, timeout: float = DRAIN_S) -> int:
        """End every open connection's reading side and wait for their threads; how many were still open after
        `timeout` (0 = all ended)."""
        with self._changed:
            for conn in self._open:
                try:
                    conn.shutdown(socket.SHUT_RD)
                except OSError:  # the client has gone already
                    pass
            self._changed.wait_for(lambda: not self._open, timeout)
            return len(self._open)


def run(wsgi_app: Any, host: str, port: int) -> None:
    """Serve `wsgi_app` until KeyboardInterrupt (Ctrl-C, or SIGTERM through scheduler.interrupt_on_sigterm), then
    stop as the module docstring says and return (werkzeug's `serve_forever` ends quietly on KeyboardInterrupt and
    closes the listening socket itself: no new connections)."""
    server = DrainingServer(host, port, wsgi_app)
    try:
        server.serve_forever()
    finally:
        left = server.close_connections()
        if left:
            log.warning("event=stop-with-open-connections connections=%d after_s=%s", left, DRAIN_S)
