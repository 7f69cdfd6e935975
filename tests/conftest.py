"""Fixtures shared by all tests. Keep this small: put helpers in their own modules."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Playwright must never download a browser: tests drive Debian's /usr/bin/chromium.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[object]:
    """A headless Playwright Browser on /usr/bin/chromium, one per test worker."""
    from browser import launch_chromium

    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def offline_page(chromium_browser: object) -> Iterator[object]:
    """A fresh page that may only reach 127.0.0.1 (see ``browser.OfflinePage``)."""
    from browser import offline_page_in

    with offline_page_in(chromium_browser) as page:
        yield page
