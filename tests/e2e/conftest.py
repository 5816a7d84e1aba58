"""The browser and the live server the end-to-end tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.browser import chromium, serve


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium driven by Python playwright."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The app served on 127.0.0.1 (sharing the test's database); yields its base URL."""
    with serve(app) as base:
        yield base
