"""Headless Chromium for the page tests (Debian's /usr/bin/chromium from packages-dev.txt, driven by playwright)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Chromium stalls on a machine without network unless every phone-home feature is off.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (packages-dev.txt)")


def launch(playwright: Any, args: list[str] | None = None) -> Any:
    """A headless Chromium browser with the flags this closed network needs (plus ``args``)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *(args or [])], timeout=30_000
    )


def wait_until(page: Any, expression: str, timeout: int = 10_000) -> None:
    """Poll ``expression`` in the page. Playwright's wait_for_function evaluates strings with eval, which a page's
    Content-Security-Policy (rightly) forbids; CDP evaluation is not subject to it."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)
