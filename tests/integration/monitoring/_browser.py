"""Open a local HTML file in headless Chromium (Debian's, never a downloaded one) and record every
request the page makes, so a test can prove the page needs nothing but itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Visit:
    page: Any  # playwright.sync_api.Page
    requests: list[str] = field(
        default_factory=list
    )  # every URL asked for, the page's own included
    refused: list[str] = field(default_factory=list)  # non-file requests, aborted
    console_errors: list[str] = field(default_factory=list)  # CSP violations land here


@contextmanager
def open_offline(path: Path) -> Iterator[Visit]:
    """``path`` loaded from ``file://`` with every non-file request aborted and recorded."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test does, as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install 'seaway[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            context = browser.new_context()
            visit = Visit(page=None)

            def route(route: Any) -> None:
                url = route.request.url
                if url.startswith("file:"):
                    route.continue_()
                else:
                    visit.refused.append(url)
                    route.abort()

            context.route("**/*", route)
            page = context.new_page()
            visit.page = page
            page.on("request", lambda request: visit.requests.append(request.url))
            page.on("websocket", lambda ws: visit.refused.append(ws.url))
            page.on(
                "console",
                lambda message: (
                    visit.console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.goto(path.resolve().as_uri(), wait_until="load")
            yield visit
        finally:
            browser.close()
