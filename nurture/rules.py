"""The nurture engine's rules: pure functions of rows, campaigns and moments. No Flask, no database.

Who gets nothing more (exit_reason), what a pass does to a due enrollment (next_state), why a queued email must
not leave (skip_reason), and what a provider's answer makes of a delivery in flight (classify, backoff). The
worker's loop (nurture.dispatch) applies them to what the store (nurture.store) reads and writes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mailer.base import AuthError, PermanentError, SendError, SettingError, TemporaryError, UncertainError
from nurture.schedule import due_at
from studio.definitions import Campaign, Step

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=2)
UNKNOWN_REASON = "the worker stopped before the provider answered; check the provider's events before resending"
SKIPPED_CONDITION = "condition: area of interest not listed"
# deliveries.error_source: who produced the error, so the admin says "the provider refused" only when it did.
SOURCE_CONTENT = "content"  # the email could not be built; no provider was called
SOURCE_PROVIDER = "provider"  # the provider answered with an error
SOURCE_TRANSPORT = "transport"  # the provider could not be reached (or did not answer)
# Staff mail about a lead (alerts, digests, test sends) is not mail to the lead: their unsubscribe does not stop it.
STAFF_KINDS = frozenset({"test", "intake_alert", "digest"})


def dedupe_key(enrollment_id: int, step_id: str) -> str:
    """The key that makes a campaign step one delivery per enrollment."""
    return f"enr:{enrollment_id}:{step_id}"


def exit_reason(lead: Any, campaign: Campaign | None, suppressed: str | None) -> str | None:
    """Why this lead must get nothing more from this campaign, if anything (`suppressed`: the list's reason)."""
    if lead is None or lead.erased_at is not None or not lead.email:
        return "erased"
    if campaign is None:
        return "campaign removed"
    if lead.unsubscribed_at is not None:
        return "unsubscribed"
    if lead.status in campaign.exit_statuses:
        return f"status:{lead.status}"
    if suppressed is not None:
        return f"suppressed:{suppressed}"
    return None


@dataclass(frozen=True)
class Advance:
    """What one pass does to an active enrollment: its columns after the pass (the store's parameter names), the
    step to record now (if any), and whether the enrollment exited (why) or completed."""

    values: dict[str, Any]
    step: Step | None = None
    exited: str | None = None
    completed: bool = False


def position(row: Any, campaign: Campaign) -> int:
    """Where a lead is in this version of its campaign: just after the last step it was sent, found by id.

    A step added after that point is sent in order, one inserted before it is not sent retroactively, a removed
    one is not sent. When the last step itself was removed, the lead keeps its place (the count of steps passed).
    """
    last = getattr(row, "last_step_id", None)
    if last:
        for index, step in enumerate(campaign.steps):
            if step.id == last:
                return index + 1
    return min(row.next_step, len(campaign.steps))


def next_state(
    row: Any, lead: Any, campaign: Campaign | None, suppressed: str | None, moment: datetime, scale: float
) -> Advance:
    """The due enrollment `row` after this pass: exit, complete, or record its next step and plan the one after."""
    values: dict[str, Any] = {
        "b_id": row.id,
        "b_state": "active",
        "b_next_step": row.next_step,
        "b_next_send_at": None,
        "b_last_step_at": row.last_step_at,
        "b_last_step_id": getattr(row, "last_step_id", None),
        "b_exit_reason": None,
        "b_ended_at": None,
    }
    reason = exit_reason(lead, campaign, suppressed)
    if reason:
        values |= {"b_state": "exited", "b_exit_reason": reason[:64], "b_ended_at": moment}
        return Advance(values, exited=reason)
    at = position(row, campaign)
    if at >= len(campaign.steps):
        return Advance(values | {"b_state": "completed", "b_ended_at": moment}, completed=True)
    step = campaign.steps[at]
    values |= {"b_next_step": at + 1, "b_last_step_at": moment, "b_last_step_id": step.id}
    if at + 1 >= len(campaign.steps):
        return Advance(values | {"b_state": "completed", "b_ended_at": moment}, step=step, completed=True)
    following = campaign.steps[at + 1]
    values["b_next_send_at"] = due_at(moment, following, campaign.window, lead.timezone, scale)
    return Advance(values, step=step)


def holds_sequence(kind: str | None, enrollment_id: int | None) -> bool:
    """A failed campaign step makes its lead's sequence wait: no later step goes out as if it were the first."""
    return (kind or "nurture") == "nurture" and enrollment_id is not None


def skip_reason(delivery: Any, lead: Any, enrollment: Any, suppressed: str | None) -> str | None:
    """Why a queued delivery must not leave any more: the lead left, its enrollment ended, the address is blocked.

    `lead` and `enrollment` are the delivery's (None when it has none or they are gone); `suppressed` is the
    suppression list's reason for the address it would go to.
    """
    if delivery.lead_id is not None and (lead is None or lead.erased_at is not None):
        return "lead erased"
    if lead is not None and lead.unsubscribed_at is not None and delivery.kind not in STAFF_KINDS:
        return "lead unsubscribed"
    if enrollment is not None:
        if delivery.kind in ("confirmation", "reminder") and enrollment.state != "pending":
            return "already confirmed" if enrollment.state in ("active", "completed") else "enrollment ended"
        if delivery.kind == "nurture" and enrollment.state == "exited":
            return f"enrollment ended: {enrollment.exit_reason}"
    if suppressed is not None:
        return f"suppressed: {suppressed}"
    return None


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 30s, 1m, 2m... capped at 2h."""
    base = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    return base * random.uniform(0.5, 1.5)


@dataclass(frozen=True)
class Outcome:
    """What a provider call that did not succeed makes of the delivery in flight, and of the tick.

    `counts`: the tick's counters to bump; `stop`: no more sending this tick; `pause`: "auth" or "setting" when
    every worker must stop sending until an operator acts (the delivery is handed back, its attempt not used).
    """

    state: str
    error: str
    counts: tuple[str, ...]
    source: str | None = None
    due: datetime | None = None
    attempts_delta: int = 0
    stop: bool = False
    pause: str | None = None


def classify(exc: Exception, attempts: int, max_attempts: int, moment: datetime, scale: float) -> Outcome:
    """The outcome of a send that raised `exc` on attempt `attempts` (the provider's answer, or its absence)."""
    if isinstance(exc, AuthError | SettingError):
        # Nothing left: back to retrying at once without using up an attempt, and every worker pauses.
        # A setting's pause is counted where sending pauses (setting_error), as for every other path to it.
        pause = "setting" if isinstance(exc, SettingError) else "auth"
        counts = () if pause == "setting" else ("auth_error",)
        return Outcome("retrying", str(exc), counts, due=moment, attempts_delta=-1, stop=True, pause=pause)
    if isinstance(exc, TemporaryError):
        extra = ("rate_limited",) if exc.rate_limited else ()
        if attempts >= max_attempts:
            source = SOURCE_PROVIDER if exc.answered else SOURCE_TRANSPORT
            error = f"gave up after {attempts} attempts: {exc}"
            return Outcome("failed", error, ("failed", *extra), source=source, stop=exc.rate_limited)
        wait = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(attempts)
        return Outcome("retrying", str(exc), ("retrying", *extra), due=moment + wait / scale, stop=exc.rate_limited)
    if isinstance(exc, UncertainError):
        return Outcome("unknown", str(exc), ("unknown",), source=SOURCE_TRANSPORT)
    if isinstance(exc, PermanentError | SendError):
        return Outcome("failed", str(exc), ("failed",), source=SOURCE_PROVIDER)
    # A sender that breaks unexpectedly may or may not have sent: never resent automatically.
    error = f"the sender failed unexpectedly: {type(exc).__name__}"
    return Outcome("unknown", error, ("unknown",), source=SOURCE_TRANSPORT)
