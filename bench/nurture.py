"""`make bench-nurture`: how long a nurture tick takes as the number of enrolled leads grows.

Prints, for SQLite and (when reachable) PostgreSQL: a tick sending 1,000 due steps among 10,000 and among
1,000,000 enrolled leads, their ratio (target <= 1.5), and a tick with nothing due among 1,000,000
(target < 20 ms). Emails are composed for real; the sender only returns a fake id.
Environment: BENCH_DATABASE_URL (PostgreSQL server to use; default TEST_DATABASE_URL or the local one),
BENCH_NURTURE_LARGE (default 1000000).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app, load_models
from bench.load import seed_enrolled
from config import Config
from core.clock import FrozenClock
from core.db import Base, db, normalize_url
from nurture.dispatch import tick

DUE = 1_000
SMALL = 10_000
LARGE = int(os.environ.get("BENCH_NURTURE_LARGE", "1000000"))
NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Monday 09:00 in Denver: inside the send window
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class NullSender:
    """Accepts every message and answers with a made-up provider id, instantly."""

    def __init__(self) -> None:
        self.count = 0

    def send(self, message: object) -> str:
        self.count += 1
        return f"bench-{self.count}"


def make_app(url: str, instance: Path):
    config = Config(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "CLINIC_POSTAL_ADDRESS": "NexGenEsis Healthcare, 100 Example Ave, Denver, CO 80202, USA",
            "LOG_LEVEL": "WARNING",
        }
    )
    config.CLOCK = FrozenClock(NOW)
    app = create_app(config)
    # The nurture pass alone: other packages' tick tasks are measured by their own benchmarks.
    app.extensions["tick_tasks"] = []
    return app


def timed_tick(app) -> tuple[float, dict[str, int]]:
    with app.app_context():
        start = time.perf_counter()
        counts = tick("bench")
        return time.perf_counter() - start, counts


def measure(app, enrolled: int, *, idle: bool) -> dict[str, float]:
    """Fresh tables, `enrolled` active enrollments of which DUE are due now; time the ticks."""
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        started = time.perf_counter()
        seed_enrolled(db.engine, enrolled, DUE, NOW, NOW - timedelta(minutes=1), NOW + timedelta(days=30))
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        seeded = time.perf_counter() - started
    sender = NullSender()
    app.extensions["mail_sender"] = sender
    timed_tick(app)  # warm caches the same way for every size: the first tick of a process compiles templates
    # The warm-up sent the due steps; make the same number due again (the next step, same cost).
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE enrollments SET next_send_at = :at"
                " WHERE id IN (SELECT id FROM enrollments ORDER BY id LIMIT :n)"
            ),
            {"at": (NOW - timedelta(minutes=1)).replace(tzinfo=None), "n": DUE},
        )
    before = sender.count
    seconds, counts = timed_tick(app)
    assert sender.count - before == DUE, counts
    result = {"seed_s": seeded, "tick_due_s": seconds}
    if idle:
        samples = [timed_tick(app)[0] for _ in range(7)]
        result["tick_idle_s"] = statistics.median(samples)
    return result


def pg_database() -> tuple[str, str, str] | None:
    """A throwaway database on the PostgreSQL server, or None when there is none."""
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or PG_DEFAULT
    url = make_url(normalize_url(base))
    name = f"bench_nurture_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001
        print(f"postgresql: skipped ({type(exc).__name__}: no server at {url.render_as_string()})")
        return None
    return url.set(database=name).render_as_string(hide_password=False), base, name


def drop_pg(base: str, name: str) -> None:
    admin = create_engine(make_url(normalize_url(base)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(backend: str, url: str, instance: Path) -> None:
    app = make_app(url, instance)
    small = measure(app, SMALL, idle=False)
    large = measure(app, LARGE, idle=True)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    ratio = large["tick_due_s"] / small["tick_due_s"]
    idle_ms = large["tick_idle_s"] * 1000
    print(f"{backend}:")
    print(f"  tick, {DUE:,} due among {SMALL:,} enrolled:   {small['tick_due_s'] * 1000:8.0f} ms")
    print(f"  tick, {DUE:,} due among {LARGE:,} enrolled: {large['tick_due_s'] * 1000:8.0f} ms")
    print(f"  ratio large/small: {ratio:.2f} (target <= 1.5) {'OK' if ratio <= 1.5 else 'MISSED'}")
    print(
        f"  tick, nothing due among {LARGE:,}: {idle_ms:.1f} ms (target < 20 ms) {'OK' if idle_ms < 20 else 'MISSED'}"
    )
    print(f"  (seeding {LARGE:,} rows took {large['seed_s']:.0f} s)")
    sys.stdout.flush()


def main() -> None:
    load_models()
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", Path(tmp) / "instance")
        pg = pg_database()
        if pg is not None:
            url, base, name = pg
            try:
                run("postgresql", url, Path(tmp) / "instance-pg")
            finally:
                drop_pg(base, name)


if __name__ == "__main__":
    main()
