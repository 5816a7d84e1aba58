"""The benchmark's app: the real app plus bare baseline routes. Served by `make bench` only, never in production."""

from __future__ import annotations

from flask import Flask, Response, request
from sqlalchemy import text

from app import create_app
from bench.load import BENCH_TABLE
from core.db import db
from core.extensions import csrf

LANDING_PATH = "/stem-cell-therapy"


def add_bench_routes(app: Flask) -> None:
    """Register the baselines: the landing page's bytes served bare, and a bare one-row insert."""
    captured: dict[str, bytes] = {}

    @app.get("/_bench/landing-bytes")
    def bench_landing_bytes() -> Response:
        """The landing page's bytes with no template, form or database work."""
        return Response(captured["landing"], mimetype="text/html")

    @app.post("/_bench/insert")
    @csrf.exempt
    def bench_insert() -> Response:
        """Parse the posted form and insert one row through the app's engine (same driver, same pragmas)."""
        email = request.form.get("email", "")
        with db.engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
            conn.execute(text(f"INSERT INTO {BENCH_TABLE} (email) VALUES (:email)"), {"email": email})
        return Response(status=303, headers={"Location": f"{LANDING_PATH}/thank-you"})

    # Routes first (Flask refuses new ones once a request was handled), then one real render to copy.
    with app.test_client() as client:
        landing = client.get(LANDING_PATH)
    if landing.status_code != 200:
        raise RuntimeError(f"{LANDING_PATH} answered {landing.status_code}; cannot take its bytes")
    captured["landing"] = landing.get_data()


app = create_app()
add_bench_routes(app)
