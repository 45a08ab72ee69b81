"""Thin entry for a checkout: `gunicorn app:server` (the installed name is `maturity.app:server`)."""
from __future__ import annotations

from typing import Any

from maturity.app import create_app, get_app

__all__ = ["create_app", "get_app"]  # and `server`, built on first access


def __getattr__(name: str) -> Any:
    # built lazily, as maturity.app does, so `import app` has no side effects
    if name == "server":
        return get_app().server
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
