"""A real nurture email from the outbox scores under 1.0 with SpamAssassin's local rules."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import db
from leads.models import Lead
from mailer.base import get_sender
from mailer.models import Delivery
from nurture.composers import compose_step
from studio.registry import registry
from tests.support.factories import make_lead

SPAMASSASSIN = shutil.which("spamassassin")


@pytest.mark.slow
@pytest.mark.skipif(
    SPAMASSASSIN is None, reason="spamassassin is not installed (apt-get install spamassassin; CI does)"
)
@pytest.mark.parametrize("step_index", [0, -1])
def test_nurture_email_scores_under_one(app, tmp_path, clock, step_index):
    make_lead(app, "jordan.lee@gmail.com", first_name="Jordan", message=None)
    with app.app_context():
        campaign = registry().get("stem-cell-therapy")
        step = campaign.steps[step_index]
        lead = db.session.scalars(select(Lead)).one()
        delivery = Delivery(id=1, kind="nurture", lead_id=lead.id, campaign_slug=campaign.slug, step_id=step.id)
        get_sender().send(compose_step(campaign, step, lead, delivery))
    (eml,) = Path(app.config["OUTBOX_DIR"]).glob("*.eml")
    result = subprocess.run(
        [SPAMASSASSIN, "-L", "-t"],
        input=eml.read_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    report = result.stdout.decode("utf-8", "replace")
    match = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.M)
    assert match, result.stderr.decode("utf-8", "replace")[-2000:]
    score = float(match.group(1))
    assert score < 1.0, report[report.find("Content analysis details") :]
