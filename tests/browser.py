"""Run a Playwright *sync* session in a thread of its own.

pytest-playwright keeps an asyncio loop running in the main thread for the whole session once its fixtures
have been used (the e2e tests), and Playwright's sync API refuses to start inside a running loop. Tests that
drive their own browser (the offline report, the serve smoke test) therefore run it in a fresh thread.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the test's thread with its traceback
            result["error"] = exc

    t = threading.Thread(target=target, name="playwright-sync")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
