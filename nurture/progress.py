"""Where a lead stands in a campaign's sequence, in words: the leads list, the lead's page and the CSV use it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from nurture.models import Enrollment
from nurture.rules import position
from studio.registry import registry

# Which enrollment speaks for a lead in one column: a running sequence first, then the newest.
_STATE_ORDER = {"active": 0, "pending": 1, "completed": 2, "exited": 3}


@dataclass(frozen=True)
class Progress:
    """An enrollment with its next step looked up in the loaded campaign."""

    enrollment: Enrollment
    campaign_name: str
    steps: int
    step_number: int | None  # 1 = the first email; None when no step is next
    step_id: str | None
    subject: str | None

    @property
    def step_label(self) -> str:
        """The next email as the campaign page numbers it, e.g. "2. the-science"; "" when none is next."""
        return f"{self.step_number}. {self.step_id}" if self.step_id else ""

    @property
    def state_text(self) -> str:
        """The sequence's state in words: "next: 2. the-science", "completed", "exited: booked"..."""
        state = self.enrollment.state
        if state == "active":
            return f"next: {self.step_label}" if self.step_id else "sending the last email"
        if state == "pending":
            return "waiting for the lead to confirm"
        if state == "exited":
            return f"exited: {self.enrollment.exit_reason or 'ended'}"
        return state


def progress(enrollment: Enrollment) -> Progress:
    """The progress of one enrollment, naming its next step when its campaign is loaded."""
    campaign = registry().get(enrollment.campaign_slug)
    steps = list(campaign.steps) if campaign is not None else []
    index = position(enrollment, campaign) if campaign is not None else enrollment.next_step
    step = steps[index] if enrollment.state in ("active", "pending") and 0 <= index < len(steps) else None
    return Progress(
        enrollment=enrollment,
        campaign_name=campaign.name if campaign is not None else enrollment.campaign_slug,
        steps=len(steps),
        step_number=index + 1 if step is not None else None,
        step_id=step.id if step is not None else None,
        subject=step.subject if step is not None else None,
    )


def current_progress(session: Session, lead_ids: Iterable[int]) -> dict[int, Progress]:
    """Per lead, the enrollment that speaks for it (running first, then the newest), with its progress."""
    ids = list(lead_ids)
    if not ids:
        return {}
    chosen: dict[int, Enrollment] = {}
    for enrollment in session.scalars(select(Enrollment).where(Enrollment.lead_id.in_(ids))):
        best = chosen.get(enrollment.lead_id)
        rank = (_STATE_ORDER.get(enrollment.state, 9), -enrollment.id)
        if best is None or rank < (_STATE_ORDER.get(best.state, 9), -best.id):
            chosen[enrollment.lead_id] = enrollment
    return {lead_id: progress(enrollment) for lead_id, enrollment in chosen.items()}
