"""The signup rate limit holds across gunicorn workers when they share Redis."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from app import load_models
from bench import load
from core.db import Base, make_engine
from tests.support.content import CAMPAIGNS, POSTS
from tests.support.database import publish_into

pytestmark = pytest.mark.slow

# CI names the server (TEST_REDIS_URL), so a Redis that does not answer fails the run there instead of skipping.
REDIS_URL = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379"


@pytest.fixture
def redis_prefix():
    """A key prefix of our own, so parallel runs never share counters; its keys are removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("TEST_REDIS_URL"):
            pytest.fail(f"TEST_REDIS_URL names {REDIS_URL}, which does not answer: {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set TEST_REDIS_URL to require it): {exc}")
    prefix = f"loadtest-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"*{prefix}*"):
        client.delete(key)
    client.close()


def test_sixth_signup_from_one_ip_is_refused_by_whichever_worker_answers(tmp_path: Path, redis_prefix: str) -> None:
    """5/minute with 2 workers: five posts pass, then every further post gets 429 from both workers."""
    url = f"sqlite:///{tmp_path / 'limit.db'}"
    load_models()
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    publish_into(url, CAMPAIGNS, tmp_path / "publisher")
    env = load.base_env(
        url,
        tmp_path / "instance",
        RATELIMIT_ENABLED="1",
        RATELIMIT_STORAGE_URI=REDIS_URL,
        RATELIMIT_KEY_PREFIX=redis_prefix,
        SIGNUP_RATE_LIMIT="5/minute",
        CAMPAIGNS_DIR=str(CAMPAIGNS),
        BLOG_DIR=str(POSTS),
    )
    web = None
    try:
        web, port = load.start_gunicorn("tests.load.worker_pid_app:app", env, workers=2, log=tmp_path / "web.log")
        workers = set(load.worker_pids(web.pid))
        assert len(workers) == 2

        for i in range(5):
            status = load.signup(load.Client(port), f"limit{i}@example.com")[-1][2]
            assert status == 303, f"signup {i + 1} of 5 answered {status}"

        # Past the limit, post from many connections at once so both workers take some of them.
        answers: list[tuple[int, str]] = []
        lock = threading.Lock()
        client = load.Client(port)
        _, _, page = client.request("GET", f"/{load.SLUG}")
        form = load.parse_form(page, f"/{load.SLUG}")

        def post(n: int) -> None:
            c = load.Client(port)
            c.cookies = dict(client.cookies)
            status, headers, _ = c.request("POST", form.action, form.body(f"over{n}@example.com"), load.FORM_HEADERS)
            with lock:
                answers.append((status, headers.get("X-Worker-Pid", "")))
            c.close()

        # Which worker accepts a connection is the kernel's choice: on a busy machine one worker can take a few
        # hundred quick 429s in a row, so keep going (with a pause for the scheduler) until both have answered.
        for round_ in range(40):
            threads = [threading.Thread(target=post, args=(round_ * 10 + i,)) for i in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if {int(pid) for _, pid in answers} == workers:
                break
            time.sleep(0.05)
        assert {status for status, _ in answers} == {429}, f"answers past the limit: {answers}"
        assert {int(pid) for _, pid in answers} == workers, "both workers refused posts"

        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM leads")).scalar_one() == 5
    finally:
        load.stop(web)
        engine.dispose()
