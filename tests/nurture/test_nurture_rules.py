"""The engine's rules without Flask or a database: who exits, what a pass records, what a provider's answer means."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from mailer.base import AuthError, PermanentError, SettingError, TemporaryError, UncertainError
from nurture.rules import classify, exit_reason, holds_sequence, next_state, skip_reason
from studio.definitions import Campaign, LandingPage, SendWindow, Step

MONDAY_NINE_DENVER = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def _step(step_id: str, delay: timedelta, index: int) -> Step:
    return Step(step_id, index, delay, Path(f"{step_id}.md"), "Subject", "", "Body", any_time=True)


CAMPAIGN = Campaign(
    slug="c",
    name="C",
    active=True,
    double_opt_in=False,
    window=SendWindow(days=("mon", "tue", "wed", "thu", "fri"), start=time(9), end=time(17)),
    exit_statuses=("booked",),
    page=LandingPage(Path("page.md"), "t", "d", "h", "", ""),
    steps=(_step("welcome", timedelta(0), 0), _step("second", timedelta(days=2), 1)),
    directory=Path("c"),
)


def lead(**fields: object) -> SimpleNamespace:
    values = {"email": "a@example.org", "erased_at": None, "unsubscribed_at": None, "status": "new", "timezone": None}
    return SimpleNamespace(**(values | fields))


def row(next_step: int = 0) -> SimpleNamespace:
    return SimpleNamespace(id=7, next_step=next_step, last_step_at=None)


@pytest.mark.parametrize(
    ("person", "campaign", "suppressed", "reason"),
    [
        (None, CAMPAIGN, None, "erased"),
        (lead(email=None), CAMPAIGN, None, "erased"),
        (lead(), None, None, "campaign removed"),
        (lead(unsubscribed_at=MONDAY_NINE_DENVER), CAMPAIGN, "bounce", "unsubscribed"),
        (lead(status="booked"), CAMPAIGN, None, "status:booked"),
        (lead(status="contacted"), CAMPAIGN, None, None),
        (lead(), CAMPAIGN, "bounce", "suppressed:bounce"),
    ],
)
def test_exit_reason_names_the_first_reason_that_applies(person, campaign, suppressed, reason):
    assert exit_reason(person, campaign, suppressed) == reason


def test_a_due_enrollment_records_its_step_and_plans_the_next():
    advance = next_state(row(0), lead(), CAMPAIGN, None, MONDAY_NINE_DENVER, 1.0)
    assert advance.step.id == "welcome"
    assert (advance.exited, advance.completed) == (None, False)
    assert advance.values["b_next_step"] == 1
    assert advance.values["b_next_send_at"] == MONDAY_NINE_DENVER + timedelta(days=2)


def test_the_last_step_completes_the_enrollment_as_it_is_recorded():
    advance = next_state(row(1), lead(), CAMPAIGN, None, MONDAY_NINE_DENVER, 1.0)
    assert (advance.step.id, advance.completed, advance.values["b_state"]) == ("second", True, "completed")
    assert advance.values["b_next_send_at"] is None


def test_an_exit_records_no_step():
    advance = next_state(row(0), lead(status="booked"), CAMPAIGN, None, MONDAY_NINE_DENVER, 1.0)
    assert (advance.step, advance.exited, advance.values["b_state"]) == (None, "status:booked", "exited")


def test_staff_mail_about_an_unsubscribed_lead_still_leaves_but_its_nurture_mail_does_not():
    gone = lead(unsubscribed_at=MONDAY_NINE_DENVER)
    alert = SimpleNamespace(lead_id=1, kind="intake_alert")
    nurture = SimpleNamespace(lead_id=1, kind="nurture")
    assert skip_reason(alert, gone, None, None) is None
    assert skip_reason(nurture, gone, None, None) == "lead unsubscribed"
    assert skip_reason(nurture, None, None, None) == "lead erased"
    confirmed = SimpleNamespace(state="active", exit_reason=None)
    reminder = SimpleNamespace(lead_id=1, kind="reminder")
    assert skip_reason(reminder, lead(), confirmed, None) == "already confirmed"
    assert skip_reason(alert, lead(), None, "bounce") == "suppressed: bounce"


def test_only_a_campaign_step_holds_its_sequence():
    assert holds_sequence("nurture", 3)
    assert not holds_sequence("confirmation", 3)
    assert not holds_sequence("nurture", None)


def test_each_provider_answer_becomes_its_outcome():
    moment = MONDAY_NINE_DENVER
    auth = classify(AuthError("401"), 1, 5, moment, 1.0)
    assert (auth.state, auth.attempts_delta, auth.pause, auth.stop) == ("retrying", -1, "auth", True)
    setting = classify(SettingError("SITE_URL", "is not https"), 1, 5, moment, 1.0)
    assert (setting.pause, setting.counts) == ("setting", ())
    later = classify(TemporaryError("503", retry_after=60), 1, 5, moment, 1.0)
    assert (later.state, later.due, later.stop) == ("retrying", moment + timedelta(seconds=60), False)
    limited = classify(TemporaryError("429", rate_limited=True), 1, 5, moment, 1.0)
    assert (limited.counts, limited.stop) == (("retrying", "rate_limited"), True)
    given_up = classify(TemporaryError("timeout", answered=False), 5, 5, moment, 1.0)
    assert (given_up.state, given_up.source) == ("failed", "transport")
    assert given_up.error.startswith("gave up after 5 attempts")
    assert classify(UncertainError("read timeout"), 1, 5, moment, 1.0).state == "unknown"
    assert (classify(PermanentError("400"), 1, 5, moment, 1.0).source) == "provider"
    surprise = classify(KeyError("x"), 1, 5, moment, 1.0)
    assert (surprise.state, surprise.error) == ("unknown", "the sender failed unexpectedly: KeyError")
