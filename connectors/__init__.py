"""Portal connectors: one module per portal kind, listed by hand in `CONNECTORS` (no scanning).

`CONNECTORS` is the one list of portal kinds: config validation (settings.py), `maturity import`
(connectors/archive.py), the portal emulator (tests/emulator.py) and the tests read it, and
tests/connectors/test_kinds.py fails when a kind lacks any of its parts (docs/internals.md, "Add a portal kind").
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from connectors.base import Connector
from connectors.ckan import CkanConnector
from connectors.dcat import DcatConnector
from connectors.http import make_session, policy_for
from connectors.socrata import SocrataConnector

# kind (the `kind` of a [[cities.portals]] table) → its connector class (see connectors.base.Connector)
CONNECTORS: dict[str, type[Connector]] = {
    "socrata": SocrataConnector,
    "ckan": CkanConnector,
    "dcat": DcatConnector,
}
KINDS: tuple[str, ...] = tuple(CONNECTORS)


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


__all__ = ["CONNECTORS", "KINDS", "make_connector"]
