"""The one place that builds HTTP sessions and turns HTTP trouble into the connector errors.

Every connector request goes through `get_json` (or `call_with_retries` for a third-party client such as
sodapy that owns its own request code): a default timeout, an honest User-Agent, and every response bounded:

* retries are urllib3's `Retry`, mounted on the session's adapters: 429 and 5xx (and connection errors and
  timeouts before a response) are retried, honouring `Retry-After` up to a cap, with capped exponential backoff;
  401/403 and every other 4xx are fatal;
* a deadline per request covers everything from the first connect to the last byte, retries and their waits
  included: a watchdog shuts the socket down when it passes, so a portal that drips one byte every few
  seconds (each read within the read timeout) cannot hold a harvest for ever;
* the body is read in chunks and counted after decompression, so neither an endless stream nor a gzip bomb
  can take the process's memory: past the cap the request fails;
* credentials (the app token, any auth header) go only to the host that was asked: a redirect to another host
  or port drops them.
"""
from __future__ import annotations

import email.utils
import heapq
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, ReadTimeoutError, ResponseError
from urllib3.util.retry import Retry

from connectors.base import PortalAuthError, PortalIncompatible, PortalUnavailable

USER_AGENT = "city-maturity/0.1 (open data maturity monitor; python-requests)"
TIMEOUT_S = 30.0  # connect, and each read; the biggest recorded catalog page is ~2.5 MB
MAX_RETRIES = 4  # after the first attempt: 5 tries span ~1 minute of backoff, long enough for a portal blip
BACKOFF_BASE_S = 2.0  # first retry delay; doubles each attempt
BACKOFF_CAP_S = 30.0  # no single backoff sleep longer than this
MAX_RETRY_AFTER_S = 120.0  # honour a portal's Retry-After up to 2 minutes; a longer ask fails the run instead
# One request, first connect to last byte, retries and their waits included. The slowest real catalog page seen
# took ~20 s; 3 minutes leaves room for a retry or two and keeps a dripping portal's run under 5 minutes.
DEADLINE_S = 180.0
# Decompressed body size a response may reach. The largest recorded catalog page is ~2.5 MB and the largest
# whole data.json ~40 MB (NYC-sized DCAT documents); 64 MB is well above both, far below a worker's memory.
MAX_RESPONSE_BYTES = 64 * 2**20
CHUNK_BYTES = 64 * 1024  # one read of the body; urllib3 (>= 2.6) bounds what one chunk inflates to
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # transient by HTTP semantics
AUTH_STATUSES = frozenset({401, 403})
BODY_PREVIEW_CHARS = 120  # how much of a bad body an error message quotes (portal text is untrusted: repr'd)
# Request headers that carry credentials, by what their names say (Authorization, X-App-Token, X-API-Key, Cookie,
# …): dropped on a redirect to another host.
CREDENTIAL_HEADER = re.compile(r"auth|token|key|secret|cookie|session", re.IGNORECASE)

T = TypeVar("T")


class DeadlineExceeded(PortalUnavailable):
    """The request's deadline passed (slow or dripping portal); the run fails with this reason."""


class ResponseTooLarge(PortalIncompatible):
    """The body grew past the portal's size cap (after decompression); the run fails with this reason."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retry and bound knobs; tests inject tiny values and a recording `sleep` so they stay fast."""

    retries: int = MAX_RETRIES
    backoff_s: float = BACKOFF_BASE_S
    backoff_cap_s: float = BACKOFF_CAP_S
    max_retry_after_s: float = MAX_RETRY_AFTER_S
    timeout_s: float = TIMEOUT_S
    deadline_s: float = DEADLINE_S
    max_bytes: int = MAX_RESPONSE_BYTES
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based): capped exponential."""
        return min(self.backoff_cap_s, self.backoff_s * (2**attempt))


DEFAULT_POLICY = RetryPolicy()


def policy_for(portal: Any) -> RetryPolicy:
    """The default policy with a portal's own bounds (`max_response_bytes`, `request_deadline_s`) where it has them."""
    return RetryPolicy(max_bytes=getattr(portal, "max_response_bytes", None) or MAX_RESPONSE_BYTES,
                       deadline_s=getattr(portal, "request_deadline_s", None) or DEADLINE_S)


def make_session(app_token: str | None = None, *, policy: RetryPolicy | None = None) -> requests.Session:
    """A requests session with the project's User-Agent, the Socrata app token if any, retries and bounds."""
    policy = policy or DEFAULT_POLICY
    session = _PortalSession()
    # With trust_env on, requests re-reads the proxy variables and netrc on every request (about a fifth of the
    # client's CPU for the benchmark's 291 requests). Where neither is configured there is nothing to re-read:
    # it is turned off, and the one other thing it reads, a CA bundle variable, is read once here in requests'
    # order. Where a proxy or netrc is configured, requests behaves exactly as usual.
    if not _proxy_or_netrc_configured():
        session.trust_env = False
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    if app_token:
        # Socrata's documented header; other portals ignore it.
        session.headers["X-App-Token"] = app_token
    adapter = _WatchedAdapter(max_retries=_PolicyRetry.of(policy))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # Every response's body is read here, bounded, before requests (or sodapy) touches it.
    session.hooks["response"].append(_read_bounded)
    session.retry_policy = policy  # type: ignore[attr-defined]
    return session


def _proxy_or_netrc_configured() -> bool:
    """Whether requests' trust_env would find proxies (any `*_proxy` variable, any case) or a netrc file."""
    if any(name.lower().endswith("_proxy") for name in os.environ) or os.environ.get("NETRC"):
        return True
    return any(Path(f).expanduser().exists() for f in ("~/.netrc", "~/_netrc"))


def policy_of(session: requests.Session) -> RetryPolicy:
    """The session's retry policy (a plain session handed in by a caller gets the default)."""
    return getattr(session, "retry_policy", DEFAULT_POLICY)


def retry_after_s(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), or None when absent/garbled."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def call_with_retries(session: requests.Session, fn: Callable[[], T], what: str) -> T:
    """Run one HTTP call `fn` (which raises `requests` exceptions) under the session's deadline, and translate.

    The retrying itself happens in the session's adapters (urllib3 `Retry`); this bounds the whole call by the
    deadline and turns what is left into the connector errors. `what` names the request in error messages
    (usually the URL). 401/403 → PortalAuthError; other 4xx, unparsable JSON and a body over the size cap →
    PortalIncompatible; timeouts, connection errors, the deadline, and 429/5xx once retries are spent →
    PortalUnavailable.
    """
    policy = policy_of(session)
    with _deadline(policy.deadline_s) as deadline:
        try:
            result = fn()
            # A socket shut by the watchdog can also end a read "normally" (headers cut short, an empty body).
            if deadline.expired:
                raise DeadlineExceeded(deadline.reason())
            return result
        except (DeadlineExceeded, ResponseTooLarge) as exc:
            raise type(exc)(f"{what}: {exc}") from exc
        except requests.HTTPError as exc:
            raise _status_error(exc.response, what, policy) from exc
        except requests.JSONDecodeError as exc:
            # Raised by clients that call response.json() (sodapy): the portal answered, but not with JSON,
            # so retrying will not help.
            raise PortalIncompatible(f"{what}: response is not valid JSON ({exc})") from exc
        except requests.TooManyRedirects as exc:
            raise PortalIncompatible(f"{what}: too many redirects ({exc})") from exc
        except ValueError as exc:  # requests' InvalidURL / MissingSchema: a config problem, not a blip
            raise PortalIncompatible(f"{what}: request rejected before sending ({exc})") from exc
        except requests.RequestException as exc:
            if deadline.expired:
                raise DeadlineExceeded(f"{what}: {deadline.reason()}") from exc
            raise PortalUnavailable(f"{what}: {_failure(exc, policy)}") from exc


def _status_error(response: requests.Response | None, what: str, policy: RetryPolicy) -> Exception:
    status = response.status_code if response is not None else 0
    if status in AUTH_STATUSES:
        return PortalAuthError(f"{what}: HTTP {status} (missing or wrong app token?)")
    if status not in RETRY_STATUSES:
        return PortalIncompatible(f"{what}: HTTP {status}, which is not retried")
    asked = retry_after_s(response.headers) if response is not None else None
    if asked is not None and asked > policy.max_retry_after_s:
        return PortalUnavailable(f"{what}: HTTP {status} asks to retry after {asked:.0f} s, "
                                 f"more than the {policy.max_retry_after_s:.0f} s we wait")
    return PortalUnavailable(f"{what}: HTTP {status} after {_attempts(response)} attempts")


def _attempts(response: requests.Response | None) -> int:
    retries = getattr(getattr(response, "raw", None), "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


def _failure(exc: requests.RequestException, policy: RetryPolicy) -> str:
    """What went wrong, from the urllib3 error inside requests' exception."""
    inner = exc.args[0] if exc.args else None
    attempts = policy.retries + 1 if isinstance(inner, MaxRetryError) else 1
    reason = inner.reason if isinstance(inner, MaxRetryError) else inner
    if isinstance(exc, requests.Timeout) or isinstance(reason, ReadTimeoutError):
        return f"timed out after {policy.timeout_s:g} s after {attempts} attempts"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return f"connection broken while reading the body ({type(reason).__name__})"
    return f"connection failed ({type(reason or exc).__name__}) after {attempts} attempts"


def _get(session: requests.Session, url: str, params: Mapping[str, Any] | None) -> requests.Response:
    response = session.get(url, params=params, timeout=policy_of(session).timeout_s)
    if response.status_code >= 400:
        raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
    return response


def get_bytes(session: requests.Session, url: str, params: Mapping[str, Any] | None = None) -> bytes:
    """GET with retries and bounds; the (decompressed) body."""
    response = call_with_retries(session, lambda: _get(session, url, params), url)
    return response.content


def parse_json(body: bytes, what: str) -> Any:
    """orjson parse; garbage or truncated JSON → PortalIncompatible quoting the start of the body."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        preview = body[:BODY_PREVIEW_CHARS].decode("utf-8", "replace")
        raise PortalIncompatible(
            f"{what}: response is not valid JSON ({exc}); {len(body)} bytes starting {preview!r}"
        ) from exc


def get_json(session: requests.Session, url: str, params: Mapping[str, Any] | None = None) -> Any:
    """GET with retries and bounds and parse the body with orjson."""
    return parse_json(get_bytes(session, url, params), url)


# --- retries ------------------------------------------------------------------------------------------------

class _PolicyRetry(Retry):
    """urllib3's Retry with the project's policy: our backoff formula, a cap on Retry-After (a longer ask is not
    waited for: the last response is returned and becomes the run's reason), sleeps through the policy's `sleep`
    (tests record them) and never past the request's deadline."""

    policy: RetryPolicy = DEFAULT_POLICY

    @classmethod
    def of(cls, policy: RetryPolicy) -> _PolicyRetry:
        retry = cls(total=policy.retries, connect=policy.retries, read=policy.retries, status=policy.retries,
                    other=0, allowed_methods=frozenset({"GET", "HEAD"}),
                    status_forcelist=RETRY_STATUSES, backoff_factor=policy.backoff_s,
                    backoff_max=policy.backoff_cap_s, respect_retry_after_header=True,
                    raise_on_status=False)
        retry.policy = policy
        return retry

    def new(self, **kw: Any) -> _PolicyRetry:
        retry = super().new(**kw)
        retry.policy = self.policy
        return retry

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> _PolicyRetry:
        if response is not None:
            asked = retry_after_s(response.headers)
            if asked is not None and asked > self.policy.max_retry_after_s:
                # urllib3 would clamp the wait; we do not wait at all. Exhausting the retries makes urlopen return
                # this response (raise_on_status=False), whose status and header become the reason.
                raise MaxRetryError(_pool, url or "", ResponseError(f"Retry-After {asked:.0f} s"))
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_backoff_time(self) -> float:
        """`policy.backoff(n)` before the (n+1)-th retry: the first retry already waits `backoff_s`."""
        return self.policy.backoff(max(0, len(self.history) - 1))

    def sleep(self, response: Any = None) -> None:
        asked = retry_after_s(response.headers) if response is not None else None
        delay = asked if asked is not None else self.get_backoff_time()
        deadline = _current()
        if deadline is not None and delay >= deadline.left():
            deadline.expire()
            raise DeadlineExceeded(deadline.reason(f"the next retry would wait {delay:g} s"))
        if delay > 0:
            self.policy.sleep(delay)


# --- the deadline watchdog --------------------------------------------------------------------------------

class _Deadline:
    """One request's deadline: when it passes, the watchdog shuts down the socket the request is using, so a
    blocked read returns at once whatever phase it is in (headers, body, draining an error body)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self.done = False  # the request ended: the watchdog forgets it
        # The socket itself, not the connection: http.client drops `conn.sock` once a response says
        # "Connection: close", while the response goes on reading from it.
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def __lt__(self, other: _Deadline) -> bool:  # heap order
        return self.at < other.at

    def left(self) -> float:
        return self.at - time.monotonic()

    def reason(self, detail: str = "") -> str:
        extra = f" ({detail})" if detail else ""
        return f"no complete response within the {self.seconds:g} s deadline{extra}"

    def attach(self, sock: socket.socket | None) -> None:
        """The socket a request (or retry) is about to use; one used after expiry is shut at once."""
        with self._lock:
            if sock is not None:
                self._sock = sock
            expired = self.expired
        if expired:
            self.expire()
            raise DeadlineExceeded(self.reason())

    def expire(self) -> None:
        with self._lock:
            if self.done:  # the watchdog came late: the socket is back in the pool, serving another request
                return
            self.expired = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass

    def finish(self) -> None:
        """The request ended: its socket is no longer this deadline's to shut."""
        with self._lock:
            self.done = True
            self._sock = None

    def check(self) -> None:
        if self.expired or self.left() <= 0:
            self.expire()
            raise DeadlineExceeded(self.reason())


class _Watchdog:
    """One thread per process that expires the requests' deadlines in time order (a heap), so a request costs a
    heap push rather than a timer thread of its own."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Deadline] = []
        self._thread: threading.Thread | None = None

    def watch(self, deadline: _Deadline) -> None:
        with self._cond:
            heapq.heappush(self._heap, deadline)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="http-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is deadline:  # sooner than what the thread waits for
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                left = self._heap[0].left()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap).expire()

    def after_fork(self) -> None:
        """A forked child has no watchdog thread and none of its parent's requests."""
        self.__init__()  # type: ignore[misc]


_WATCHDOG = _Watchdog()
os.register_at_fork(after_in_child=_WATCHDOG.after_fork)
_local = threading.local()


def _current() -> _Deadline | None:
    return getattr(_local, "deadline", None)


@contextmanager
def _deadline(seconds: float) -> Iterator[_Deadline]:
    outer = _current()
    if outer is not None:  # nested call (a client calling back into us): the outer deadline rules
        yield outer
        return
    deadline = _Deadline(seconds)
    _local.deadline = deadline
    _WATCHDOG.watch(deadline)
    try:
        yield deadline
    finally:
        deadline.finish()
        _local.deadline = None


def _watch(sock: socket.socket | None) -> None:
    deadline = _current()
    if deadline is not None:
        deadline.attach(sock)


class _Watched:
    """Mixed into urllib3's connections: reports the socket to the request's deadline, when it connects and when
    it is reused for a request."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]  # the connection class this is mixed into has it
        _watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]
        _SENT[id(self)] = time.monotonic()

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().getresponse(*args, **kwargs)  # type: ignore[misc]
        finally:
            _SENT.pop(id(self), None)

    def close(self) -> None:
        _SENT.pop(id(self), None)
        super().close()  # type: ignore[misc]


# Requests of this process sent and not yet answered (connection -> when sent, time.monotonic): how long portals
# keep this process waiting (`oldest_wait_s`). Dict operations are atomic under the GIL.
_SENT: dict[int, float] = {}


def oldest_wait_s() -> float:
    """How long the longest-waiting request of this process has waited for its answer to start; 0 if none."""
    sent = list(_SENT.values())
    return time.monotonic() - min(sent) if sent else 0.0


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections report to the request's deadline watchdog."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


# --- bounded bodies ---------------------------------------------------------------------------------------

def _read_bounded(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """Response hook: read the body in chunks, decompressed, within the size cap and the deadline.

    requests reads `content` after its hooks, and finds it already read. (`_content` is requests' own slot for
    the body; setting it is how a hook hands a pre-read body on.)
    """
    content: object = response._content
    if response.raw is None or content is not False:  # already read (or nothing to read)
        return response
    session_policy = getattr(response.connection, "max_retries", None)
    policy = getattr(session_policy, "policy", DEFAULT_POLICY)
    deadline = _current()
    chunks, size = [], 0
    try:
        for chunk in response.raw.stream(CHUNK_BYTES, decode_content=True):
            size += len(chunk)
            if size > policy.max_bytes:
                response.raw.close()
                raise ResponseTooLarge(f"response larger than the {_mb(policy.max_bytes)} cap (after decompression)"
                                       f"; raise max_response_mb for this portal if it is genuine")
            chunks.append(chunk)
            if deadline is not None:
                deadline.check()
    except (ResponseTooLarge, DeadlineExceeded):
        raise
    except Exception as exc:
        if deadline is not None and deadline.expired:
            raise DeadlineExceeded(deadline.reason()) from exc
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    if deadline is not None:
        deadline.check()
    response._content = b"".join(chunks)
    response._content_consumed = True  # type: ignore[attr-defined]
    return response


def _mb(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} bytes"


# --- credentials stay home ------------------------------------------------------------------------------------

class _PortalSession(requests.Session):
    """A session whose credentials stay on the host they were configured for."""

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        # requests drops `Authorization` alone when a redirect leaves the host; the app token and any other
        # credential header must not follow either (a portal's redirect to a CDN, or to anyone).
        super().rebuild_auth(prepared_request, response)
        previous = response.request.url or ""
        if self.should_strip_auth(previous, prepared_request.url or ""):
            for name in [h for h in prepared_request.headers if CREDENTIAL_HEADER.search(h)]:
                del prepared_request.headers[name]
