"""`make bench-admin`: response times of the admin's leads pages and dashboard at many leads, with a baseline.

Seeds the database with `flask demo seed`'s generator up to BENCH_ADMIN_LEADS leads (progress on stderr), signs
in with the test client and prints, for each page, the median of several requests, the baseline measured in the
same run (an admin route that only loads one lead by its primary key and renders a line: sign-in, session and
one indexed query, what every admin page pays) and their ratio. Target: each page's median under 250 ms.
Exits 1 when a page misses the target in every run (its fastest run too), so noise alone does not fail it.
The dashboard pages read their stored snapshot (admin.snapshots); how long the nurture worker takes to
recompute one (off the request path, not held to the target) is printed after them.

Environment: BENCH_ADMIN_URL (database; default a throwaway SQLite file), BENCH_ADMIN_LEADS (default 100000),
BENCH_ADMIN_RUNS (default 7), BENCH_ADMIN_DB (reuse a SQLite file).
PostgreSQL at a million leads (seeding takes minutes, once; later runs reuse the data):
`BENCH_ADMIN_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench_admin BENCH_ADMIN_LEADS=1000000 make bench-admin`
(the database must exist; the schema is migrated to head).
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

import admin.queries
from admin import snapshots
from admin.models import User
from admin.seed import seed
from admin.users import create_user
from app import create_app, load_models
from config import Config
from core.db import db, upgrade
from leads.models import Lead

TARGET_MS = 250.0
PASSWORD = "bench password 123"


def _app(folder: Path, url: str) -> Flask:
    env = {
        "INSTANCE_PATH": str(folder),
        "DATABASE_URL": url,
        "SECRET_KEY": "bench",
        "MAIL_BACKEND": "outbox",
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLED": "0",
        "CLINIC_POSTAL_ADDRESS": "NexGenEsis Healthcare, 100 Example Ave, Denver, CO 80202, USA",
    }
    app = create_app(Config(env))

    def baseline(lead_id: int) -> str:
        # What every admin page pays: the login check, the session, one primary-key read and a response.
        lead = db.session.get(Lead, lead_id)
        return f"lead {lead.id if lead else 0}"

    # Behind the admin's sign-in like the pages it is compared with.
    from flask_login import login_required

    app.add_url_rule("/admin/bench-baseline/<int:lead_id>", "bench_baseline", login_required(baseline))
    return app


def _time(client: FlaskClient, url: str, runs: int) -> list[float]:
    timings = []
    for n in range(runs + 1):
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        if n:  # the first request warms caches and templates
            timings.append(elapsed)
    return timings


def main() -> int:
    """Seed, sign in, time the pages against the baseline, print the figures."""
    count = int(os.environ.get("BENCH_ADMIN_LEADS", "100000"))
    runs = int(os.environ.get("BENCH_ADMIN_RUNS", "7"))
    load_models()
    folder = Path(tempfile.mkdtemp(prefix="bench-admin-"))
    url = os.environ.get("BENCH_ADMIN_URL") or f"sqlite:///{os.environ.get('BENCH_ADMIN_DB') or folder / 'bench.db'}"
    app = _app(folder, url)
    with app.app_context():
        backend = "SQLite" if db.engine.dialect.name == "sqlite" else "PostgreSQL"
        upgrade(db.engine)
        existing = db.session.scalar(select(func.count()).select_from(Lead)) or 0
        db.session.remove()
        if existing < count:
            started = time.perf_counter()
            totals = seed(
                count - existing, days=120, random_seed=42, progress=lambda line: print(line, file=sys.stderr)
            )
            took = time.perf_counter() - started
            rows = ", ".join(f"{v:,} {k}" for k, v in totals.items())
            print(f"seeded {totals['leads']:,} leads ({rows}) in {took:.1f}s")
        with db.write_transaction() as s:
            if s.scalar(select(func.count()).select_from(User)) == 0:
                create_user(s, "bench@nexgenesis.example", PASSWORD, "admin")
        total = db.session.scalar(select(func.count()).select_from(Lead))
        # A lead from the middle of the table: its name, a piece of its email, its phone's last seven digits.
        sample = db.session.scalars(
            select(Lead).where(Lead.phone.is_not(None), Lead.erased_at.is_(None)).order_by(Lead.id).offset(total // 2)
        ).first()
        if sample is None or not (sample.email and sample.phone and sample.last_name):
            raise SystemExit("no seeded lead with an email, a phone and a last name")
        # The seed writes first.last.<id><run>@domain: the last name and the id, as an operator might type them.
        email_part = sample.email.split("@")[0].split(".", 1)[1][:-6]
        name_part = sample.last_name.lower()[:5]
        digits = re.sub(r"\D", "", sample.phone)[-7:]
        deep = admin.queries._next_cursor(sample)  # a Next link from the middle of the table
        # What the worker does for each period in use, timed; the pages below then read these snapshots.
        refreshes = {}
        for days in (30, 90):
            key = (days, "", app.config["CLINIC_TIMEZONE"])
            took = []
            for _ in range(min(runs, 3)):
                started = time.perf_counter()
                snapshots.refresh(key)
                took.append((time.perf_counter() - started) * 1000)
            refreshes[f"dashboard, {days} days: one refresh by the worker"] = took
        db.session.remove()

    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/admin/login", data={"csrf_token": token, "email": "bench@nexgenesis.example", "password": PASSWORD}
    )
    if response.status_code != 302:
        print(f"could not sign in: {response.status_code}", file=sys.stderr)
        return 1

    cases = [
        ("leads, first page", "/admin/leads"),
        ("leads, filtered (status, source, interest)", "/admin/leads?status=contacted&source=google&interest=knee"),
        (
            "leads, filtered by campaign and dates",
            "/admin/leads?campaign=stem-cell-therapy&date_from=2000-01-01&sort=newest",
        ),
        ("leads, page 50", "/admin/leads?page=50"),
        ("leads, a page deep in the table by its Next link", f"/admin/leads?page=10000&after={deep}"),
        ("leads, sorted by name", "/admin/leads?sort=name"),
        ("leads, sorted by status, page 50", "/admin/leads?sort=status&page=50"),
        (f"leads, search by name '{name_part}'", f"/admin/leads?q={name_part}"),
        (f"leads, search by email '{email_part}'", f"/admin/leads?q={email_part}"),
        (f"leads, search by phone digits '{digits}'", f"/admin/leads?q={digits}"),
        ("a lead's page", f"/admin/leads/{sample.id}"),
        ("dashboard, 30 days (its snapshot)", "/admin/?days=30"),
        ("dashboard, 90 days (its snapshot)", "/admin/?days=90"),
    ]
    baseline_url = f"/admin/bench-baseline/{sample.id}"
    print(
        f"\nadmin response times at {total:,} leads on {backend} (median of {runs} runs; baseline: a signed-in route"
        f" reading one lead by id, measured before each page; target < {TARGET_MS:.0f} ms; the dashboard reads the"
        f" snapshot the worker refreshes every {app.config['DASHBOARD_CACHE_SECONDS']:.0f} s)"
    )
    print(f"  {'page':<48} {'median':>9} {'baseline':>9} {'ratio':>7}   min / max")
    missed = []
    worst = 0.0
    for label, page_url in cases:
        base = statistics.median(_time(client, baseline_url, runs))
        timings = _time(client, page_url, runs)
        median = statistics.median(timings)
        worst = max(worst, median)
        flag = "ok" if median < TARGET_MS else "SLOW"
        if min(timings) >= TARGET_MS:
            missed.append(label)
        print(
            f"  {label:<48} {median:6.1f} ms {base:6.1f} ms {median / base:6.1f}x"
            f"   {min(timings):.1f} / {max(timings):.1f}  {flag}"
        )
    print(f"slowest median: {worst:.1f} ms ({'within' if worst < TARGET_MS else 'over'} the {TARGET_MS:.0f} ms target)")
    print("off the request path (median of the runs shown):")
    for label, took in refreshes.items():
        print(f"  {label:<48} {statistics.median(took):6.1f} ms {'':>9} {'':>7}   {min(took):.1f} / {max(took):.1f}")
    if missed:
        print(f"missed the target in every run: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
