"""Debian's headless Chromium through Python playwright, and the app served on 127.0.0.1 for it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

REPO = Path(__file__).resolve().parents[2]
AXE_JS = REPO / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium keeps dialing Google's hosts, which this closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium(axe: bool = False) -> None:
    """Skip the test, saying why, when the browser (or axe-core) is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    if axe and not AXE_JS.exists():
        pytest.skip("axe-core is missing: run `npm ci` in tests/node")


@contextlib.contextmanager
def chromium(axe: bool = False) -> Iterator[object]:
    """A launched headless Chromium (never a downloaded browser build)."""
    require_chromium(axe)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def site_app(folder: Path) -> Flask:
    """The real app on its own SQLite database in `folder` (schema created, rate limits off), for a browser."""
    import config as app_config
    from app import create_app, load_models
    from core.db import Base, make_engine
    from tests.support.database import publish_folders

    url = f"sqlite:///{folder / 'site.db'}"
    load_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    config = app_config.TestConfig(str(folder / "instance"), url)
    config.RATELIMIT_ENABLED = False
    application = create_app(config)
    publish_folders(application, application.config["CAMPAIGNS_DIR"])
    return application


@contextlib.contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Serve the app with werkzeug in a thread on a free port of 127.0.0.1; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["SITE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, name="test-server", daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
