"""Portal connectors: one module per portal kind, listed by hand in `CONNECTORS` (no scanning)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from connectors.base import Connector
from connectors.ckan import CkanConnector
from connectors.dcat import DcatConnector
from connectors.http import make_session, policy_for
from connectors.socrata import SocrataConnector

CONNECTORS: dict[str, type] = {
    "socrata": SocrataConnector,
    "ckan": CkanConnector,
    "dcat": DcatConnector,
}


def make_connector(
    portal: Any,
    *,
    session: requests.Session | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> Connector:
    """The connector for `portal.kind`, sharing `session` if given (else one built with the portal's app token)."""
    try:
        cls = CONNECTORS[portal.kind]
    except KeyError:
        known = ", ".join(CONNECTORS)
        raise ValueError(f"portal {portal.key!r}: unknown kind {portal.kind!r} (known: {known})") from None
    if session is None:
        token = portal.app_token.value() if getattr(portal, "app_token", None) else None
        session = make_session(token, policy=policy_for(portal))
    return cls(portal, session=session, progress=progress)


__all__ = ["CONNECTORS", "make_connector"]
