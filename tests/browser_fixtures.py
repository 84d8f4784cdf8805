"""Browser fixtures (one session-wide Playwright and Chromium for every test that needs them),
imported by tests/conftest.py. They drive a real headless Chromium against pytest-django's
live server.

Playwright's own browser download needs the network, so the tests use the system Chromium
(Debian's /usr/bin/chromium; override with HELDOUT_CHROMIUM). Browser tests must run
wherever the suite runs: a missing browser fails them, it never skips them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("HELDOUT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-gpu",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    # Playwright's sync API keeps an asyncio event loop running in this thread, so Django
    # would refuse ORM calls from test code (SynchronousOnlyOperation) although nothing here
    # is async: the ORM runs in this thread and in the live-server thread, never in the loop.
    # Set only while the driver runs, so tests that never start a browser keep the check.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as driver:
            yield driver
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium is required for the browser tests but {CHROMIUM} does not exist. "
            "Install it (apt-get install chromium) or set HELDOUT_CHROMIUM to its path.",
            pytrace=False,
        )
    item = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield item
    item.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the item so fixtures can tell whether the test failed.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer, artifacts: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserContext]]:
    """Open fresh browser contexts (separate cookie jars: one per person) on the live server.

    When the test fails, every open page is saved as a screenshot for the post-mortem.
    """
    contexts: list[BrowserContext] = []

    def open_context(**options: object) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(base_url=live_server.url, **options)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield open_context
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        test = re.sub(r"\W+", "-", request.node.name).strip("-")
        for n, context in enumerate(contexts):
            for m, page in enumerate(context.pages):
                page.screenshot(path=artifacts / f"FAILED-{test}-{n}-{m}.png", full_page=True)
    for context in contexts:
        context.close()
