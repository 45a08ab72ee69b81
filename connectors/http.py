"""The one place that builds HTTP sessions and turns HTTP trouble into the connector errors.

Every connector request goes through `get_json` (or `call_with_retries` for a third-party client such as
sodapy that owns its own request code): a default timeout, an honest User-Agent, retries on 429 and 5xx
honouring `Retry-After`, capped exponential backoff, and every other 4xx fatal.
"""
from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import requests

from connectors.base import PortalAuthError, PortalIncompatible, PortalUnavailable

USER_AGENT = "city-maturity/0.1 (open data maturity monitor; python-requests)"
TIMEOUT_S = 30.0  # per request (connect and each read); the biggest recorded catalog page is ~2.5 MB
MAX_RETRIES = 4  # after the first attempt: 5 tries span ~1 minute of backoff, long enough for a portal blip
BACKOFF_BASE_S = 2.0  # first retry delay; doubles each attempt
BACKOFF_CAP_S = 30.0  # no single backoff sleep longer than this
MAX_RETRY_AFTER_S = 120.0  # honour a portal's Retry-After up to 2 minutes; a longer ask fails the run instead
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})  # transient by HTTP semantics
AUTH_STATUSES = frozenset({401, 403})
BODY_PREVIEW_CHARS = 120  # how much of a bad body an error message quotes (portal text is untrusted: repr'd)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Retry knobs; tests inject a tiny backoff and a recording `sleep` so they stay fast."""

    retries: int = MAX_RETRIES
    backoff_s: float = BACKOFF_BASE_S
    backoff_cap_s: float = BACKOFF_CAP_S
    max_retry_after_s: float = MAX_RETRY_AFTER_S
    timeout_s: float = TIMEOUT_S
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based): capped exponential."""
        return min(self.backoff_cap_s, self.backoff_s * (2**attempt))


DEFAULT_POLICY = RetryPolicy()


def make_session(app_token: str | None = None, *, policy: RetryPolicy | None = None) -> requests.Session:
    """A requests session with the project's User-Agent, the Socrata app token if any, and a retry policy."""
    session = requests.Session()
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
    session.retry_policy = policy or DEFAULT_POLICY  # type: ignore[attr-defined]
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
    """Run one HTTP call `fn` (which raises `requests` exceptions), retrying transient failures.

    `what` names the request in error messages (usually the URL). 401/403 → PortalAuthError; other 4xx and
    unparsable JSON → PortalIncompatible; timeouts, connection errors, 429 and 5xx once retries are spent →
    PortalUnavailable.
    """
    policy = policy_of(session)
    last = "no attempt made"
    for attempt in range(policy.retries + 1):
        delay = policy.backoff(attempt)
        try:
            return fn()
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            if status in AUTH_STATUSES:
                raise PortalAuthError(f"{what}: HTTP {status} (missing or wrong app token?)") from exc
            if status not in RETRY_STATUSES:
                raise PortalIncompatible(f"{what}: HTTP {status}, which is not retried") from exc
            last = f"HTTP {status}"
            asked = retry_after_s(response.headers) if response is not None else None
            if asked is not None:
                if asked > policy.max_retry_after_s:
                    raise PortalUnavailable(
                        f"{what}: HTTP {status} asks to retry after {asked:.0f} s, "
                        f"more than the {policy.max_retry_after_s:.0f} s we wait"
                    ) from exc
                delay = asked
        except requests.JSONDecodeError as exc:
            # Raised by clients that call response.json() (sodapy): the portal answered, but not with JSON,
            # so retrying will not help.
            raise PortalIncompatible(f"{what}: response is not valid JSON ({exc})") from exc
        except ValueError as exc:  # requests' InvalidURL / MissingSchema: a config problem, not a blip
            raise PortalIncompatible(f"{what}: request rejected before sending ({exc})") from exc
        except requests.Timeout:
            last = f"timed out after {policy.timeout_s:g} s"
        except requests.RequestException as exc:
            last = f"connection failed ({type(exc).__name__})"
        if attempt < policy.retries:
            policy.sleep(delay)
    raise PortalUnavailable(f"{what}: {last} after {policy.retries + 1} attempts")


def _get(session: requests.Session, url: str, params: Mapping[str, Any] | None) -> requests.Response:
    response = session.get(url, params=params, timeout=policy_of(session).timeout_s)
    if response.status_code >= 400:
        raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
    return response


def get_bytes(session: requests.Session, url: str, params: Mapping[str, Any] | None = None) -> bytes:
    """GET with retries; the raw body."""
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
    """GET with retries and parse the body with orjson."""
    return parse_json(get_bytes(session, url, params), url)
