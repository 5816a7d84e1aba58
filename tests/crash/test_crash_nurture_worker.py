"""Kill the nurture worker with SIGKILL mid-send, again and again: nobody gets a step twice, nothing is lost."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from core.db import db
from leads.models import Lead
from mailer.models import Delivery
from nurture.models import Enrollment
from tests.support.content import CAMPAIGNS, POSTS
from tests.support.database import publish_folders

ROOT = Path(__file__).resolve().parents[2]
LEADS = int(os.environ.get("CRASH_LEADS", 5000))
# The claim and sweep code is shared; PostgreSQL adds SKIP LOCKED, which fewer rows exercise as well, cheaper.
PG_LEADS = int(os.environ.get("CRASH_PG_LEADS", 2000))
KILLS = 10
# The worker keeps up to NURTURE_CONCURRENCY sends in flight, so a kill can leave at most that many without an answer.
IN_FLIGHT_PER_WORKER = 8
# The fake answers this much later, as a real provider does, so a kill finds several sends in flight.
PROVIDER_DELAY_SECONDS = 0.02
LEASE_SECONDS = 2
CAMPAIGN = "stem-cell-therapy"
# Generous, because a loaded machine sends slower; a real hang still fails.
FINISH_TIMEOUT = 240.0

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str, timeout: float = 30.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _always_open_campaigns(target: Path) -> Path:
    """A copy of the fixture campaigns whose send window is always open, so wall-clock time never defers a send."""
    shutil.copytree(CAMPAIGNS, target)
    for path in target.glob("*/campaign.yaml"):
        data = yaml.safe_load(path.read_text())
        data["send_window"] = {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "start": "00:00",
            "end": "23:59",
            "timezone": "UTC",
        }
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def _seed_due_enrollments(count: int) -> None:
    """Bulk-create `count` consenting leads enrolled with the first step due now (SQLAlchemy core, one batch)."""
    moment = datetime.now(UTC)
    due = moment - timedelta(seconds=30)
    leads = [
        {
            "email": f"crash{i:05d}@example.com",
            "first_name": f"Crash{i}",
            "last_name": "Test",
            "interest": "knee",
            "preferred_contact": "email",
            "status": "new",
            "source": "crash",
            "landing_slug": CAMPAIGN,
            "email_opt_in": True,
            "created_at": moment,
            "updated_at": moment,
        }
        for i in range(count)
    ]
    with db.engine.begin() as conn:
        conn.execute(Lead.__table__.insert(), leads)
        ids = conn.execute(select(Lead.id).order_by(Lead.id)).scalars().all()
        conn.execute(
            Enrollment.__table__.insert(),
            [
                {
                    "lead_id": lead_id,
                    "campaign_slug": CAMPAIGN,
                    "state": "active",
                    "next_step": 0,
                    "next_send_at": due,
                    "created_at": moment,
                    "confirmed_at": moment,
                }
                for lead_id in ids
            ],
        )


def _sent_requests(fake_url: str) -> list[tuple[str, str, str | None]]:
    """(recipient, step, delivery id) for every personalization of every Mail Send request the fake accepted."""
    seen = []
    for record in _get_json(f"{fake_url}/_fake/requests", timeout=60):
        body = record["body"]
        for personalization in body["personalizations"]:
            args = {**body.get("custom_args", {}), **personalization.get("custom_args", {})}
            for to in personalization.get("to", []):
                seen.append((to["email"].lower(), args.get("step"), args.get("delivery_id")))
    return seen


class Worker:
    """One `flask nurture run` process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "nurture", "run"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no handler runs, no transaction finishes."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        """SIGTERM, the clean shutdown; SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def fake_sendgrid_process(tmp_path: Path):
    """The fake SendGrid as its own process, as the worker would meet the real one: (url, api key)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.sendgrid", "--port", "0", "--delay", str(PROVIDER_DELAY_SECONDS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Its first line names its URL and key, once it listens.
        info = json.loads(proc.stdout.readline())
        yield info["url"], info["api_key"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_sigkill_mid_send_never_sends_a_step_twice(app, backend, database_url, tmp_path, fake_sendgrid_process):
    fake_url, api_key = fake_sendgrid_process
    leads = LEADS if backend == "sqlite" else PG_LEADS
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    campaigns = _always_open_campaigns(tmp_path / "campaigns")
    publish_folders(app, campaigns)
    with app.app_context():
        _seed_due_enrollments(leads)

    env = {
        **os.environ,
        "FLASK_APP": "app:create_app",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "crash-test-secret",
        "SITE_URL": "https://www.nexgenesis.example",  # the worker refuses http with MAIL_BACKEND=sendgrid
        "CLINIC_POSTAL_ADDRESS": "NexGenEsis Healthcare, 100 Example Ave, Denver, CO 80202, USA",
        "CAMPAIGNS_DIR": str(campaigns),
        "BLOG_DIR": str(POSTS),
        "MAIL_BACKEND": "sendgrid",
        "SENDGRID_API_KEY": api_key,
        "SENDGRID_API_HOST": fake_url,
        "SENDGRID_TIMEOUT": "2",
        "NURTURE_TICK_SECONDS": "0.2",
        "NURTURE_LEASE_SECONDS": str(LEASE_SECONDS),
        "NURTURE_TIME_SCALE": "1",
        "NURTURE_CONCURRENCY": str(IN_FLIGHT_PER_WORKER),
        "LOG_LEVEL": "WARNING",
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "worker.log"
    session = db.factory()  # a fresh read each poll, outside the app's scoped session

    def count(state: str | tuple[str, ...]) -> int:
        states = (state,) if isinstance(state, str) else state
        session.rollback()
        return session.scalar(select(func.count()).select_from(Delivery).where(Delivery.state.in_(states)))

    def ids_in(state: str) -> set[int]:
        session.rollback()
        return set(session.scalars(select(Delivery.id).where(Delivery.state == state)))

    started = time.monotonic()
    in_flight_at_kills: list[set[int]] = []
    left_sending: set[int] = set()
    try:
        for _ in range(KILLS):
            before = count(("sent", "delivered"))
            worker = Worker(env, log)

            def sending_started(worker: Worker = worker, before: int = before) -> bool:
                assert worker.proc.poll() is None, f"worker exited early:\n{log.read_text()[-3000:]}"
                return count(("sent", "delivered")) > before

            _wait_until(sending_started, 60, "the restarted worker to send")
            time.sleep(rng.uniform(0.0, 0.4))
            worker.kill()
            # The process is dead: whatever it left in "sending" was in flight at the kill.
            new = ids_in("sending") - left_sending
            in_flight_at_kills.append(new)
            left_sending |= new

        worker = Worker(env, log)

        def finished() -> bool:
            assert worker.proc.poll() is None, f"worker exited early:\n{log.read_text()[-3000:]}"
            return count(("sent", "delivered", "unknown")) >= leads and count(("pending", "sending", "retrying")) == 0

        kills_done = time.monotonic()
        sent_at_kills_done = count(("sent", "delivered"))
        _wait_until(
            finished,
            FINISH_TIMEOUT + 2 * LEASE_SECONDS,
            f"every delivery to be sent or unknown (kills took {kills_done - started:.0f}s, "
            f"{sent_at_kills_done} sent by then)",
            0.2,
        )
        worker.stop()
        print(
            f"crash test {seed=}: kills took {kills_done - started:.1f}s ({sent_at_kills_done} sent by then), "
            f"finish took {time.monotonic() - kills_done:.1f}s, "
            f"in flight at kills {[len(ids) for ids in in_flight_at_kills]}"
        )
    finally:
        session.close()

    session = db.factory()
    rows = session.execute(select(Delivery.id, Delivery.state, Delivery.lead_id, Delivery.step_id)).all()
    lead_email = dict(session.execute(select(Lead.id, Lead.email)).all())
    unfinished_enrollments = session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .where(Enrollment.next_step == 0, Enrollment.state == "active", Enrollment.next_send_at.is_not(None))
    )
    session.close()
    seen = _sent_requests(fake_url)
    context = f"(seed {seed}; rerun with CRASH_SEED={seed})"

    # No lead received a step twice, as the provider saw it.
    per_recipient_step = Counter((email, step) for email, step, _ in seen)
    twice = {key: n for key, n in per_recipient_step.items() if n > 1}
    assert not twice, f"steps sent more than once {context}: {dict(list(twice.items())[:10])}"

    # Every due delivery is sent or unknown, and nothing was left undone.
    states = Counter(state for _, state, _, _ in rows)
    assert len(rows) == leads, f"{len(rows)} deliveries for {leads} due enrollments {context}: {states}"
    assert set(states) <= {"sent", "delivered", "unknown"}, f"unexpected states {context}: {states}"
    assert unfinished_enrollments == 0, f"{unfinished_enrollments} enrollments still wait for step 1 {context}"

    # Unknown only where a send was really in flight when the worker died.
    unknown = {row_id for row_id, state, _, _ in rows if state == "unknown"}
    in_flight = set().union(*in_flight_at_kills)
    assert unknown <= in_flight, f"deliveries unknown without a kill during their send {context}: {unknown - in_flight}"
    assert all(len(ids) <= IN_FLIGHT_PER_WORKER for ids in in_flight_at_kills), (
        f"a kill left more sends in flight than one worker makes at once {context}: {in_flight_at_kills}"
    )
    assert len(unknown) <= KILLS * IN_FLIGHT_PER_WORKER
    # The fake saw sends overlap: the run really was pipelined.
    stats = _get_json(f"{fake_url}/_fake/stats")
    assert 1 < stats["max_in_flight"] <= IN_FLIGHT_PER_WORKER, f"most sends in flight at once: {stats} {context}"

    # Every "sent" delivery reached the provider exactly once.
    seen_per_email = Counter(email for email, _, _ in seen)
    for _row_id, state, lead_id, step in rows:
        if state in ("sent", "delivered"):
            email = lead_email[lead_id]
            times = seen_per_email[email]
            assert times == 1, f"{email} ({step}) is {state} but the fake saw it {times} times {context}"
    assert sum(seen_per_email.values()) >= leads - len(unknown)
