"""A rush of signups on gunicorn (4 workers) while the nurture worker runs: every lead kept once, mailed once."""

from __future__ import annotations

import random
import shutil
import time
from collections import Counter
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from bench import load
from core.db import make_engine
from tests.support.content import CAMPAIGNS, POSTS
from tests.support.database import empty_tables, publish_into

pytestmark = pytest.mark.slow

CLIENTS = 50
SIGNUPS = 2000
REPEAT_SHARE = 0.2
DRAIN_DEADLINE_S = 60


def _empty_database(url: str) -> None:
    """Other tests share this session's database: start from no rows at all."""
    engine = make_engine(url)
    empty_tables(engine)
    engine.dispose()


def _campaigns_any_time(tmp_path: Path) -> Path:
    """The fixture campaigns, with the welcome step allowed outside the send window.

    The welcome is what this test counts; without this a run on a weekend night would wait for Monday.
    """
    target = tmp_path / "campaigns"
    shutil.copytree(CAMPAIGNS, target)
    spec_path = target / load.SLUG / "campaign.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["steps"][0]["any_time"] = True
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def _outbox_recipients(outbox: Path) -> Counter:
    """How many messages the outbox holds per recipient address."""
    parser = BytesHeaderParser()
    seen: Counter = Counter()
    for path in outbox.glob("**/*.eml"):
        if path.name.startswith("."):
            continue  # a message still being written (the outbox renames it into place when complete)
        try:
            with path.open("rb") as fh:
                headers = parser.parse(fh)
        except FileNotFoundError:
            continue
        seen[parseaddr(headers.get("To", ""))[1].lower()] += 1
    return seen


def _emails(run: str) -> tuple[list[str], set[str]]:
    """2,000 signups: 1,600 distinct addresses and 400 repeats of some of them, shuffled."""
    rng = random.Random(7)
    unique = [f"rush{i}-{run}@example.com" for i in range(int(SIGNUPS * (1 - REPEAT_SHARE)))]
    repeats = rng.choices(unique, k=SIGNUPS - len(unique))
    # A repeat in a different case must still land on the same lead.
    jobs = unique + [email.upper() if i % 2 else email for i, email in enumerate(repeats)]
    rng.shuffle(jobs)
    return jobs, set(unique)


def test_concurrent_signups_keep_every_lead_once_and_welcome_it_once(database_url: str, tmp_path: Path) -> None:
    """50 clients post 2,000 signups (20% repeated emails) while `flask nurture run` sends the welcomes."""
    _empty_database(database_url)
    instance = tmp_path / "instance"
    outbox = instance / "outbox"
    campaigns = _campaigns_any_time(tmp_path)
    publish_into(database_url, campaigns, tmp_path / "publisher")
    env = load.base_env(
        database_url,
        instance,
        CAMPAIGNS_DIR=str(campaigns),
        BLOG_DIR=str(POSTS),
        MAIL_BACKEND="outbox",
        NURTURE_TICK_SECONDS="0.5",
    )
    jobs, expected = _emails(tmp_path.name[-8:].replace("_", ""))
    web = worker = None
    try:
        web, port = load.start_gunicorn("app:create_app()", env, workers=4, log=tmp_path / "gunicorn.log")
        worker = load.spawn([load.tool("flask"), "nurture", "run"], env, tmp_path / "worker.log")

        result = load.run_concurrent(
            port,
            jobs,
            lambda client, email: load.signup(client, str(email)),
            clients=CLIENTS,
            ok=lambda label, status: status == (303 if label == "post" else 200),
        )
        print(f"{SIGNUPS} signups in {result.elapsed:.1f}s, post p50 {result.percentile('post', 50):.0f} ms")
        server_errors = {key: n for key, n in result.statuses.items() if key[1] >= 500}
        assert not server_errors, f"5xx answers: {server_errors}"
        assert not result.failures, f"{len(result.failures)} failed signups, first: {result.failures[:3]}"
        assert result.statuses[("post", 303)] == SIGNUPS

        engine = make_engine(database_url)
        try:
            with engine.connect() as conn:
                stored = [row[0] for row in conn.execute(text("SELECT email FROM leads"))]
                per_lead = conn.execute(
                    text(
                        "SELECT l.email, COUNT(e.id) FROM leads l LEFT JOIN enrollments e ON e.lead_id = l.id"
                        " GROUP BY l.email"
                    )
                ).all()
                submissions = conn.execute(text("SELECT COUNT(*) FROM submissions")).scalar_one()
        finally:
            engine.dispose()
        assert len(stored) == len(expected), "exactly one lead per email"
        assert set(stored) == expected
        assert submissions == SIGNUPS, "every post is kept as a submission"
        assert {n for _, n in per_lead} == {1}, "one enrollment per lead"

        deadline = time.monotonic() + DRAIN_DEADLINE_S
        seen = _outbox_recipients(outbox)
        while set(seen) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            seen = _outbox_recipients(outbox)
        print(f"welcomes drained {DRAIN_DEADLINE_S - (deadline - time.monotonic()):.1f}s after the last signup")
        missing = expected - set(seen)
        assert not missing, f"{len(missing)} leads got no welcome within {DRAIN_DEADLINE_S}s"
        time.sleep(2)  # a few more ticks: a duplicate send would show up now
        seen = _outbox_recipients(outbox)
        assert set(seen) == expected, "only the leads were mailed"
        doubles = {email: n for email, n in seen.items() if n != 1}
        assert not doubles, f"welcome sent more than once: {list(doubles.items())[:5]}"
        assert worker.poll() is None, "the nurture worker kept running"
    finally:
        load.stop(worker)
        load.stop(web)
