"""Several `flask nurture run` processes on one PostgreSQL send each step exactly once, and stop on SIGTERM."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core.db import db
from mailer.models import Delivery
from nurture.models import Enrollment
from tests.support import factories

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


def make_everything_due(app) -> None:
    """The workers run on the wall clock, not the test's frozen one: pull due times into the real past."""
    with app.app_context(), db.write_transaction() as session:
        session.execute(
            update(Enrollment)
            .where(Enrollment.next_send_at.is_not(None))
            .values(next_send_at=datetime.now(UTC) - timedelta(minutes=1))
        )


def sent_count(app) -> int:
    with app.app_context():
        rows = db.session.scalars(select(Delivery.id).where(Delivery.state == "sent")).all()
        db.session.commit()
    return len(rows)


def wait_for(app, expected: int, procs: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sent_count(app) < expected:
        for proc in procs:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, f"only {sent_count(app)} of {expected} sent"
        time.sleep(0.3)


@pytest.mark.slow
def test_worker_processes_on_postgresql_send_each_step_once(app, backend, database_url, tmp_path):
    if backend != "postgresql":
        pytest.skip("PostgreSQL only (SKIP LOCKED between processes): runs as [postgresql] with TEST_DATABASE_URL")
    leads = 30
    for n in range(leads):
        factories.make_lead(app, f"lead{n}@example.org")
    outbox = tmp_path / "outbox"
    env = {
        **os.environ,
        "FLASK_APP": "app:create_app",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "MAIL_BACKEND": "outbox",
        "OUTBOX_DIR": str(outbox),
        "CLINIC_POSTAL_ADDRESS": app.config["CLINIC_POSTAL_ADDRESS"],
        "NURTURE_BATCH_SIZE": "4",
        "NURTURE_TICK_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
    }
    # Two `flask nurture run` workers ticking every 0.2 s against the same database.
    procs = [
        subprocess.Popen([FLASK, "nurture", "run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        make_everything_due(app)
        wait_for(app, leads, procs)
        make_everything_due(app)  # step 2 comes due while both workers are ticking
        wait_for(app, leads * 2, procs)
        time.sleep(1)  # a few more ticks: nothing more may leave
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        logs = [proc.communicate(timeout=60)[1].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], logs
    assert all("stopped" in log for log in logs)

    messages = [email.message_from_bytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]
    assert len(messages) == leads * 2
    per_recipient = Counter(m["To"] for m in messages)
    assert set(per_recipient.values()) == {2}
    assert len(per_recipient) == leads
    with app.app_context():
        rows = db.session.execute(select(Delivery.enrollment_id, Delivery.step_id, Delivery.state)).all()
    assert Counter(state for _, _, state in rows) == {"sent": leads * 2}
    assert Counter(step for _, step, _ in rows) == {"welcome": leads, "the-science": leads}
