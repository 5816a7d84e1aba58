"""Fixtures for alert tests: apps with alert settings and a local webhook receiver."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from alerts_helpers import INTAKE, Receiver
from flask import Flask

from app import create_app
from core.extensions import limiter


@pytest.fixture
def make_app(app: Flask, make_config) -> Callable[..., Flask]:
    """Build another app on the same (already emptied) database with changed settings."""

    def factory(**overrides: object) -> Flask:
        overrides.setdefault("INTAKE_EMAILS", list(INTAKE))
        overrides.setdefault("RATELIMIT_ENABLED", False)
        application = create_app(make_config(**overrides))
        with application.app_context():
            limiter.reset()
        return application

    return factory


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running local webhook receiver."""
    lock = threading.Lock()
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = holder["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if rec.hang is not None:
                rec.hang.wait(5)
            with lock:
                rec.requests.append({"headers": dict(self.headers.items()), "body": body, "path": self.path})
                status = rec.statuses.pop(0) if rec.statuses else 200
            payload = b"ok" if status < 300 else b"receiver says no"
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the sender timed out and hung up: that is the behaviour under test

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder["r"]
    if holder["r"].hang is not None:
        holder["r"].hang.set()
    server.shutdown()
    server.server_close()
    thread.join(5)
