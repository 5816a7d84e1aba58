"""A signup wakes the running worker: its welcome leaves at once, not at the next tick; no worker, no harm."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core.db import db, make_engine
from leads.models import Lead
from mailer import wake
from mailer.models import Delivery
from tests.fakes.senders import RecordingSender, run_tick, use_sender
from tests.support.forms import Visitor

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
# Far longer than any wait below: a welcome that arrives came from a wake-up, never from the tick.
LONG_TICK_SECONDS = 600
WAIT_SECONDS = 30


def worker_env(app, database_url: str, tmp_path: Path) -> dict[str, str]:
    """`flask nurture run` on the test's database, sending through the fake SendGrid, ticking once at start only."""
    return {
        **os.environ,
        "FLASK_APP": "app:create_app",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "worker-instance"),
        "SECRET_KEY": app.config["SECRET_KEY"],
        "MAIL_BACKEND": "sendgrid",
        "SENDGRID_API_HOST": app.config["SENDGRID_API_HOST"],
        "SENDGRID_API_KEY": app.config["SENDGRID_API_KEY"],
        "SITE_URL": app.config["SITE_URL"],
        "CAMPAIGNS_DIR": str(app.config["CAMPAIGNS_DIR"]),
        "CLINIC_POSTAL_ADDRESS": app.config["CLINIC_POSTAL_ADDRESS"],
        "NURTURE_TICK_SECONDS": str(LONG_TICK_SECONDS),
        "LOG_LEVEL": "INFO",
    }


def wait_for_log(log: Path, text: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, f"no {text!r} in the worker's log:\n{log.read_text()[-2000:]}"
        time.sleep(0.1)


def sign_up(app, email: str) -> None:
    response = Visitor(app.test_client()).submit(email=email)
    assert response.status_code == 303, response.status_code


@pytest.mark.slow
def test_a_signup_wakes_the_running_worker_and_its_welcome_leaves_before_the_next_tick(
    sendgrid_app, fake_sendgrid, database_url, tmp_path
):
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [FLASK, "nurture", "run"],
            cwd=ROOT,
            env=worker_env(sendgrid_app, database_url, tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The worker listens, and its first tick (at start) is over: the next one is LONG_TICK_SECONDS away.
        wait_for_log(log, "woken by each signup", proc)
        sign_up(sendgrid_app, "first@example.org")
        wait_for_log(log, "tick claimed=1", proc)
        assert len(fake_sendgrid.snapshot()) == 1
        sign_up(sendgrid_app, "second@example.org")
        deadline = time.monotonic() + WAIT_SECONDS
        while len(fake_sendgrid.snapshot()) < 2:
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the welcome waited for the tick: the worker was not woken"
            time.sleep(0.05)
        recipients = [r["body"]["personalizations"][0]["to"][0]["email"] for r in fake_sendgrid.snapshot()]
        assert recipients == ["first@example.org", "second@example.org"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()[-2000:]
    address = wake.socket_address(make_url(database_url))
    if address and not address.startswith("\0"):
        assert not Path(address).exists()  # a stopped worker leaves no socket behind


def test_a_signup_with_no_worker_listening_succeeds_and_the_tick_still_sends_its_welcome(app, database_url, tmp_path):
    address = wake.socket_address(make_url(database_url))
    if address and not address.startswith("\0"):
        # What a killed worker leaves behind: a socket file nobody receives on.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        stale.bind(address)
        stale.close()
    try:
        sign_up(app, "alone@example.org")
        with app.app_context():
            assert db.session.scalars(select(Lead.email)).all() == ["alone@example.org"]
        sender = use_sender(app, RecordingSender())
        run_tick(app)
        assert [m.to for m in sender.messages] == ["alone@example.org"]
    finally:
        if address and not address.startswith("\0"):
            Path(address).unlink(missing_ok=True)


def test_the_worker_is_woken_only_once_the_signup_is_committed(app, database_url):
    """At the wake-up, another connection (the worker's) already sees the new lead and its due welcome."""
    other = make_engine(database_url)
    seen: list[int] = []

    def woken() -> None:
        with other.connect() as conn:
            seen.append(len(conn.execute(select(Delivery.id).union_all(select(Lead.id))).all()))

    with app.app_context():
        listener = wake.Listener(db.engine, woken, poll_seconds=0.2)
    assert listener.start()
    try:
        assert listener.ready.wait(10)
        sign_up(app, "quiet@example.org")
        deadline = time.monotonic() + WAIT_SECONDS
        while not seen:
            assert time.monotonic() < deadline, "no wake-up arrived"
            time.sleep(0.02)
    finally:
        listener.close()
        other.dispose()
    assert seen == [1]  # the lead row (deliveries are the worker's to record)


def test_the_wake_up_carries_no_lead_data(app, backend, database_url):
    """Whoever listens learns only that something is due: no id, no address, no area of interest."""
    if backend == "postgresql":
        import psycopg

        url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"LISTEN {wake.CHANNEL}")
            sign_up(app, "private@example.org")
            notes = list(conn.notifies(timeout=WAIT_SECONDS, stop_after=1))
        assert [(n.channel, n.payload) for n in notes] == [(wake.CHANNEL, "")]
    else:
        address = wake.socket_address(make_url(database_url))
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        receiver.bind(address)
        receiver.settimeout(WAIT_SECONDS)
        try:
            sign_up(app, "private@example.org")
            assert receiver.recv(4096) == b"!"
        finally:
            receiver.close()
            if not address.startswith("\0"):
                Path(address).unlink(missing_ok=True)


def failed_signup() -> None:
    """A transaction that records due work, then fails and rolls back."""
    with db.write_transaction() as session:
        wake.soon(session)
        raise RuntimeError("the signup failed")


def test_a_rolled_back_or_unmarked_transaction_wakes_no_one(app):
    received: list[str] = []
    with app.app_context():
        listener = wake.Listener(db.engine, lambda: received.append("woken"), poll_seconds=0.2)
    assert listener.start()
    try:
        assert listener.ready.wait(10)
        with app.app_context():
            with pytest.raises(RuntimeError):
                failed_signup()
            with db.write_transaction():
                pass  # a commit with nothing due
        time.sleep(1)  # a wake-up sent by mistake arrives within milliseconds
        assert received == []
        with app.app_context(), db.write_transaction() as session:
            wake.soon(session)
        deadline = time.monotonic() + WAIT_SECONDS
        while not received:
            assert time.monotonic() < deadline, "no wake-up arrived"
            time.sleep(0.02)
    finally:
        listener.close()
    assert received == ["woken"]


def test_a_signup_without_email_consent_still_wakes_the_worker_for_the_front_desk_alert(app):
    """No welcome is due, but the intake alert to the front desk is: it leaves at once too."""
    app.config["INTAKE_EMAILS"] = ["frontdesk@clinic.example"]
    received: list[str] = []
    with app.app_context():
        listener = wake.Listener(db.engine, lambda: received.append("woken"), poll_seconds=0.2)
    assert listener.start()
    try:
        assert listener.ready.wait(10)
        response = Visitor(app.test_client()).submit(without=("email_consent",), email="noconsent@example.org")
        assert response.status_code == 303
        deadline = time.monotonic() + WAIT_SECONDS
        while not received:
            assert time.monotonic() < deadline, "no wake-up arrived"
            time.sleep(0.02)
    finally:
        listener.close()
    with app.app_context():
        kinds = db.session.scalars(select(Delivery.kind)).all()
    assert kinds == ["intake_alert"]
