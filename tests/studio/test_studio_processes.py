"""Several processes: a campaign published by one is served by every running web process and used by the
running worker within 5 seconds, without a restart (SQLite and PostgreSQL)."""

from __future__ import annotations

import email
import shutil
import subprocess
import time
from email import policy
from pathlib import Path

import pytest
import yaml

from bench import load
from core.db import make_engine
from tests.support.content import CAMPAIGNS
from tests.support.database import empty_tables, publish_into

pytestmark = pytest.mark.slow

NEW = "hair-restoration-prp"
LIVE_WITHIN_S = 5.0


def _hair_campaign(root: Path) -> Path:
    """A new campaign folder (a copy of the PRP one with its own slug, page and welcome)."""
    folder = root / NEW
    shutil.copytree(CAMPAIGNS / "prp-knee-osteoarthritis", folder)
    spec = yaml.safe_load((folder / "campaign.yaml").read_text())
    spec["slug"], spec["name"] = NEW, "PRP for thinning hair"
    spec["steps"][0]["any_time"] = True  # the welcome answers at once, whatever the day this test runs
    (folder / "campaign.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    page = (folder / "page.md").read_text()
    (folder / "page.md").write_text(page.replace("headline: ", "headline: Thicker hair with PRP. ", 1))
    welcome = folder / "emails" / "01-welcome.md"
    text = welcome.read_text()
    (welcome).write_text(text.replace("subject: ", "subject: Hair PRP - ", 1))
    return root


def _status(port: int, path: str) -> int:
    client = load.Client(port)
    try:
        return client.request("GET", path)[0]
    finally:
        client.close()


def test_a_publish_in_one_process_is_served_by_the_others_within_5_seconds(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    empty_tables(engine)
    engine.dispose()
    publish_into(database_url, CAMPAIGNS, tmp_path / "publisher")
    instance = tmp_path / "instance"
    env = load.base_env(database_url, instance, MAIL_BACKEND="outbox", NURTURE_TICK_SECONDS="0.5")
    webs, worker = [], None
    try:
        for n in range(2):
            webs.append(load.start_gunicorn("app:create_app()", env, workers=1, log=tmp_path / f"web{n}.log"))
        worker = load.spawn([load.tool("flask"), "nurture", "run"], env, tmp_path / "worker.log")
        for _, port in webs:
            assert _status(port, f"/{NEW}") == 404  # warms each process's copy before the publish

        # A third process publishes the new campaign (as the admin of another server would).
        folders = _hair_campaign(tmp_path / "new")
        published = subprocess.run(
            [load.tool("flask"), "campaigns", "import", str(folders), "--publish"],
            env=env,
            cwd=load.ROOT,
            capture_output=True,
            text=True,
        )
        assert published.returncode == 0, published.stdout + published.stderr
        started = time.monotonic()
        waiting = {port for _, port in webs}
        while waiting and time.monotonic() - started < LIVE_WITHIN_S + 5:
            waiting = {port for port in waiting if _status(port, f"/{NEW}") != 200}
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        assert not waiting, f"not live after {elapsed:.1f}s"
        assert elapsed <= LIVE_WITHIN_S, f"live after {elapsed:.1f}s"

        # A signup there gets the new welcome from the worker that was already running.
        client = load.Client(webs[1][1])
        try:
            samples = load.signup(client, "hair.reader@example.com", slug=NEW)
        finally:
            client.close()
        assert [status for _, _, status in samples] == [200, 303]
        deadline = time.monotonic() + 20
        subjects: list[str] = []
        while time.monotonic() < deadline and not subjects:
            subjects = [
                email.message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"]
                for path in (instance / "outbox").glob("**/*.eml")
                if not path.name.startswith(".")
            ]
            time.sleep(0.2)
        assert len(subjects) == 1, subjects
        assert subjects[0].startswith("Hair PRP - "), subjects
    finally:
        for proc, _ in webs:
            load.stop(proc)
        load.stop(worker)
