"""Debian's chromium driven by Playwright (executable_path: nothing downloads a browser), with a
fresh profile, every request outside the server under test aborted and recorded, and console
errors (CSP violations among them) collected, so a test can assert a page is self-contained."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

CHROMIUM = os.environ.get("FUSIONSERVE_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class PageLog:
    """What the page did besides rendering."""

    base: str
    requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def assert_self_contained(self) -> None:
        assert self.requests, "the page made no request at all: nothing was checked"
        assert not self.outside, f"requests outside the app: {self.outside}"
        assert not self.console_errors, f"console errors (CSP?): {self.console_errors}"
        assert not self.page_errors, f"script errors: {self.page_errors}"


def chromium_or_skip() -> str:
    """The system browser; CI installs it (.ci/run), so there a missing browser is a failure."""
    pytest.importorskip("playwright", reason="browser tests need the dev extra (playwright)")
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} not found: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    return CHROMIUM


@contextmanager
def browser_page(base: str, width: int = 900, height: int = 1000) -> Iterator[tuple[Page, PageLog]]:
    """(playwright Page, PageLog) for pages under `base`; the profile is deleted afterwards."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    log = PageLog(base)
    with (
        tempfile.TemporaryDirectory(prefix="fusionserve-chromium-") as profile,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            args=FLAGS,
            headless=True,
            viewport={"width": width, "height": height},
        )
        try:

            def guard(route: Route) -> None:
                url = route.request.url
                log.requests.append(url)
                if url.startswith((base + "/", "data:", "blob:")) or url == base:
                    route.continue_()
                else:
                    log.outside.append(url)
                    route.abort("blockedbyclient")

            context.route("**/*", guard)
            page = context.new_page()
            page.on(
                "console",
                lambda m: log.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))
            yield page, log
        finally:
            context.close()
