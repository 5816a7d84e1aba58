"""Who is in which sequence: enroll on a consenting signup, exit on booking or unsubscribe, confirm double opt-ins.

Receivers run inside the sender's transaction: they add rows to the given session and never commit.
Never log names, emails or interests here; ids only.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from core import signals
from core.clock import now
from core.db import Prepared, among, chunked
from leads.models import Lead
from mailer import wake
from mailer.models import Delivery
from nurture.models import Enrollment
from nurture.schedule import due_at
from studio.definitions import Campaign
from studio.registry import registry

log = logging.getLogger(__name__)

# An unconfirmed lead gets one reminder this long after the confirmation email, and nothing else.
REMINDER_AFTER = timedelta(days=2)


def time_scale() -> float:
    """NURTURE_TIME_SCALE of the current app (1 in production; 1440 plays a day in a minute)."""
    return float(current_app.config.get("NURTURE_TIME_SCALE", 1.0) or 1.0)


def first_send_at(campaign: Campaign, lead: Lead, start: datetime) -> datetime | None:
    """When the first step of a sequence that starts at `start` is due (None when it has no steps)."""
    if not campaign.steps:
        return None
    return due_at(start, campaign.steps[0], campaign.window, lead.timezone, time_scale())


def _campaign(value: Any) -> Campaign | None:
    slug = getattr(value, "slug", value)
    return registry().get(slug) if isinstance(slug, str) else None


def enroll(session: Session, lead: Lead, campaign: Campaign, *, new_lead: bool = False) -> Enrollment:
    """Get or create the lead's enrollment in `campaign`; a repeat signup neither restarts nor duplicates it.

    `new_lead`: the lead was created in this transaction, so it has no enrollment to look for.
    """
    if not new_lead:
        enrollment = session.scalars(
            select(Enrollment).where(Enrollment.lead_id == lead.id, Enrollment.campaign_slug == campaign.slug)
        ).first()
        if enrollment is not None:
            return enrollment
    moment = now()
    enrollment = Enrollment(lead_id=lead.id, campaign_slug=campaign.slug, created_at=moment, next_step=0)
    if campaign.double_opt_in:
        enrollment.state = "pending"
        session.add(enrollment)
        session.flush()
        # The confirmation leaves at once; the one reminder later, skipped if the lead confirms first.
        for key, kind, due in (
            ("confirm", "confirmation", moment),
            ("reminder", "reminder", moment + REMINDER_AFTER / time_scale()),
        ):
            session.add(
                Delivery(
                    dedupe_key=f"{key}:{enrollment.id}",
                    kind=kind,
                    lead_id=lead.id,
                    enrollment_id=enrollment.id,
                    campaign_slug=campaign.slug,
                    state="pending",
                    due_at=due,
                )
            )
    else:
        activate(enrollment, campaign, lead, moment)
        session.add(enrollment)
    session.flush()
    wake_if_due(session, enrollment, moment)
    log.info("enrollment %s created for lead %s in %s (%s)", enrollment.id, lead.id, campaign.slug, enrollment.state)
    return enrollment


def activate(enrollment: Enrollment, campaign: Campaign, lead: Lead, moment: datetime) -> None:
    """Start the sequence: the first step becomes due (or the enrollment completes when there is none)."""
    enrollment.next_step = 0
    enrollment.next_send_at = first_send_at(campaign, lead, moment)
    enrollment.state = "active" if enrollment.next_send_at is not None else "completed"
    if enrollment.state == "completed":
        enrollment.ended_at = moment


def wake_if_due(session: Session, enrollment: Enrollment, moment: datetime) -> None:
    """Wake the worker after commit when this enrollment has mail due now (a welcome, a confirmation)."""
    if enrollment.state == "pending" or (enrollment.next_send_at is not None and enrollment.next_send_at <= moment):
        wake.soon(session)


def end_enrollments(session: Session, lead_id: int, reason: str, *, slugs: tuple[str, ...] | None = None) -> int:
    """Exit the lead's pending and active enrollments (all, or those in `slugs`); returns how many ended.

    Unsent confirmations and reminders of those enrollments are skipped with the same reason.
    """
    ended = end_enrollments_of(session, [lead_id], reason, slugs=slugs)
    if ended:
        log.info("lead %s: %d enrollment(s) ended (%s)", lead_id, ended, reason)
    return ended


def end_enrollments_of(
    session: Session, lead_ids: list[int], reason: str, *, slugs: tuple[str, ...] | None = None
) -> int:
    """end_enrollments() for many leads at once, a few statements per 500 leads; returns how many ended."""
    moment = now()
    ended = 0
    for chunk in chunked(sorted(set(lead_ids))):
        where = [among(session, Enrollment.lead_id, chunk), Enrollment.state.in_(("pending", "active"))]
        if slugs is not None:
            where.append(Enrollment.campaign_slug.in_(slugs))
        for ids in chunked(list(session.scalars(select(Enrollment.id).where(*where)))):
            session.execute(
                update(Enrollment)
                .where(among(session, Enrollment.id, ids))
                .values(state="exited", exit_reason=reason[:64], next_send_at=None, ended_at=moment)
                .execution_options(synchronize_session="fetch")
            )
            session.execute(
                update(Delivery)
                .where(among(session, Delivery.enrollment_id, ids), Delivery.state.in_(("pending", "retrying")))
                .values(state="skipped", error=f"enrollment ended: {reason}"[:500], due_at=None, updated_at=moment)
                .execution_options(synchronize_session="fetch")
            )
            ended += len(ids)
    return ended


def on_lead_captured(
    sender: Flask,
    *,
    session: Session,
    lead: Any,
    campaign: Any = None,
    consented: bool = False,
    created: bool = False,
    **_: Any,
) -> None:
    """A consenting signup enrolls the lead (a Lead, or the row just written) in its landing page's campaign."""
    found = _campaign(campaign)
    if not consented or found is None or not found.steps:
        return
    if lead.erased_at is not None or lead.email is None:
        return
    if created and not found.double_opt_in:
        enroll_new_lead(session, lead, found)
        return
    # A lead created by this very signup cannot be enrolled yet: no lookup (the unique key still guards it).
    enroll(session, lead, found, new_lead=created)


_INSERT_ENROLLMENT = Prepared(
    lambda _: insert(Enrollment.__table__).returning(Enrollment.__table__.c.id),
    ("lead_id", "campaign_slug", "state", "next_step", "next_send_at", "created_at", "ended_at"),
)


def enroll_new_lead(session: Session, lead: Any, campaign: Campaign) -> int:
    """enroll() for a lead this transaction created in a campaign without double opt-in, as one INSERT.

    A signup holds SQLite's only write lock while it runs; the ORM's flush of one new row cost more than every
    other statement of the signup together. Returns the enrollment's id.
    """
    moment = now()
    due = first_send_at(campaign, lead, moment)
    values = {
        "lead_id": lead.id,
        "campaign_slug": campaign.slug,
        "state": "active" if due is not None else "completed",
        "next_step": 0,
        "next_send_at": due,
        "created_at": moment,
        "ended_at": moment if due is None else None,
    }
    enrollment_id = _INSERT_ENROLLMENT.execute(session.connection(), values)[0]
    if due is not None and due <= moment:
        wake.soon(session)
    log.info("enrollment %s created for lead %s in %s (%s)", enrollment_id, lead.id, campaign.slug, values["state"])
    return enrollment_id


def on_status_changed(sender: Flask, *, session: Session, lead: Lead, new_status: str, **_: Any) -> None:
    """A status that ends a campaign (booked, patient, not a fit...) exits the lead from it."""
    slugs = tuple(c.slug for c in registry().all() if new_status in c.exit_statuses)
    if slugs:
        end_enrollments(session, lead.id, f"status:{new_status}", slugs=slugs)


def on_unsubscribed(
    sender: Flask, *, session: Session, lead_ids: list[int] | None = None, reason: str = "", **_: Any
) -> None:
    """Unsubscribe, bounce or spam report: every enrollment of each lead ends (a provider's batch names many)."""
    lead_ids = lead_ids or []
    why = f"unsubscribed:{reason or 'unsubscribe'}"
    if len(lead_ids) == 1:
        end_enrollments(session, lead_ids[0], why)
    elif lead_ids:
        ended = end_enrollments_of(session, lead_ids, why)
        log.info("%d lead(s): %d enrollment(s) ended (%s)", len(lead_ids), ended, why)


def on_erased(sender: Flask, *, session: Session, lead: Lead, **_: Any) -> None:
    """An erased lead leaves every sequence for good (its unsent mail is skipped by the mailer's receiver)."""
    session.execute(
        update(Enrollment)
        .where(Enrollment.lead_id == lead.id)
        .values(
            state="exited",
            exit_reason="erased",
            next_send_at=None,
            lease_owner=None,
            ended_at=func.coalesce(Enrollment.ended_at, now()),
        )
    )


def connect() -> None:
    """Connect the receivers (idempotent: blinker keeps one connection per receiver)."""
    signals.lead_captured.connect(on_lead_captured)
    signals.lead_status_changed.connect(on_status_changed)
    signals.lead_unsubscribed.connect(on_unsubscribed)
    signals.lead_erased.connect(on_erased)


def remove_from_sequence(session: Session, enrollment: Enrollment) -> bool:
    """Staff take a lead out of a sequence: nothing more of it is sent (unsent steps are skipped)."""
    if enrollment.state not in ("pending", "active"):
        return False
    return end_enrollments(session, enrollment.lead_id, "removed by staff", slugs=(enrollment.campaign_slug,)) > 0


def move_to_step(session: Session, enrollment: Enrollment, campaign: Campaign, step_id: str, lead: Lead) -> datetime:
    """Staff move a lead in a sequence (or back into a finished one): `step_id` is its next email, due now (within
    the send window unless the step goes any time). A step it was already sent is never sent again."""
    index = next((i for i, step in enumerate(campaign.steps) if step.id == step_id), None)
    if index is None:
        raise ValueError(f"{campaign.slug} has no step {step_id!r}")
    if enrollment.state not in ("active", "completed"):
        raise ValueError("only a running or finished sequence can be moved (a lead who left is not brought back)")
    moment = now()
    step = campaign.steps[index]
    due = due_at(moment, replace(step, delay=timedelta(0)), campaign.window, lead.timezone, time_scale())
    enrollment.state = "active"
    enrollment.next_step = index
    enrollment.last_step_id = campaign.steps[index - 1].id if index > 0 else None
    enrollment.next_send_at = due
    enrollment.ended_at = None
    enrollment.lease_owner = enrollment.lease_until = None
    log.info("enrollment %s moved to step %s by staff", enrollment.id, step_id)
    return due
