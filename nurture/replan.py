"""Leads already in a sequence when a new version is published: where each continues, and what changes for them.

The rule (README, "Leads already in a sequence"): a lead continues after the last step it was sent, found by id
in the new version. Edited subjects and bodies apply to its next emails; a step added after its position is
sent in order; a removed step is not sent; a step inserted before its position is not sent retroactively;
delays count from its previous send. Leads who finished the sequence stay finished. Pausing and archiving keep
their meaning, and a delivery stays unique per enrollment and step id, so nobody gets a step twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.signals import campaign_published
from leads.models import Lead
from nurture.enrollment import time_scale
from nurture.models import Enrollment
from nurture.schedule import due_at
from studio.definitions import Campaign, Step


def anchor(row: Any, old: Campaign | None, new: Campaign) -> tuple[str | None, int]:
    """The last sent step that the new version still has, and the position after it there."""
    ids = [step.id for step in new.steps]
    last = row.last_step_id
    if last is None and old is not None and 0 < row.next_step <= len(old.steps):
        last = old.steps[row.next_step - 1].id  # enrollments recorded before steps were tracked by id
    if last in ids:
        return last, ids.index(last) + 1
    if old is not None and last is not None:
        before = [step.id for step in old.steps]
        if last in before:
            at = before.index(last)
            for earlier in reversed(before[:at]):
                if earlier in ids:
                    return earlier, ids.index(earlier) + 1
            for later in before[at + 1 :]:
                if later in ids:
                    return None, ids.index(later)
            return None, len(new.steps)
    return last, min(row.next_step, len(new.steps))


def _changed(old: Campaign | None, step: Step) -> str:
    before = old.step(step.id) if old is not None else None
    if before is None:
        return "new"
    same = (before.subject, before.preheader, before.markdown, before.delay, before.any_time, before.interests) == (
        step.subject,
        step.preheader,
        step.markdown,
        step.delay,
        step.any_time,
        step.interests,
    )
    return "same" if same else "changed"


@dataclass
class Effect:
    """What a publish does to leads already in the sequence (counted before it happens)."""

    waiting: int = 0
    # step id -> how many leads get it next, and whether it is new or changed, with the earliest moment
    next_steps: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    earliest: dict[str, datetime] = field(default_factory=dict)
    finishing: int = 0
    unchanged: int = 0

    @property
    def affected(self) -> int:
        """Leads whose next email is new or changed."""
        return sum(n for step, n in self.next_steps.items() if self.kinds.get(step) != "same")


def _rows(session: Session, slug: str) -> list[Any]:
    return list(
        session.execute(
            select(
                Enrollment.id,
                Enrollment.state,
                Enrollment.next_step,
                Enrollment.next_send_at,
                Enrollment.last_step_at,
                Enrollment.last_step_id,
                Enrollment.created_at,
                Enrollment.confirmed_at,
                Lead.timezone,
            )
            .join(Lead, Lead.id == Enrollment.lead_id)
            .where(Enrollment.campaign_slug == slug, Enrollment.state.in_(("active", "pending")))
        )
    )


def _plan(row: Any, old: Campaign | None, new: Campaign, scale: float) -> tuple[str | None, int, datetime | None]:
    last, position = anchor(row, old, new)
    if row.state != "active" or position >= len(new.steps):
        return last, position, None
    start = row.last_step_at or row.confirmed_at or row.created_at
    return last, position, due_at(start, new.steps[position], new.window, row.timezone, scale)


def effect(session: Session, old: Campaign | None, new: Campaign) -> Effect:
    """Count, without changing anything, which email each lead in the sequence would get next, and when."""
    found = Effect()
    scale = time_scale()
    for row in _rows(session, new.slug):
        found.waiting += 1
        _, position, due = _plan(row, old, new, scale)
        if position >= len(new.steps):
            found.finishing += 1
            continue
        step = new.steps[position]
        kind = _changed(old, step)
        found.kinds[step.id] = kind
        found.next_steps[step.id] = found.next_steps.get(step.id, 0) + 1
        if kind == "same":
            found.unchanged += 1
        moment = due or row.next_send_at
        if moment is not None and (step.id not in found.earliest or moment < found.earliest[step.id]):
            found.earliest[step.id] = moment
    return found


def apply(session: Session, old: Campaign | None, new: Campaign, moment: datetime) -> Counter[str]:
    """Move every lead in the sequence onto the new version (in the publisher's transaction)."""
    counts: Counter[str] = Counter()
    scale = time_scale()
    for row in _rows(session, new.slug):
        last, position, due = _plan(row, old, new, scale)
        values: dict[str, Any] = {"last_step_id": last, "next_step": position}
        if row.state == "active" and position >= len(new.steps):
            values |= {"state": "completed", "next_send_at": None, "ended_at": moment}
            counts["completed"] += 1
        elif row.state == "active" and row.next_send_at is not None:
            # A sequence held by a failed step (next_send_at NULL) stays held until that step is sent.
            values["next_send_at"] = due
            counts["replanned"] += 1
        session.execute(
            update(Enrollment)
            .where(Enrollment.id == row.id, Enrollment.state == row.state)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return counts


def _on_publish(_sender: Any, session: Session, old: Campaign | None, new: Campaign, moment: datetime) -> None:
    apply(session, old, new, moment)


def connect() -> None:
    """Receive campaign_published: leads in the sequence continue on the new version."""
    campaign_published.connect(_on_publish, weak=False)
