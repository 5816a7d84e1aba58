"""`make bench-nurture`: how long a nurture tick takes as the number of enrolled leads grows.

Prints, for SQLite and (when reachable) PostgreSQL: a tick sending 1,000 due steps among 10,000 and among
1,000,000 enrolled leads, their ratio (target <= 1.5), and a tick with nothing due among 1,000,000
(target < 20 ms). Emails are composed for real; the sender only returns a fake id.

Then (alone with `python -m bench.nurture dispatch`, `make bench-dispatch`) pipelined dispatch: emails/s of a
tick at NURTURE_CONCURRENCY=8 through the real sendgrid client against the fake SendGrid (its own process)
answering after 50 ms, with two baselines from the same run: a bare loop posting the same bodies through the
same client with 8 threads (target >= 0.8x), and the sequential bare loop (target >= 5x).
Environment: BENCH_DATABASE_URL (PostgreSQL server to use; default TEST_DATABASE_URL or the local one),
BENCH_NURTURE_LARGE (default 1000000), BENCH_DISPATCH_EMAILS (default 800), BENCH_DISPATCH_ROUNDS (default 3).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app, load_models
from bench.load import ROOT, publish_content, seed_enrolled
from config import Config
from core.clock import FrozenClock
from core.db import Base, db, normalize_url
from nurture.dispatch import tick

DUE = 1_000
SMALL = 10_000
LARGE = int(os.environ.get("BENCH_NURTURE_LARGE", "1000000"))
NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Monday 09:00 in Denver: inside the send window
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DISPATCH_EMAILS = int(os.environ.get("BENCH_DISPATCH_EMAILS", "800"))
DISPATCH_ROUNDS = int(os.environ.get("BENCH_DISPATCH_ROUNDS", "3"))
# The sequential baseline takes 50 ms per email: a sample of the bodies is enough for its rate.
SEQUENTIAL_SAMPLE = 200
PROVIDER_DELAY = 0.05
CONCURRENCY = 8
API_KEY = "SG.bench-key"
TARGET_PIPELINED, TARGET_SEQUENTIAL = 0.8, 5.0


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
    publish_content(app)
    with app.app_context():
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


class FakeProvider:
    """The fake SendGrid from tests/fakes as its own process (as the worker meets SendGrid), answering late."""

    def __init__(self, delay: float) -> None:
        args = [
            sys.executable,
            "-m",
            "tests.fakes.sendgrid",
            "--port",
            "0",
            "--api-key",
            API_KEY,
            "--delay",
            str(delay),
        ]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.url = json.loads(self.proc.stdout.readline())["url"]

    def get(self, path: str) -> object:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as response:
            return json.load(response)

    def accepted(self) -> int:
        return int(self.get("/_fake/stats")["accepted"])

    def bodies(self, start: int) -> list[dict]:
        return [record["body"] for record in self.get("/_fake/requests")[start:]]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()


def bare_loop(host: str, bodies: list[dict], threads: int) -> float:
    """Seconds to post `bodies` through the app's own sendgrid client object, `threads` loops at once."""
    from mailer.senders import SendGridSender

    client = SendGridSender(API_KEY, host=host).api
    shares = [bodies[n::threads] for n in range(threads)]

    def loop(share: list[dict]) -> None:
        for body in share:
            client.send(body)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(loop, shares))
    return time.perf_counter() - start


def dispatch_app(url: str, instance: Path, host: str, concurrency: int):
    config = Config(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(instance),
            "SECRET_KEY": "bench",
            "CLINIC_POSTAL_ADDRESS": "NexGenEsis Healthcare, 100 Example Ave, Denver, CO 80202, USA",
            "LOG_LEVEL": "WARNING",
            "MAIL_BACKEND": "sendgrid",
            "SENDGRID_API_KEY": API_KEY,
            "SENDGRID_API_HOST": host,
            "SITE_URL": "https://bench.nexgenesis.example",
            "NURTURE_CONCURRENCY": str(concurrency),
        }
    )
    config.CLOCK = FrozenClock(NOW)
    app = create_app(config)
    app.extensions["tick_tasks"] = []
    return app


def dispatch_figures(
    url: str, instance: Path, emails: int = DISPATCH_EMAILS, rounds: int = DISPATCH_ROUNDS, *, prepared: bool = False
) -> dict:
    """Emails/s of ticks sending `emails` due steps at NURTURE_CONCURRENCY=8, and of the two bare loops.

    Rounds alternate worker and pipelined baseline (a shared machine drifts); the figures are the medians.
    `prepared`: the database at `url` already has the schema and the published content (make bench's own).
    """
    provider = FakeProvider(PROVIDER_DELAY)
    try:
        app = dispatch_app(url, instance, provider.url, CONCURRENCY)
        if not prepared:
            with app.app_context():
                Base.metadata.drop_all(db.engine)
                Base.metadata.create_all(db.engine)
            publish_content(app)
        with app.app_context():
            seed_enrolled(db.engine, emails, emails, NOW, NOW - timedelta(minutes=1), NOW + timedelta(days=30))
        worker, pipelined, bodies = [], [], []
        for round_ in range(rounds):
            if round_:
                # The same leads' next step becomes due now: the same work again.
                with app.app_context(), db.engine.begin() as conn:
                    conn.execute(
                        text("UPDATE enrollments SET next_send_at = :at WHERE state = 'active'"),
                        {"at": (NOW - timedelta(minutes=1)).replace(tzinfo=None)},
                    )
            before = provider.accepted()
            start = time.perf_counter()
            with app.app_context():
                counts = tick("bench")
            seconds = time.perf_counter() - start
            sent = provider.accepted() - before
            assert sent == emails, (sent, counts)
            worker.append(sent / seconds)
            bodies = provider.bodies(before)
            pipelined.append(len(bodies) / bare_loop(provider.url, bodies, CONCURRENCY))
        sample = bodies[:SEQUENTIAL_SAMPLE]
        sequential = len(sample) / bare_loop(provider.url, sample, 1)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        provider.close()
    rate, bare = statistics.median(worker), statistics.median(pipelined)
    return {
        "worker": rate,
        "worker_rounds": worker,
        "bare_pipelined": bare,
        "bare_pipelined_rounds": pipelined,
        "bare_sequential": sequential,
        "ratio_pipelined": rate / bare,
        "ratio_sequential": rate / sequential,
    }


def run_dispatch(backend: str, url: str, instance: Path) -> bool:
    """Print the dispatch figures with their baselines and targets; whether both targets were met."""
    f = dispatch_figures(url, instance)
    rounds = " ".join(f"{w:.0f}/{b:.0f}" for w, b in zip(f["worker_rounds"], f["bare_pipelined_rounds"], strict=True))
    ok_pipelined = f["ratio_pipelined"] >= TARGET_PIPELINED
    ok_sequential = f["ratio_sequential"] >= TARGET_SEQUENTIAL
    print(
        f"{backend}: dispatch, {DISPATCH_EMAILS} due steps a round, the fake SendGrid answering after "
        f"{PROVIDER_DELAY * 1000:.0f} ms"
    )
    print(f"  worker, NURTURE_CONCURRENCY={CONCURRENCY}:           {f['worker']:7.1f} emails/s")
    print(f"  bare loop, same requests, {CONCURRENCY} threads:        {f['bare_pipelined']:7.1f} emails/s")
    print(f"  bare loop, same requests, sequential:     {f['bare_sequential']:7.1f} emails/s")
    print(
        f"  ratio to the pipelined bare loop: {f['ratio_pipelined']:.2f} (target >= {TARGET_PIPELINED}) "
        f"{'OK' if ok_pipelined else 'MISSED'}   [rounds worker/bare: {rounds}]"
    )
    print(
        f"  ratio to the sequential bare loop: {f['ratio_sequential']:.2f} (target >= {TARGET_SEQUENTIAL:g}) "
        f"{'OK' if ok_sequential else 'MISSED'}"
    )
    sys.stdout.flush()
    return ok_pipelined and ok_sequential


def main() -> None:
    load_models()
    only_dispatch = sys.argv[1:] == ["dispatch"]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        if not only_dispatch:
            run("sqlite", sqlite_url, Path(tmp) / "instance")
        ok &= run_dispatch("sqlite", f"sqlite:///{Path(tmp) / 'dispatch.db'}", Path(tmp) / "instance-d")
        pg = pg_database()
        if pg is not None:
            url, base, name = pg
            try:
                if not only_dispatch:
                    run("postgresql", url, Path(tmp) / "instance-pg")
                ok &= run_dispatch("postgresql", url, Path(tmp) / "instance-pg-d")
            finally:
                drop_pg(base, name)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
