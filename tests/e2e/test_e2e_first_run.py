"""The first run, as the README tells it: `make run` on a fresh clone with no variable set, a signup on the landing
page, and the welcome email in the outbox after one tick of the worker."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
from email import policy
from pathlib import Path

import pytest

from app import create_app
from config import Config
from core.db import db
from tests.support.forms import Visitor

ROOT = Path(__file__).resolve().parents[2]


def app_variables() -> set[str]:
    """Every environment variable the app reads (Config asks for each by name)."""
    asked: set[str] = set()

    class Recorder(dict):
        def get(self, key, default=None):
            asked.add(key)
            return default

    Config(Recorder())
    return asked


def make_run_environment() -> dict[str, str]:
    """What `make run` adds to a shell that sets none of the app's variables, read from the Makefile itself."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed: the Makefile's `run` environment cannot be read")
    clean = {k: v for k, v in os.environ.items() if k not in app_variables() | {"RUN_TIME_SCALE", "MAKEFLAGS"}}
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "run-env"], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def make_run_flask_steps() -> list[list[str]]:
    """The `flask ...` commands of the Makefile's `run` recipe, in order (honcho's start excluded)."""
    lines = (ROOT / "Makefile").read_text().split("\nrun: install\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.split("$(BIN)/flask ", 1)[1].split() for line in lines if "$(BIN)/flask " in line]


def test_make_run_on_a_fresh_clone_sends_the_welcome_to_the_outbox_after_one_tick(tmp_path, clock):
    added = make_run_environment()
    assert set(added) == {"NURTURE_TIME_SCALE", "CLINIC_POSTAL_ADDRESS"}
    assert added["CLINIC_POSTAL_ADDRESS"].startswith("DEMO ONLY, not a real address")
    # A fresh clone: nothing set but what `make run` sets; the instance folder is the test's own.
    config = Config({**added, "INSTANCE_PATH": str(tmp_path / "instance")})
    config.CLOCK = clock
    app = create_app(config)
    runner = app.test_cli_runner()
    try:
        # `make run`'s steps, in its order, read from the Makefile.
        steps = make_run_flask_steps()
        assert ["campaigns", "import", "--publish", "--if-new"] in steps
        for args in steps:
            result = runner.invoke(args=args)
            assert result.exit_code == 0, (args, result.output)
        assert "shown only this once" in result.output
        assert added["CLINIC_POSTAL_ADDRESS"] in result.output  # the banner shows the demo address

        visitor = Visitor(app.test_client())
        visitor.open()
        clock.advance(seconds=10)  # a person takes a few seconds to fill the form
        response = visitor.submit()
        assert response.headers["Location"].endswith("/stem-cell-therapy/thank-you#top"), response.status_code

        tick = runner.invoke(args=["nurture", "tick"])
        assert tick.exit_code == 0, tick.output
        assert "sent=1" in tick.output
        [eml] = sorted((tmp_path / "instance" / "outbox").glob("*.eml"))
        message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert message["To"] == "dana.whitfield@example.com"
        assert message["Subject"] == "We got your consultation request"
        assert added["CLINIC_POSTAL_ADDRESS"] in message.get_body(("plain",)).get_content()
    finally:
        with app.app_context():
            db.engine.dispose()
