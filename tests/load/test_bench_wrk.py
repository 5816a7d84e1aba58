"""`make bench`'s wrk harness measures what it says: real pages, real signups (one lead per answered POST), and
each figure printed next to its baseline."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from bench import load, run
from core.db import make_engine
from tests.support.database import empty_tables, publish_into

pytestmark = pytest.mark.slow


@pytest.fixture
def bench_server(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The bench app (real app + bare routes) under gunicorn with 2 workers on an emptied database."""
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (Debian package `wrk`): the web benchmark harness cannot run")
    engine = make_engine(database_url)
    empty_tables(engine)
    load.create_bench_table(engine)
    publish_into(database_url, load.ROOT / "campaigns", tmp_path / "publisher")  # the shipped stem cell page
    monkeypatch.setattr(run, "WRK_SECONDS", 1.0)
    monkeypatch.setattr(run, "WEB_ROUNDS", 1)
    env = load.base_env(database_url, tmp_path / "instance", MAIL_BACKEND="outbox")
    proc, port = load.start_gunicorn("bench.wsgi:app", env, workers=2, log=tmp_path / "gunicorn.log")
    try:
        yield port, engine
    finally:
        load.stop(proc)
        engine.dispose()


def test_wrk_signups_store_one_lead_per_answered_post_and_print_their_baseline(bench_server, tmp_path):
    port, engine = bench_server
    report = run.Report()
    run.bench_signups(report, port, engine, uuid.uuid4().hex[:8], tmp_path)
    lines = {line.split(" ", 1)[0]: line for line in report.lines}
    assert lines["signup_errors"].startswith("signup_errors 0 ")
    assert lines["signup_stored"].endswith(" OK"), lines["signup_stored"]
    assert "signup_stored" not in report.misses
    assert " vs baseline " in lines["signup_round1"]
    assert lines["signup_ratio"].startswith("signup_ratio ")


def test_wrk_landing_rounds_print_each_rate_with_its_baseline(bench_server, tmp_path):
    port, _ = bench_server
    report = run.Report()
    run.bench_landing(report, port, tmp_path)
    lines = {line.split(" ", 1)[0]: line for line in report.lines}
    assert lines["landing_errors"] == "landing_errors 0"
    assert " vs baseline " in lines["landing_round1"]
    assert "(target >= 0.7)" in lines["landing_ratio"]
