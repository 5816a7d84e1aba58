"""One pass of the nurture worker: claim what is due, record it, send it, record the answer.

The database is the source of truth. For a batch of due enrollments, one transaction checks exits and the
suppression list, records each step as a Delivery (unique dedupe_key; `pending`, leased to this worker) and
advances the enrollments. Then, per email, the message is composed first: an email that cannot be built fails
with the reason while still `pending` (it never reached a provider). Only then one transaction re-checks the
lead and the suppression list and moves the delivery to `sending` (storing the previous email's answer on the
way) *before* the provider is called, so no step can be sent twice; a worker that dies between that commit and
the provider's answer leaves the delivery `sending`, which the next sweep turns into `unknown` (never resent
automatically). Steps it recorded but never started stay `pending` and are sent by any worker once the lease is
over.

When a campaign step fails for a lead, the lead's sequence waits: the enrollment keeps its place but has no next
send time, so no later step goes out as if it were the first; queueing the failed email again and sending it
starts the clock for the next step. A setting every email needs (mailer.health.setting_problems) pauses all
sending like a 401/403 instead of failing anything. Logs carry ids and counts only: never names, emails or
interests.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Connection, Row, Select, Update, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.clock import now
from core.db import db
from leads.models import Lead
from mailer.base import (
    AuthError,
    Message,
    PermanentError,
    SendError,
    SettingError,
    TemporaryError,
    UncertainError,
    composer_for,
    get_sender,
)
from mailer.health import setting_problems
from mailer.ledger import pause_provider, provider_pause
from mailer.models import Delivery, Suppression, email_hash
from nurture.composers import compose_step, step_where
from nurture.enrollment import time_scale
from nurture.models import CampaignState, Enrollment, WorkerHeartbeat
from nurture.schedule import due_at
from studio.definitions import Campaign, Step
from studio.registry import registry

log = logging.getLogger(__name__)

# The provider pause is the mailer's alert flag: one switch, read by every worker before sending.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=2)
UNKNOWN_REASON = "the worker stopped before the provider answered; check the provider's events before resending"
# deliveries.error_source: who produced the error, so the admin says "the provider refused" only when it did.
SOURCE_CONTENT = "content"  # the email could not be built; no provider was called
SOURCE_PROVIDER = "provider"  # the provider answered with an error
SOURCE_TRANSPORT = "transport"  # the provider could not be reached (or did not answer)

# The hot statements work on the tables (Core), built once: no ORM objects or statement building per email.
deliveries = Delivery.__table__
enrollments = Enrollment.__table__
leads = Lead.__table__
suppressions = Suppression.__table__

# An enrollment after its batch was recorded (executemany, one parameter set per enrollment).
advance_enrollment = (
    update(enrollments)
    .where(enrollments.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        next_step=bindparam("b_next_step"),
        next_send_at=bindparam("b_next_send_at"),
        last_step_at=bindparam("b_last_step_at"),
        exit_reason=bindparam("b_exit_reason"),
        ended_at=bindparam("b_ended_at"),
        lease_owner=None,
        lease_until=None,
    )
)


@functools.cache
def start_step(exit_statuses: frozenset[str]) -> Update:
    """pending -> sending, only while still ours and while the lead may still get it: the re-check before each send.

    One statement per set of exit statuses, written out (not an expanding IN) so it compiles once and runs as is.
    """
    return (
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("b_delivery_id"),
            deliveries.c.state == "pending",
            deliveries.c.lease_owner == bindparam("b_worker"),
            exists().where(
                leads.c.id == bindparam("b_lead_id"),
                leads.c.email == bindparam("b_email"),
                leads.c.erased_at.is_(None),
                leads.c.unsubscribed_at.is_(None),
                *(leads.c.status != status for status in sorted(exit_statuses)),
            ),
            ~exists().where(suppressions.c.email_hash == bindparam("b_email_hash")),
            ~exists().where(enrollments.c.id == bindparam("b_enrollment_id"), enrollments.c.state == "exited"),
        )
        .values(state="sending", attempts=1, lease_until=bindparam("b_lease_until"), updated_at=bindparam("b_moment"))
    )


def _mark_sent(id_name: str, moment_name: str, provider_id_name: str) -> Update:
    """The provider accepted it. `unknown` too: a slow answer may arrive after a sweep gave up on us."""
    return (
        update(deliveries)
        .where(
            deliveries.c.id == bindparam(id_name),
            or_(deliveries.c.state == "sending", deliveries.c.state == "unknown"),
        )
        .values(
            state="sent",
            sent_at=bindparam(moment_name),
            error=None,
            error_source=None,
            lease_owner=None,
            lease_until=None,
            updated_at=bindparam(moment_name),
            provider_message_id=func.coalesce(deliveries.c.provider_message_id, bindparam(provider_id_name)),
        )
    )


record_sent = _mark_sent("b_delivery_id", "b_moment", "b_provider_id")
# The same with its own parameter names, to ride along with start_step in one PostgreSQL statement.
record_sent_cte = _mark_sent("b_sent_id", "b_sent_moment", "b_sent_provider_id").returning(deliveries.c.id).cte("sent")


@functools.cache
def start_step_after_sent(exit_statuses: frozenset[str]) -> Update:
    """PostgreSQL: store the previous email's success and start this one in a single statement (one round trip)."""
    return start_step(exit_statuses).add_cte(record_sent_cte)


# A step recorded in this tick whose email cannot be built: failed while still ours and `pending` (never sent).
fail_unsent_step = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_delivery_id"),
        deliveries.c.state == "pending",
        deliveries.c.lease_owner == bindparam("b_worker"),
    )
    .values(
        state="failed",
        error=bindparam("b_error"),
        error_source=SOURCE_CONTENT,
        lease_owner=None,
        lease_until=None,
        updated_at=bindparam("b_moment"),
    )
)
# A failed step makes the lead's sequence wait: no next send time, so no later step goes out as the first.
hold_enrollment = (
    update(enrollments)
    .where(enrollments.c.id == bindparam("b_enrollment_id"), enrollments.c.state == "active")
    .values(next_send_at=None)
)
# The failed step, queued again, was sent: the next step's clock starts now.
resume_enrollment = (
    update(enrollments)
    .where(
        enrollments.c.id == bindparam("b_enrollment_id"),
        enrollments.c.state == "active",
        enrollments.c.next_send_at.is_(None),
    )
    .values(next_send_at=bindparam("b_next_send_at"))
)


def dedupe_key(enrollment_id: int, step_id: str) -> str:
    """The key that makes a campaign step one delivery per enrollment."""
    return f"enr:{enrollment_id}:{step_id}"


def content_problem(job: Job, exc: Exception) -> str:
    """Why an email could not be built, for a marketer: the file (or kind of email), the step, what is wrong."""
    delivery = job.delivery
    if job.step is not None:
        where = step_where(job.campaign, job.step)
    elif getattr(delivery, "step_id", None):
        campaign = registry().get(delivery.campaign_slug or "")
        step = campaign.step(delivery.step_id) if campaign is not None else None
        where = step_where(campaign, step) if step is not None else f"{delivery.campaign_slug}: step {delivery.step_id}"
    else:
        kind = getattr(delivery, "kind", "nurture").replace("_", " ")
        where = f"the {kind} email" + (f" of {delivery.campaign_slug}" if delivery.campaign_slug else "")
    if isinstance(exc, PermanentError):  # ComposeError and the like: their text is written for people
        problem = str(exc)
    else:
        # Only the type: the text of an unexpected error may quote the lead's data.
        problem = f"the email could not be built ({type(exc).__name__}); open the step's preview in the admin"
    problem = problem.removeprefix(f"{where}: ")
    return f"{where}: {problem}"


def worker_identity() -> str:
    """A name unique to this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: about 30s, 1m, 2m... capped at 2h."""
    base = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    return base * random.uniform(0.5, 1.5)


@dataclass
class DeliveryRef:
    """What sending needs of a delivery recorded in this tick's batch (composers read id and recipient)."""

    id: int
    enrollment_id: int
    lead_email: str
    email_hash: str
    recipient: str | None = None
    attempts: int = 1
    kind: str = "nurture"


@dataclass
class Job:
    """A recorded delivery to hand to the provider, with what its composer needs."""

    delivery: Delivery | DeliveryRef
    campaign: Campaign | None = None
    step: Step | None = None
    lead: Any = None  # a row of leads (id, email, first_name... are what composers read)
    message: Message | None = None  # composed before the delivery becomes `sending`
    # A queued-again campaign step whose sequence waits for it: its next step's time, once this one is sent.
    resume: Callable[[datetime], dict[str, Any]] | None = None


class Stop(Exception):
    """Stop sending for this tick (rate limit) or until an operator acts (auth)."""


class Tick:
    """One pass; counts what happened so the worker can log a single line."""

    def __init__(self, worker_id: str | None = None, should_stop: Callable[[], bool] | None = None) -> None:
        self.worker_id = worker_id or worker_identity()
        self.should_stop = should_stop or (lambda: False)
        self.counts: Counter[str] = Counter()
        self.batch_size = int(current_app.config.get("NURTURE_BATCH_SIZE", 100))
        self.lease = timedelta(seconds=int(current_app.config.get("NURTURE_LEASE_SECONDS", 120)))
        self.max_attempts = int(current_app.config.get("NURTURE_MAX_ATTEMPTS", 5))
        self.scale = time_scale()
        self.postgres = db.engine.dialect.name == "postgresql"
        # Provider answers not yet written: each goes out with the next transaction (at most one send later).
        self.outcomes: list[tuple[Any, dict[str, Any]]] = []
        # The connection for this tick's per-email writes, kept for the whole tick: no pool checkout, ping and
        # reset per email (on PostgreSQL these round trips cost more than the transaction itself).
        self.connection: Connection | None = None
        self.autocommit: Connection | None = None  # PostgreSQL's one-statement path (start_sending_in_one_trip)

    # -- the pass ------------------------------------------------------------------------------------------

    def run(self) -> dict[str, int]:
        """Sweep, send transactional mail, send due steps, beat, run the registered tick tasks."""
        try:
            self.sweep()
            pause = provider_pause(db.session)
            db.session.commit()
            pause = pause or self.check_settings()
            if pause is not None:
                self.counts["provider_paused"] = 1
            else:
                try:
                    self.send_transactional()
                    self.send_due_steps()
                except Stop:
                    pass
        finally:
            db.session.rollback()
            self.close()
        self.heartbeat()
        self.run_tasks()
        return {key: value for key, value in self.counts.items() if value}

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction on the tick's connection that first stores the provider answers still held."""
        if self.connection is None:
            self.connection = db.engine.connect().execution_options(sqlite_immediate=True)
        held = list(self.outcomes)
        with self.connection.begin():
            for statement, params in held:
                self.connection.execute(statement, params)
            yield self.connection
        # Only once committed: answers lost to a rollback are tried again with the next transaction.
        del self.outcomes[: len(held)]

    def flush_outcomes(self) -> None:
        """Store the held provider answers now (end of a batch, before other writes, end of the tick)."""
        if self.outcomes:
            with self.write():
                pass

    def close(self) -> None:
        """Store what is held and give the tick's connection back."""
        try:
            self.flush_outcomes()
        except Exception as exc:  # noqa: BLE001 - unstored answers only leave deliveries `unknown`, never resent
            log.error("could not store %d provider answer(s): %s", len(self.outcomes), type(exc).__name__)
        finally:
            for connection in (self.connection, self.autocommit):
                if connection is not None:
                    connection.close()
            self.connection = self.autocommit = None

    def check_settings(self) -> dict[str, Any] | None:
        """Pause sending when a setting every email needs is wrong (the worker's start check missed it)."""
        problems = setting_problems(current_app.config)
        if not problems:
            return None
        self.pause_for_setting(problems[0])
        return {"reason": str(problems[0]), "setting": problems[0].setting}

    def pause_for_setting(self, exc: SettingError) -> None:
        """Pause every worker's sending until the setting is fixed and sending resumed; nothing is marked failed."""
        self.counts["setting_error"] += 1
        self.flush_outcomes()
        pause_provider(str(exc), exc.setting)

    def sweep(self) -> None:
        """Deliveries whose sender vanished mid-send become `unknown`: never resent automatically."""
        moment = now()
        stale = select(Delivery.id).where(Delivery.state == "sending", Delivery.lease_until < moment).limit(1)
        found = db.session.scalar(stale)
        db.session.commit()
        if found is None:  # the usual case: no write lock taken
            return
        with db.write_transaction() as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.state == "sending", Delivery.lease_until < moment)
                .values(
                    state="unknown",
                    error=UNKNOWN_REASON,
                    error_source=SOURCE_TRANSPORT,
                    lease_owner=None,
                    updated_at=moment,
                )
            )
        if result.rowcount:
            self.counts["unknown"] += result.rowcount
            log.warning("%d delivery(ies) marked unknown after their worker stopped mid-send", result.rowcount)

    # -- campaign steps ------------------------------------------------------------------------------------

    def due_query(self, moment: datetime) -> Select:
        """Due enrollments, oldest first; the index on next_send_at keeps this proportional to what is due."""
        paused = list(db.session.scalars(select(CampaignState.slug).where(CampaignState.paused.is_(True))))
        # next_send_at is set only on active enrollments with a step to send, so the range on its index is
        # the whole filter; naming `state` here would tempt SQLite's planner onto the state index (a full scan).
        query = select(
            enrollments.c.id,
            enrollments.c.lead_id,
            enrollments.c.campaign_slug,
            enrollments.c.state,
            enrollments.c.next_step,
            enrollments.c.next_send_at,
            enrollments.c.last_step_at,
        ).where(
            enrollments.c.next_send_at <= moment,
            or_(enrollments.c.lease_until.is_(None), enrollments.c.lease_until < moment),
        )
        if paused:
            query = query.where(enrollments.c.campaign_slug.not_in(paused))
        return query.order_by(enrollments.c.next_send_at).limit(self.batch_size)

    def send_due_steps(self) -> None:
        """Record a batch of due steps at once, send them one by one; until nothing is due or a stop is asked."""
        while not self.should_stop():
            jobs, claimed = self.record_batch()
            self.counts["claimed"] += claimed
            for position, job in enumerate(jobs):
                try:
                    # Composed while still `pending`: an email that cannot be built never reaches `sending`.
                    if not self.compose_step(job) or not self.start_sending(job):
                        continue
                    self.send(job)
                except Stop:
                    # This job too, if it never started (the UPDATE only touches our own pending rows).
                    self.release([later.delivery.id for later in jobs[position:]])
                    raise
            self.flush_outcomes()
            if claimed < self.batch_size:
                return

    def record_batch(self) -> tuple[list[Job], int]:
        """In one transaction for a batch of due enrollments: check exits, record deliveries, advance each one.

        The deliveries are recorded `pending` and leased to this worker; each becomes `sending` only in
        start_sending, just before its provider call. A worker that dies here leaves them pending, and once
        the lease is over any worker sends them as queued mail (they were never handed to the provider).
        """
        moment = now()
        query = self.due_query(moment)
        # Look before locking: an idle tick never takes SQLite's write lock.
        anything = db.session.scalar(query.with_only_columns(enrollments.c.id).limit(1))
        db.session.commit()
        if anything is None:
            return [], 0
        with self.write() as connection:
            if self.postgres:
                query = query.with_for_update(skip_locked=True)
            rows = connection.execute(query).all()
            if not rows:
                return [], 0
            lead_ids = {row.lead_id for row in rows}
            found = {lead.id: lead for lead in connection.execute(select(leads).where(leads.c.id.in_(lead_ids)))}
            hashes = {lead.id: email_hash(lead.email) for lead in found.values() if lead.email}
            suppressed = dict(
                connection.execute(
                    select(Suppression.email_hash, Suppression.reason).where(
                        Suppression.email_hash.in_(set(hashes.values()))
                    )
                ).all()
            )
            changes, ended_elsewhere, records, planned = [], [], [], []
            for row in rows:
                if row.state != "active":
                    # Ended elsewhere without clearing its due time: clear it so it is never claimed again.
                    ended_elsewhere.append(row.id)
                    continue
                lead = found.get(row.lead_id)
                change = self.next_state(row, lead, suppressed.get(hashes.get(row.lead_id)), moment)
                step, campaign = change.pop("step", None), change.pop("campaign", None)
                changes.append(change)
                if step is None:
                    continue
                if not step.applies_to(lead.interest):
                    records.append(self.delivery_values(row, step, "skipped", moment))
                    self.counts["skipped"] += 1
                else:
                    records.append(self.delivery_values(row, step, "pending", moment))
                    planned.append((row, campaign, step, lead))
            recorded = self.insert_deliveries(connection, records)
            if changes:
                connection.execute(advance_enrollment, changes)
            if ended_elsewhere:
                connection.execute(
                    update(enrollments)
                    .where(enrollments.c.id.in_(ended_elsewhere))
                    .values(next_send_at=None, lease_owner=None, lease_until=None)
                )
        jobs = []
        for row, campaign, step, lead in planned:
            delivery_id = recorded.get(dedupe_key(row.id, step.id))
            if delivery_id is None:
                # Already recorded by someone else: never send it again.
                self.counts["duplicate"] += 1
                continue
            ref = DeliveryRef(delivery_id, row.id, lead.email, hashes[lead.id])
            jobs.append(Job(ref, campaign, step, lead))
        return jobs, len(rows)

    def next_state(self, row: Row, lead: Row | None, suppressed: str | None, moment: datetime) -> dict[str, Any]:
        """The active enrollment's columns after this pass, and ("step", "campaign") when a step is recorded now."""
        change: dict[str, Any] = {
            "b_id": row.id,
            "b_state": "active",
            "b_next_step": row.next_step,
            "b_next_send_at": None,
            "b_last_step_at": row.last_step_at,
            "b_exit_reason": None,
            "b_ended_at": None,
        }
        campaign = registry().get(row.campaign_slug)
        reason = self.exit_reason(lead, campaign, suppressed)
        if reason:
            self.counts["exited"] += 1
            log.info("enrollment %s exited (%s)", row.id, reason.split(":")[0])
            return change | {"b_state": "exited", "b_exit_reason": reason[:64], "b_ended_at": moment}
        if row.next_step >= len(campaign.steps):
            self.counts["completed"] += 1
            return change | {"b_state": "completed", "b_ended_at": moment}
        step = campaign.steps[row.next_step]
        change |= {"b_next_step": row.next_step + 1, "b_last_step_at": moment, "step": step, "campaign": campaign}
        if row.next_step + 1 >= len(campaign.steps):
            self.counts["completed"] += 1
            return change | {"b_state": "completed", "b_ended_at": moment}
        following = campaign.steps[row.next_step + 1]
        change["b_next_send_at"] = due_at(moment, following, campaign.window, lead.timezone, self.scale)
        return change

    def exit_reason(self, lead: Row | None, campaign: Campaign | None, suppressed: str | None) -> str | None:
        """Why this lead must get nothing more from this campaign, if anything."""
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

    def delivery_values(self, row: Row, step: Step, state: str, moment: datetime) -> dict[str, Any]:
        """The delivery row recording this step; `pending` ones are leased to this worker until they are sent."""
        leased = state == "pending"
        return {
            "dedupe_key": dedupe_key(row.id, step.id),
            "kind": "nurture",
            "lead_id": row.lead_id,
            "enrollment_id": row.id,
            "campaign_slug": row.campaign_slug,
            "step_id": step.id,
            "state": state,
            "due_at": row.next_send_at,
            "error": None if leased else "condition: area of interest not listed",
            "attempts": 0,
            "lease_owner": self.worker_id if leased else None,
            "lease_until": moment + self.lease if leased else None,
            "created_at": moment,
            "updated_at": moment,
        }

    def insert_deliveries(self, connection: Connection, records: list[dict[str, Any]]) -> dict[str, int]:
        """INSERT ... ON CONFLICT DO NOTHING on the dedupe key; {dedupe_key: id} of the rows this call added."""
        if not records:
            return {}
        dialect = postgresql if self.postgres else sqlite
        stmt = (
            dialect.insert(deliveries)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(deliveries.c.dedupe_key, deliveries.c.id)
        )
        return dict(connection.execute(stmt, records).all())

    def start_sending(self, job: Job) -> bool:
        """pending -> sending just before the provider call, re-checking exits and suppression in the same UPDATE.

        The previous email's success, held since its answer, is stored in the same transaction.
        """
        moment = now()
        params = {
            "b_delivery_id": job.delivery.id,
            "b_worker": self.worker_id,
            "b_lease_until": moment + self.lease,
            "b_moment": moment,
            "b_enrollment_id": job.delivery.enrollment_id,
            "b_lead_id": job.lead.id,
            "b_email": job.delivery.lead_email,
            "b_email_hash": job.delivery.email_hash,
        }
        if self.postgres and len(self.outcomes) <= 1 and all(stmt is record_sent for stmt, _ in self.outcomes):
            if self.start_sending_in_one_trip(job, params):
                return True
            with self.write() as connection:
                self.stopped_before_sending(connection, job, moment)
            return False
        with self.write() as connection:
            started = connection.execute(start_step(frozenset(job.campaign.exit_statuses)), params).rowcount
            if started == 1:
                return True
            self.stopped_before_sending(connection, job, moment)
            return False

    def start_sending_in_one_trip(self, job: Job, params: dict[str, Any]) -> bool:
        """PostgreSQL: one autocommitted statement stores the held success (if any) and starts this email.

        A single statement is atomic, so this is the same transaction as the general path, without the
        BEGIN and COMMIT round trips that cost more than the work on a busy host.
        """
        if self.autocommit is None:
            self.autocommit = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        statuses = frozenset(job.campaign.exit_statuses)
        held = list(self.outcomes)
        if held:
            sent = held[0][1]
            statement = start_step_after_sent(statuses)
            params = params | {
                "b_sent_id": sent["b_delivery_id"],
                "b_sent_moment": sent["b_moment"],
                "b_sent_provider_id": sent["b_provider_id"],
            }
        else:
            statement = start_step(statuses)
        started = self.autocommit.execute(statement, params).rowcount
        del self.outcomes[: len(held)]
        return started == 1

    def stopped_before_sending(self, connection: Connection, job: Job, moment: datetime) -> None:
        """The re-check refused a recorded step (rare): record why, and end the enrollment if the lead left."""
        state = connection.scalar(select(deliveries.c.state).where(deliveries.c.id == job.delivery.id))
        if state != "pending":
            # Someone else settled it (an unsubscribe skipped it, or our lease ran out and a worker took it).
            self.counts["lost_lease"] += 1
            return
        lead = connection.execute(select(leads).where(leads.c.id == job.lead.id)).first()
        hashed = email_hash(lead.email) if lead is not None and lead.email else None
        suppressed = connection.scalar(select(suppressions.c.reason).where(suppressions.c.email_hash == hashed))
        reason = self.exit_reason(lead, job.campaign, suppressed)
        if reason is None and lead is not None and lead.email != job.delivery.lead_email:
            reason = "the address changed before sending"
        reason = reason or "enrollment ended"
        connection.execute(
            update(deliveries)
            .where(deliveries.c.id == job.delivery.id, deliveries.c.state == "pending")
            .values(
                state="skipped", error=reason, error_source=None, lease_owner=None, lease_until=None, updated_at=moment
            )
        )
        connection.execute(
            update(enrollments)
            .where(enrollments.c.id == job.delivery.enrollment_id, enrollments.c.state != "exited")
            .values(state="exited", exit_reason=reason[:64], next_send_at=None, ended_at=moment)
        )
        self.counts["exited"] += 1
        log.info("enrollment %s exited before sending (%s)", job.delivery.enrollment_id, reason.split(":")[0])

    def release(self, ids: list[int]) -> None:
        """Give back recorded steps this tick will not send: they stay pending, for any worker's next tick."""
        if ids:
            with self.write() as connection:
                connection.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id.in_(ids),
                        deliveries.c.state == "pending",
                        deliveries.c.lease_owner == self.worker_id,
                    )
                    .values(lease_owner=None, lease_until=None)
                )

    # -- confirmations, reminders, retries, staff mail -----------------------------------------------------

    def send_transactional(self) -> None:
        """Pending and retrying deliveries of any kind whose time has come, claimed one by one."""
        while not self.should_stop():
            moment = now()
            rows = db.session.execute(
                select(Delivery.id, Delivery.state)
                .where(
                    Delivery.state.in_(("pending", "retrying")),
                    Delivery.due_at <= moment,
                    # Steps another worker recorded and is about to send stay its own until its lease ends.
                    or_(Delivery.lease_until.is_(None), Delivery.lease_until < moment),
                )
                .order_by(Delivery.due_at)
                .limit(self.batch_size)
            ).all()
            db.session.commit()
            for delivery_id, state in rows:
                job = self.claim_delivery(delivery_id, state)
                if job is not None:
                    self.send(job)
            if len(rows) < self.batch_size:
                return

    def claim_delivery(self, delivery_id: int, state: str) -> Job | None:
        """pending/retrying -> sending, only if nobody else got there first; re-check who it goes to; compose.

        The email is composed inside the claiming transaction: if it cannot be built the delivery fails in that
        same transaction, so it is never seen as `sending` (never in the "may have been sent" window). A wrong
        setting rolls the claim back (the delivery stays due) and pauses sending.
        """
        moment = now()
        self.flush_outcomes()
        try:
            with db.write_transaction() as session:
                claimed = session.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == delivery_id,
                        deliveries.c.state == state,
                        or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < moment),
                    )
                    .values(
                        state="sending",
                        lease_owner=self.worker_id,
                        lease_until=moment + self.lease,
                        attempts=deliveries.c.attempts + 1,
                        updated_at=moment,
                    )
                ).rowcount
                if claimed != 1:
                    return None
                delivery = session.get(Delivery, delivery_id, populate_existing=True)
                reason = self.skip_reason(session, delivery)
                if reason:
                    self.settle_unsent(delivery, "skipped", reason, None)
                    self.counts["skipped"] += 1
                    return None
                job = Job(delivery)
                problem = self.compose_queued(job)
                if problem is not None:
                    self.settle_unsent(delivery, "failed", problem, SOURCE_CONTENT)
                    if self.holds_sequence(delivery):
                        session.execute(hold_enrollment, {"b_enrollment_id": delivery.enrollment_id})
                    self.counts["failed"] += 1
                    log.warning("delivery %s failed: the email could not be built", delivery_id)
                    return None
                job.resume = self.resume_after(session, delivery)
                return job
        except SettingError as exc:
            self.pause_for_setting(exc)
            raise Stop from None

    @staticmethod
    def settle_unsent(delivery: Delivery, state: str, reason: str, source: str | None) -> None:
        """End a claimed delivery that was never handed to a provider (the claim's attempt is given back)."""
        delivery.state, delivery.error, delivery.error_source = state, reason[:2000], source
        delivery.lease_owner = delivery.lease_until = None
        delivery.attempts -= 1

    def compose_queued(self, job: Job) -> str | None:
        """Compose a queued delivery with its kind's composer; the reason it cannot be built, if it cannot."""
        try:
            composer = composer_for(job.delivery.kind)
        except KeyError:
            return f"the {job.delivery.kind} email: no composer is registered for this kind of email"
        try:
            job.message = composer(job.delivery)
        except SettingError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever breaks while building, nothing was sent
            return content_problem(job, exc)
        return None

    def compose_step(self, job: Job) -> bool:
        """Compose a step recorded in this tick; when it cannot be built, fail it with the reason (never sent)."""
        try:
            job.message = compose_step(job.campaign, job.step, job.lead, job.delivery)
        except SettingError as exc:
            self.pause_for_setting(exc)
            raise Stop from None
        except Exception as exc:  # noqa: BLE001 - whatever breaks while building, nothing was sent
            values = {
                "b_delivery_id": job.delivery.id,
                "b_worker": self.worker_id,
                "b_error": content_problem(job, exc)[:2000],
                "b_moment": now(),
            }
            self.outcomes.append((fail_unsent_step, values))
            self.outcomes.append((hold_enrollment, {"b_enrollment_id": job.delivery.enrollment_id}))
            self.counts["failed"] += 1
            log.warning("delivery %s failed: the email could not be built (%s)", job.delivery.id, type(exc).__name__)
            return False
        return True

    @staticmethod
    def holds_sequence(delivery: Delivery | DeliveryRef) -> bool:
        """A failed campaign step makes its lead's sequence wait (see the module docstring)."""
        return getattr(delivery, "kind", "nurture") == "nurture" and delivery.enrollment_id is not None

    def resume_after(self, session: Session, delivery: Delivery) -> Callable[[datetime], dict[str, Any]] | None:
        """For a queued-again step whose sequence waits for it: how to start the next step's clock once it is sent.

        The sequence resumes only when no other email of it is still failed.
        """
        if not self.holds_sequence(delivery):
            return None
        enrollment = session.get(Enrollment, delivery.enrollment_id)
        if enrollment is None or enrollment.state != "active" or enrollment.next_send_at is not None:
            return None
        campaign = registry().get(enrollment.campaign_slug)
        if campaign is None or enrollment.next_step >= len(campaign.steps):
            return None
        others_failed = session.scalar(
            select(func.count()).where(
                deliveries.c.enrollment_id == enrollment.id,
                deliveries.c.state == "failed",
                deliveries.c.id != delivery.id,
            )
        )
        if others_failed:
            return None
        following = campaign.steps[enrollment.next_step]
        lead = session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
        timezone = lead.timezone if lead is not None else None

        def resume(moment: datetime) -> dict[str, Any]:
            next_at = due_at(moment, following, campaign.window, timezone, self.scale)
            return {"b_enrollment_id": enrollment.id, "b_next_send_at": next_at}

        return resume

    def skip_reason(self, session: Session, delivery: Delivery) -> str | None:
        """Why a queued delivery must not leave any more (the lead left, or the address is blocked)."""
        lead = session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
        if delivery.lead_id is not None and (lead is None or lead.erased_at is not None):
            return "lead erased"
        # Staff mail about a lead (alerts, digests) is not mail to the lead: their unsubscribe does not stop it.
        staff_mail = delivery.kind in ("test", "intake_alert", "digest")
        if lead is not None and lead.unsubscribed_at is not None and not staff_mail:
            return "lead unsubscribed"
        enrollment = session.get(Enrollment, delivery.enrollment_id) if delivery.enrollment_id else None
        if enrollment is not None:
            if delivery.kind in ("confirmation", "reminder") and enrollment.state != "pending":
                return "already confirmed" if enrollment.state in ("active", "completed") else "enrollment ended"
            if delivery.kind == "nurture" and enrollment.state == "exited":
                return f"enrollment ended: {enrollment.exit_reason}"
        address = delivery.recipient or (lead.email if lead is not None else None)
        if address:
            suppressed = session.scalar(select(Suppression.reason).where(Suppression.email_hash == email_hash(address)))
            if suppressed is not None:
                return f"suppressed: {suppressed}"
        return None

    # -- the provider call ---------------------------------------------------------------------------------

    def send(self, job: Job) -> None:
        """Call the provider outside any transaction; its answer is stored with the next transaction."""
        delivery = job.delivery
        try:
            if job.message is None:
                raise RuntimeError("send() needs a composed message")
            provider_id = get_sender().send(job.message)
        except (AuthError, SettingError) as exc:
            # Nothing left: back to retrying without using up an attempt, and every worker pauses.
            self.record(delivery, state="retrying", error=str(exc), due=now(), attempts_delta=-1)
            if isinstance(exc, SettingError):
                self.pause_for_setting(exc)
            else:
                self.counts["auth_error"] += 1
                self.flush_outcomes()
                pause_provider(str(exc))
            raise Stop from None
        except TemporaryError as exc:
            self.record_temporary(delivery, exc)
            if exc.rate_limited:
                self.counts["rate_limited"] += 1
                self.flush_outcomes()
                raise Stop from None
            return
        except UncertainError as exc:
            self.record(delivery, state="unknown", error=str(exc), source=SOURCE_TRANSPORT)
            self.counts["unknown"] += 1
            log.warning("delivery %s: no answer from the provider; marked unknown, not resent", delivery.id)
            return
        except (PermanentError, SendError) as exc:
            self.record(delivery, state="failed", error=str(exc), source=SOURCE_PROVIDER)
            self.counts["failed"] += 1
            log.warning("delivery %s failed: %s", delivery.id, type(exc).__name__)
            return
        except Exception as exc:  # noqa: BLE001 - a sender that breaks unexpectedly may or may not have sent
            error = f"the sender failed unexpectedly: {type(exc).__name__}"
            self.record(delivery, state="unknown", error=error, source=SOURCE_TRANSPORT)
            self.counts["unknown"] += 1
            log.error("delivery %s: sender raised %s; marked unknown", delivery.id, type(exc).__name__)
            return
        provider_id = str(provider_id)[:128] if provider_id else None
        moment = now()
        sent = {"b_delivery_id": delivery.id, "b_moment": moment, "b_provider_id": provider_id}
        self.outcomes.append((record_sent, sent))
        if job.resume is not None:
            self.outcomes.append((resume_enrollment, job.resume(moment)))
        self.counts["sent"] += 1

    def record_temporary(self, delivery: Delivery | DeliveryRef, exc: TemporaryError) -> None:
        """Retry later (the provider's Retry-After, or backoff), or give up after NURTURE_MAX_ATTEMPTS."""
        attempts = delivery.attempts or 1
        if attempts >= self.max_attempts:
            source = SOURCE_PROVIDER if exc.answered else SOURCE_TRANSPORT
            self.record(delivery, state="failed", error=f"gave up after {attempts} attempts: {exc}", source=source)
            self.counts["failed"] += 1
            return
        wait = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(attempts)
        self.record(delivery, state="retrying", error=str(exc), due=now() + wait / self.scale)
        self.counts["retrying"] += 1

    def record(
        self,
        delivery: Delivery | DeliveryRef,
        *,
        state: str,
        error: str,
        source: str | None = None,
        due: datetime | None = None,
        attempts_delta: int = 0,
    ) -> None:
        """Hold a non-success outcome for the next transaction; it applies only while the delivery is ours.

        A failed campaign step also makes its lead's sequence wait (see the module docstring).
        """
        values: dict[str, Any] = {
            "state": state,
            "error": error[:2000],
            "error_source": source,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now(),
            "due_at": due,
        }
        if attempts_delta:
            values["attempts"] = deliveries.c.attempts + attempts_delta
        statement = (
            update(deliveries).where(deliveries.c.id == delivery.id, deliveries.c.state == "sending").values(**values)
        )
        self.outcomes.append((statement, {}))
        if state == "failed" and self.holds_sequence(delivery):
            self.outcomes.append((hold_enrollment, {"b_enrollment_id": delivery.enrollment_id}))

    # -- bookkeeping ---------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Record that this worker is alive, with the counts of this tick (one UPDATE in the usual case)."""
        moment = now()
        counts = json.dumps(dict(self.counts), sort_keys=True)
        with db.write_transaction() as session:
            updated = session.execute(
                update(WorkerHeartbeat)
                .where(WorkerHeartbeat.worker_id == self.worker_id)
                .values(beat_at=moment, last_tick=counts)
            ).rowcount
            if not updated:
                session.add(
                    WorkerHeartbeat(
                        worker_id=self.worker_id,
                        hostname=socket.gethostname()[:255],
                        pid=os.getpid(),
                        started_at=moment,
                        beat_at=moment,
                        last_tick=counts,
                    )
                )

    def run_tasks(self) -> None:
        """Other packages' periodic work (webhooks, digests), each isolated from the others."""
        for task in current_app.extensions.get("tick_tasks", []):
            name = getattr(task, "__qualname__", repr(task))
            try:
                task()
            except Exception as exc:  # noqa: BLE001 - one broken task must not stop the mail or the others
                db.session.rollback()
                self.counts["task_errors"] += 1
                log.error("tick task %s failed: %s", name, type(exc).__name__)


def describe(counts: dict[str, int]) -> str:
    """A tick's counts as `key=value` words, leaving out zeros ('' when nothing happened)."""
    return " ".join(f"{key}={value}" for key, value in sorted(counts.items()) if value)


def tick(worker_id: str | None = None, should_stop: Callable[[], bool] | None = None) -> dict[str, int]:
    """Run one pass in the current app context; returns its counts."""
    return Tick(worker_id, should_stop).run()
