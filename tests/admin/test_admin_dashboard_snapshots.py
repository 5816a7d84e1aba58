"""The dashboard's figures come from a snapshot in the database that every process shares and the nurture worker
keeps fresh: a view reads one row and says when it was computed."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select

from admin.models import DashboardSnapshot
from app import create_app
from core.db import db
from tests.support.staff import Staff, login


def _kpis(html: str) -> dict[str, int]:
    pattern = r'<span class="kpi-value">([\d,]+)</span> <span class="kpi-label">([^<]+)</span>'
    return {label: int(value.replace(",", "")) for value, label in re.findall(pattern, html)}


def _signups(staff: Staff, days: int = 7) -> int:
    html = staff.get(f"/admin/?days={days}").get_data(as_text=True)
    assert "Figures as of" in html
    return _kpis(html)["Signups"]


def _snapshots(app) -> dict[int, DashboardSnapshot]:
    with app.app_context():
        rows = {row.days: row for row in db.session.scalars(select(DashboardSnapshot))}
        db.session.remove()
    return rows


def _run_worker_job(app) -> int:
    """What `flask nurture run` calls every few seconds (nurture.scheduler runs the registered jobs)."""
    _every, job = app.extensions["worker_jobs"]["dashboard-snapshots"]
    with app.app_context():
        return job()


@pytest.fixture
def snapshots_on(app):
    app.config["DASHBOARD_CACHE_SECONDS"] = 60
    return app


def test_the_first_view_computes_the_figures_and_stores_them(snapshots_on, staff, make_lead, clock):
    assert _snapshots(snapshots_on) == {}
    make_lead("a@example.com")
    assert _signups(staff) == 1
    stored = _snapshots(snapshots_on)[7]
    assert stored.computed_at == stored.requested_at == clock.now()
    assert stored.figures["funnel"][1] == ["Signups", 1]
    # A view notes its time at most once a minute, so a busy dashboard does not write on every view.
    clock.advance(seconds=20)
    staff.get("/admin/?days=7")
    assert _snapshots(snapshots_on)[7].requested_at == stored.requested_at
    clock.advance(seconds=50)
    staff.get("/admin/?days=7")
    assert _snapshots(snapshots_on)[7].requested_at == clock.now()


def test_the_page_shows_the_workers_snapshot_and_a_new_lead_after_the_next_refresh(
    snapshots_on, staff, make_lead, clock
):
    make_lead("a@example.com")
    assert _signups(staff) == 1
    make_lead("b@example.com")
    clock.advance(seconds=30)
    assert _signups(staff) == 1  # fresh: read from the snapshot
    # Nothing viewed is older than DASHBOARD_CACHE_SECONDS yet; only the page the dashboard opens on (30 days),
    # which nobody has opened, is computed.
    assert _run_worker_job(snapshots_on) == 1
    assert sorted(_snapshots(snapshots_on)) == [7, 30]
    clock.advance(seconds=40)
    stale = staff.get("/admin/?days=7").get_data(as_text=True)
    assert _kpis(stale)["Signups"] == 1  # older than a minute: shown with its time, the view does not wait
    assert _run_worker_job(snapshots_on) == 1
    refreshed = _snapshots(snapshots_on)[7]
    assert refreshed.computed_at == clock.now()
    assert _signups(staff) == 2


def test_a_snapshot_nobody_refreshed_for_ten_intervals_is_recomputed_by_the_view(snapshots_on, staff, make_lead, clock):
    make_lead("a@example.com")
    assert _signups(staff) == 1
    make_lead("b@example.com")
    clock.advance(minutes=9)
    assert _signups(staff) == 1  # no worker ran; still within ten intervals
    clock.advance(minutes=1)
    assert _signups(staff) == 2
    assert _snapshots(snapshots_on)[7].computed_at == clock.now()


def test_the_job_refreshes_only_snapshots_viewed_in_the_last_hour(snapshots_on, staff, make_lead, clock):
    make_lead("a@example.com")
    _signups(staff, days=7)
    _signups(staff, days=30)
    clock.advance(minutes=59)
    _signups(staff, days=30)  # viewed again (and recomputed: no worker kept it fresh)
    clock.advance(minutes=2)
    assert _run_worker_job(snapshots_on) == 1
    stored = _snapshots(snapshots_on)
    assert stored[30].computed_at == clock.now()
    assert stored[7].computed_at == clock.now() - timedelta(minutes=61)  # last viewed 61 minutes ago
    assert _run_worker_job(snapshots_on) == 0


def test_two_processes_share_one_snapshot(snapshots_on, staff, make_config, make_lead, make_user, clock):
    other = create_app(make_config(DASHBOARD_CACHE_SECONDS=60))  # a second web process on the same database
    other_staff = Staff(other.test_client(), make_user("mia@nexgenesis.example"))
    assert login(other_staff.client, other_staff.email).status_code == 302
    make_lead("a@example.com")
    assert _signups(staff) == 1
    computed = _snapshots(snapshots_on)[7].computed_at
    make_lead("b@example.com")
    clock.advance(seconds=30)
    assert _signups(other_staff) == 1  # the first process's figures, not computed again
    assert _snapshots(other)[7].computed_at == computed
    clock.advance(seconds=40)
    assert _run_worker_job(other) == 2  # the 7 days viewed, and the 30 days the dashboard opens on
    assert _signups(staff) == 2


def test_without_a_refresh_interval_every_view_computes_and_nothing_is_stored(app, staff, make_lead):
    app.config["DASHBOARD_CACHE_SECONDS"] = 0
    make_lead("a@example.com")
    html = staff.get("/admin/?days=7").get_data(as_text=True)
    assert _kpis(html)["Signups"] == 1
    assert "Figures as of" not in html
    make_lead("b@example.com")
    assert _kpis(staff.get("/admin/?days=7").get_data(as_text=True))["Signups"] == 2
    assert _snapshots(app) == {}
    assert _run_worker_job(app) == 0


def test_the_refresh_command_computes_each_period_without_marking_it_viewed(snapshots_on, runner, make_lead, clock):
    make_lead("a@example.com")
    result = runner.invoke(args=["dashboard", "refresh"])
    assert result.exit_code == 0, result.output
    assert re.findall(r"^(\d+) days, all campaigns, America/Denver: [\d,]+ ms$", result.output, re.M) == [
        "7",
        "30",
        "90",
    ]
    stored = _snapshots(snapshots_on)
    assert sorted(stored) == [7, 30, 90]
    assert {row.requested_at for row in stored.values()} == {None}
    clock.advance(minutes=5)
    assert _run_worker_job(snapshots_on) == 1  # nobody looked: only the page the dashboard opens on is kept fresh
    assert _snapshots(snapshots_on)[7].computed_at == clock.now() - timedelta(minutes=5)
    refused = runner.invoke(args=["dashboard", "refresh", "--campaign", "no-such-campaign"])
    assert refused.exit_code != 0
    assert "no campaign 'no-such-campaign'" in refused.output


def test_the_worker_schedules_the_registered_jobs_beside_the_ticks(app, monkeypatch):
    import nurture.scheduler

    added: dict[str, dict] = {}

    class Recording:
        def __init__(self, **_kwargs):
            pass

        def add_job(self, func, trigger=None, **kwargs):
            added[kwargs["id"]] = {"func": func, "trigger": trigger, **kwargs}

        def start(self):
            pass

    monkeypatch.setattr(nurture.scheduler, "BlockingScheduler", Recording)
    monkeypatch.setattr(nurture.scheduler.signal, "signal", lambda *_args: None)
    app.config["NURTURE_WAKE"] = False
    nurture.scheduler.run_worker(app)
    job = added["dashboard-snapshots"]
    assert job["executor"] == "jobs"  # its own thread: a slow refresh never holds up sending
    assert job["seconds"] == 10.0
    assert added["nurture-tick"].get("executor", "default") == "default"
    job["func"]()  # runs in an app context of its own


def test_the_migration_upgrades_and_downgrades(backend, tmp_path):
    from alembic import command

    from core.db import alembic_config, make_engine, migrating, upgrade
    from tests.support.postgres import create_database, drop_database

    server = os.environ.get("TEST_DATABASE_URL", "")
    url, name = create_database(server) if backend == "postgresql" else (f"sqlite:///{tmp_path / 'm.db'}", "")
    engine = make_engine(url)
    try:
        upgrade(engine)
        assert "dashboard_snapshots" in inspect(engine).get_table_names()
        cfg = alembic_config()
        with migrating(engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0010_lean_indexes")
        assert "dashboard_snapshots" not in inspect(engine).get_table_names()
        upgrade(engine)
        assert "dashboard_snapshots" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
        if name:
            drop_database(server, name)


def test_the_page_the_dashboard_opens_on_is_kept_fresh_before_anyone_looks(snapshots_on, staff, make_lead, clock):
    make_lead("a@example.com")
    assert _run_worker_job(snapshots_on) == 1  # nobody has looked yet: the opening page is computed anyway
    computed = _snapshots(snapshots_on)[30].computed_at
    clock.advance(seconds=30)
    html = staff.get("/admin/").get_data(as_text=True)
    assert _kpis(html)["Signups"] == 1
    assert _snapshots(snapshots_on)[30].computed_at == computed  # the view read the worker's figures
    assert _run_worker_job(snapshots_on) == 0  # fresh enough
    clock.advance(seconds=61)
    assert _run_worker_job(snapshots_on) == 1
