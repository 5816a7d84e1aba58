"""All SQL of the nurture engine, per database: claiming due work, recording it, the re-check before each send,
storing the provider's answers, sweeping and releasing, and the heartbeat.

The loop (nurture.dispatch) decides with the pure rules (nurture.rules); this store reads and writes. The hot
statements work on the tables (Core), built once: no ORM objects or statement building per email. One
connection is kept for the whole tick (no pool checkout, ping and reset per email: on PostgreSQL those round
trips cost more than the transaction itself). Provider answers are held here, privately, and written with the
store's next transaction on that connection or by flush(); never by a transaction of anyone else.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Update, bindparam, case, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import db
from leads.models import Lead
from mailer.models import Delivery, Suppression, email_hash
from nurture.models import CampaignState, Enrollment, WorkerHeartbeat
from nurture.rules import SOURCE_CONTENT, SOURCE_TRANSPORT, UNKNOWN_REASON, Outcome, dedupe_key, exit_reason
from studio.registry import registry

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
        last_step_id=bindparam("b_last_step_id"),
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


@functools.cache
def start_steps(exit_statuses: frozenset[str], count: int) -> Update:
    """pending -> sending for `count` deliveries at once, each re-checked as start_step does; RETURNING the started.

    The address each email was composed for is matched per row (a CASE on the delivery id), so one statement
    re-checks a whole group. Built once per group size and set of exit statuses.
    """
    ids = [bindparam(f"b_id_{n}") for n in range(count)]

    def per_row(name: str, column: Any) -> Any:
        return case(*((deliveries.c.id == ids[n], bindparam(f"b_{name}_{n}", type_=column.type)) for n in range(count)))

    return (
        update(deliveries)
        .where(
            deliveries.c.id.in_(ids),
            deliveries.c.state == "pending",
            deliveries.c.lease_owner == bindparam("b_worker"),
            exists().where(
                leads.c.id == deliveries.c.lead_id,
                leads.c.email == per_row("email", leads.c.email),
                leads.c.erased_at.is_(None),
                leads.c.unsubscribed_at.is_(None),
                *(leads.c.status != status for status in sorted(exit_statuses)),
            ),
            ~exists().where(suppressions.c.email_hash == per_row("hash", suppressions.c.email_hash)),
            ~exists().where(enrollments.c.id == deliveries.c.enrollment_id, enrollments.c.state == "exited"),
        )
        .values(state="sending", attempts=1, lease_until=bindparam("b_lease_until"), updated_at=bindparam("b_moment"))
        .returning(deliveries.c.id)
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


@functools.cache
def record_sent_many(count: int) -> Any:
    """`count` successes as one UPDATE (per-row time and provider id by CASE on the id), to ride along as a CTE."""
    ids = [bindparam(f"s_id_{n}") for n in range(count)]

    def per_row(name: str, column: Any) -> Any:
        return case(*((deliveries.c.id == ids[n], bindparam(f"s_{name}_{n}", type_=column.type)) for n in range(count)))

    moment = per_row("moment", deliveries.c.sent_at)
    return (
        update(deliveries)
        .where(deliveries.c.id.in_(ids), or_(deliveries.c.state == "sending", deliveries.c.state == "unknown"))
        .values(
            state="sent",
            sent_at=moment,
            error=None,
            error_source=None,
            lease_owner=None,
            lease_until=None,
            updated_at=moment,
            provider_message_id=func.coalesce(
                deliveries.c.provider_message_id, per_row("provider_id", deliveries.c.provider_message_id)
            ),
        )
        .returning(deliveries.c.id)
        .cte("sent_many")
    )


@functools.cache
def start_after_sent_many(start: Update, count: int) -> Update:
    """PostgreSQL: the held successes and a start (one email or a group) in a single statement."""
    return start.add_cte(record_sent_many(count))


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


def _runs(held: list[tuple[Any, dict[str, Any]]]) -> list[tuple[Any, Any]]:
    """Consecutive held writes of the same statement as one executemany (one round trip on psycopg 3)."""
    runs: list[tuple[Any, list[dict[str, Any]]]] = []
    for statement, params in held:
        if params and runs and runs[-1][0] is statement and runs[-1][1]:
            runs[-1][1].append(params)
        else:
            runs.append((statement, [params] if params else []))
    return [(statement, many if len(many) > 1 else (many[0] if many else {})) for statement, many in runs]


def worker_identity() -> str:
    """A name unique to this process: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
class Batch:
    """Due enrollments claimed in one write transaction, with their leads and the suppression list's reasons."""

    connection: Connection
    rows: list[Row]
    leads: dict[int, Row]
    hashes: dict[int, str]
    suppressed: dict[str, str]
    # Filled by record(): {dedupe_key: id} of the deliveries this batch added.
    recorded: dict[str, int] = field(default_factory=dict)

    def suppression_of(self, lead_id: int) -> str | None:
        """The suppression list's reason for this lead's address, if it is on it."""
        return self.suppressed.get(self.hashes.get(lead_id))


@dataclass
class QueuedClaim:
    """A queued delivery claimed (now `sending`, ours) inside a transaction that is still open."""

    session: Session
    delivery: Delivery
    lead: Lead | None
    enrollment: Enrollment | None
    suppressed: str | None


class Store:
    """The SQL of one tick, on one connection; holds provider answers until the next write or flush()."""

    def __init__(self, worker_id: str, lease: timedelta, batch_size: int) -> None:
        self.worker_id = worker_id
        self.lease = lease
        self.batch_size = batch_size
        self.postgres = db.engine.dialect.name == "postgresql"
        self._held: list[tuple[Any, dict[str, Any]]] = []
        self._connection: Connection | None = None
        self._autocommit: Connection | None = None  # PostgreSQL's one-statement path (_start_in_one_trip)

    # -- the connection and the held answers ---------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction on the tick's connection that first stores the provider answers still held."""
        if self._connection is None:
            self._connection = db.engine.connect().execution_options(sqlite_immediate=True)
        held = list(self._held)
        with self._connection.begin():
            for statement, params in _runs(held):
                self._connection.execute(statement, params)
            yield self._connection
        # Only once committed: answers lost to a rollback are tried again with the next transaction.
        del self._held[: len(held)]

    @property
    def holding(self) -> int:
        """How many provider answers wait to be written."""
        return len(self._held)

    def flush(self) -> None:
        """Store the held provider answers now (end of a batch, before other writes, end of the tick)."""
        if self._held:
            with self._write():
                pass

    def close(self) -> None:
        """Give the tick's connections back (call flush() first: what is still held is dropped)."""
        for connection in (self._connection, self._autocommit):
            if connection is not None:
                connection.close()
        self._connection = self._autocommit = None

    # -- sweeping and pauses -------------------------------------------------------------------------------

    def sweep(self, moment: datetime) -> int:
        """Deliveries whose sender vanished mid-send become `unknown` (never resent automatically); how many."""
        stale = select(Delivery.id).where(Delivery.state == "sending", Delivery.lease_until < moment).limit(1)
        found = db.session.scalar(stale)
        db.session.commit()
        if found is None:  # the usual case: no write lock taken
            return 0
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
        return result.rowcount

    # -- campaign steps ------------------------------------------------------------------------------------

    def _due_query(self, moment: datetime) -> Any:
        """Due enrollments, oldest first; the index on next_send_at keeps this proportional to what is due."""
        paused = list(db.session.scalars(select(CampaignState.slug).where(CampaignState.paused.is_(True))))
        paused += registry().archived_slugs()  # archiving a campaign stops its sequences as pausing does
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
            enrollments.c.last_step_id,
        ).where(
            enrollments.c.next_send_at <= moment,
            or_(enrollments.c.lease_until.is_(None), enrollments.c.lease_until < moment),
        )
        if paused:
            query = query.where(enrollments.c.campaign_slug.not_in(paused))
        return query.order_by(enrollments.c.next_send_at).limit(self.batch_size)

    @contextlib.contextmanager
    def due_batch(self, moment: datetime) -> Iterator[Batch | None]:
        """Claim a batch of due enrollments in one write transaction (SKIP LOCKED on PostgreSQL); None if none.

        The caller decides what to record and calls record() before the block ends, which commits.
        """
        query = self._due_query(moment)
        # Look before locking: an idle tick never takes SQLite's write lock.
        anything = db.session.scalar(query.with_only_columns(enrollments.c.id).limit(1))
        db.session.commit()
        if anything is None:
            yield None
            return
        with self._write() as connection:
            if self.postgres:
                query = query.with_for_update(skip_locked=True)
            rows = connection.execute(query).all()
            if not rows:
                yield None
                return
            lead_ids = {row.lead_id for row in rows}
            found = {lead.id: lead for lead in connection.execute(select(leads).where(leads.c.id.in_(lead_ids)))}
            hashes = {lead.id: email_hash(lead.email) for lead in found.values() if lead.email}
            suppressed = dict(
                connection.execute(
                    select(suppressions.c.email_hash, suppressions.c.reason).where(
                        suppressions.c.email_hash.in_(set(hashes.values()))
                    )
                ).all()
            )
            yield Batch(connection, rows, found, hashes, suppressed)

    def record(
        self,
        batch: Batch,
        changes: list[dict[str, Any]],
        records: list[dict[str, Any]],
        ended_elsewhere: list[int],
    ) -> None:
        """Inside due_batch: insert the deliveries (ON CONFLICT DO NOTHING on the dedupe key) and move every
        enrollment on (one executemany); clear the due time of enrollments that ended elsewhere."""
        connection = batch.connection
        if records:
            dialect = postgresql if self.postgres else sqlite
            stmt = (
                dialect.insert(deliveries)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(deliveries.c.dedupe_key, deliveries.c.id)
            )
            batch.recorded = dict(connection.execute(stmt, records).all())
        if changes:
            connection.execute(advance_enrollment, changes)
        if ended_elsewhere:
            connection.execute(
                update(enrollments)
                .where(enrollments.c.id.in_(ended_elsewhere))
                .values(next_send_at=None, lease_owner=None, lease_until=None)
            )

    def delivery_values(
        self, row: Row, step_id: str, state: str, moment: datetime, error: str | None, variant: str | None = None
    ) -> dict[str, Any]:
        """The delivery row recording a step; `pending` ones are leased to this worker until they are sent."""
        leased = state == "pending"
        return {
            "dedupe_key": dedupe_key(row.id, step_id),
            "kind": "nurture",
            "lead_id": row.lead_id,
            "enrollment_id": row.id,
            "campaign_slug": row.campaign_slug,
            "step_id": step_id,
            "variant": variant,
            "state": state,
            "due_at": row.next_send_at,
            "error": error,
            "attempts": 0,
            "lease_owner": self.worker_id if leased else None,
            "lease_until": moment + self.lease if leased else None,
            "created_at": moment,
            "updated_at": moment,
        }

    def start_sending(self, ref: DeliveryRef, lead_id: int, exit_statuses: frozenset[str], moment: datetime) -> bool:
        """pending -> sending just before the provider call, re-checking exits and suppression in the same UPDATE.

        The previous email's success, held since its answer, is stored in the same transaction.
        """
        params = {
            "b_delivery_id": ref.id,
            "b_worker": self.worker_id,
            "b_lease_until": moment + self.lease,
            "b_moment": moment,
            "b_enrollment_id": ref.enrollment_id,
            "b_lead_id": lead_id,
            "b_email": ref.lead_email,
            "b_email_hash": ref.email_hash,
        }
        if self._one_trip_possible():
            if len(self._held) <= 1:
                return self._start_in_one_trip(exit_statuses, params)
            return self._autocommit_with_held(start_step(exit_statuses), params).rowcount == 1
        with self._write() as connection:
            return connection.execute(start_step(exit_statuses), params).rowcount == 1

    def start_sending_many(self, refs: list[DeliveryRef], exit_statuses: frozenset[str], moment: datetime) -> set[int]:
        """pending -> sending for a group of deliveries in one UPDATE (with the held answers' transaction); the
        ids it started. Each row gets the same re-check as start_sending()."""
        params: dict[str, Any] = {"b_worker": self.worker_id, "b_lease_until": moment + self.lease, "b_moment": moment}
        for n, ref in enumerate(refs):
            params |= {f"b_id_{n}": ref.id, f"b_email_{n}": ref.lead_email, f"b_hash_{n}": ref.email_hash}
        if self._one_trip_possible():
            return set(self._autocommit_with_held(start_steps(exit_statuses, len(refs)), params).scalars())
        with self._write() as connection:
            return set(connection.scalars(start_steps(exit_statuses, len(refs)), params))

    def _one_trip_possible(self) -> bool:
        """PostgreSQL, and nothing held but successes (a few): the start can carry them in one statement."""
        return self.postgres and len(self._held) <= 16 and all(stmt is record_sent for stmt, _ in self._held)

    def _autocommit_with_held(self, start: Update, params: dict[str, Any]) -> Any:
        """PostgreSQL: one autocommitted statement stores every held success and runs `start` (atomic, one trip)."""
        if self._autocommit is None:
            self._autocommit = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        held = list(self._held)
        statement = start
        if held:
            statement = start_after_sent_many(start, len(held))
            params = dict(params)
            for n, (_, sent) in enumerate(held):
                params |= {
                    f"s_id_{n}": sent["b_delivery_id"],
                    f"s_moment_{n}": sent["b_moment"],
                    f"s_provider_id_{n}": sent["b_provider_id"],
                }
        result = self._autocommit.execute(statement, params)
        del self._held[: len(held)]
        return result

    def _start_in_one_trip(self, exit_statuses: frozenset[str], params: dict[str, Any]) -> bool:
        """PostgreSQL: one autocommitted statement stores the held success (if any) and starts this email.

        A single statement is atomic, so this is the same transaction as the general path, without the
        BEGIN and COMMIT round trips that cost more than the work on a busy host.
        """
        if self._autocommit is None:
            self._autocommit = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        held = list(self._held)
        if held:
            sent = held[0][1]
            statement = start_step_after_sent(exit_statuses)
            params = params | {
                "b_sent_id": sent["b_delivery_id"],
                "b_sent_moment": sent["b_moment"],
                "b_sent_provider_id": sent["b_provider_id"],
            }
        else:
            statement = start_step(exit_statuses)
        started = self._autocommit.execute(statement, params).rowcount
        del self._held[: len(held)]
        return started == 1

    def refused_start(self, ref: DeliveryRef, lead_id: int, campaign: Any, moment: datetime) -> str | None:
        """The re-check refused a recorded step (rare): skip it and end the enrollment with the reason (returned).

        None when someone else settled it meanwhile (an unsubscribe skipped it, or our lease ran out).
        """
        with self._write() as connection:
            state = connection.scalar(select(deliveries.c.state).where(deliveries.c.id == ref.id))
            if state != "pending":
                return None
            lead = connection.execute(select(leads).where(leads.c.id == lead_id)).first()
            hashed = email_hash(lead.email) if lead is not None and lead.email else None
            suppressed = connection.scalar(select(suppressions.c.reason).where(suppressions.c.email_hash == hashed))
            reason = exit_reason(lead, campaign, suppressed)
            if reason is None and lead is not None and lead.email != ref.lead_email:
                reason = "the address changed before sending"
            reason = reason or "enrollment ended"
            connection.execute(
                update(deliveries)
                .where(deliveries.c.id == ref.id, deliveries.c.state == "pending")
                .values(
                    state="skipped",
                    error=reason,
                    error_source=None,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=moment,
                )
            )
            connection.execute(
                update(enrollments)
                .where(enrollments.c.id == ref.enrollment_id, enrollments.c.state != "exited")
                .values(state="exited", exit_reason=reason[:64], next_send_at=None, ended_at=moment)
            )
        return reason

    def release(self, ids: list[int]) -> None:
        """Give back recorded steps this tick will not send: they stay pending, for any worker's next tick."""
        if ids:
            with self._write() as connection:
                connection.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id.in_(ids),
                        deliveries.c.state == "pending",
                        deliveries.c.lease_owner == self.worker_id,
                    )
                    .values(lease_owner=None, lease_until=None)
                )

    # -- held outcomes -------------------------------------------------------------------------------------

    def hold_sent(self, delivery_id: int, moment: datetime, provider_id: str | None) -> None:
        """The provider accepted it: written with the next transaction."""
        values = {"b_delivery_id": delivery_id, "b_moment": moment, "b_provider_id": provider_id}
        self._held.append((record_sent, values))

    def hold_resume(self, enrollment_id: int, next_send_at: datetime) -> None:
        """A queued-again step that held its sequence was sent: its next step becomes due then."""
        self._held.append((resume_enrollment, {"b_enrollment_id": enrollment_id, "b_next_send_at": next_send_at}))

    def hold_unsent_failure(self, ref: DeliveryRef, error: str, moment: datetime, holds: bool) -> None:
        """A step recorded in this tick whose email cannot be built: failed, never sent; its sequence waits."""
        values = {"b_delivery_id": ref.id, "b_worker": self.worker_id, "b_error": error[:2000], "b_moment": moment}
        self._held.append((fail_unsent_step, values))
        if holds:
            self._held.append((hold_enrollment, {"b_enrollment_id": ref.enrollment_id}))

    def hold_outcome(
        self, delivery_id: int, enrollment_id: int | None, outcome: Outcome, moment: datetime, holds: bool
    ) -> None:
        """A non-success outcome, applied only while the delivery is still ours (`sending`)."""
        values: dict[str, Any] = {
            "state": outcome.state,
            "error": outcome.error[:2000],
            "error_source": outcome.source,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": moment,
            "due_at": outcome.due,
        }
        if outcome.attempts_delta:
            values["attempts"] = deliveries.c.attempts + outcome.attempts_delta
        statement = (
            update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.state == "sending").values(**values)
        )
        self._held.append((statement, {}))
        if outcome.state == "failed" and holds:
            self._held.append((hold_enrollment, {"b_enrollment_id": enrollment_id}))

    # -- queued mail (confirmations, reminders, retries, staff mail) ---------------------------------------

    def queued(self, moment: datetime) -> list[tuple[int, str]]:
        """(id, state) of pending and retrying deliveries whose time has come, oldest first."""
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
        return [(delivery_id, state) for delivery_id, state in rows]

    @contextlib.contextmanager
    def claim_queued(self, delivery_id: int, state: str, moment: datetime) -> Iterator[QueuedClaim | None]:
        """pending/retrying -> sending in one transaction, only if nobody else got there first (None then).

        The transaction stays open for the caller's block: what it settles (skipped, failed) commits with the
        claim, so a delivery that never leaves is never seen as `sending`; an exception rolls the claim back.
        """
        self.flush()
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
                yield None
                return
            delivery = session.get(Delivery, delivery_id, populate_existing=True)
            lead = session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
            enrollment = session.get(Enrollment, delivery.enrollment_id) if delivery.enrollment_id else None
            address = delivery.recipient or (lead.email if lead is not None else None)
            suppressed = None
            if address:
                suppressed = session.scalar(
                    select(Suppression.reason).where(Suppression.email_hash == email_hash(address))
                )
            yield QueuedClaim(session, delivery, lead, enrollment, suppressed)

    @staticmethod
    def settle_unsent(claim: QueuedClaim, state: str, reason: str, source: str | None, hold: bool) -> None:
        """End a claimed delivery that was never handed to a provider (the claim's attempt is given back)."""
        delivery = claim.delivery
        delivery.state, delivery.error, delivery.error_source = state, reason[:2000], source
        delivery.lease_owner = delivery.lease_until = None
        delivery.attempts -= 1
        if hold:
            claim.session.execute(hold_enrollment, {"b_enrollment_id": delivery.enrollment_id})

    @staticmethod
    def sequence_waiting(claim: QueuedClaim) -> Enrollment | None:
        """The active enrollment whose sequence waits for this queued-again step and no other failed email of it."""
        enrollment = claim.enrollment
        if enrollment is None or enrollment.state != "active" or enrollment.next_send_at is not None:
            return None
        others_failed = claim.session.scalar(
            select(func.count()).where(
                deliveries.c.enrollment_id == enrollment.id,
                deliveries.c.state == "failed",
                deliveries.c.id != claim.delivery.id,
            )
        )
        return None if others_failed else enrollment

    # -- bookkeeping ---------------------------------------------------------------------------------------

    def heartbeat(self, moment: datetime, counts: dict[str, int]) -> None:
        """Record that this worker is alive, with the counts of this tick (one UPDATE in the usual case)."""
        last_tick = json.dumps(counts, sort_keys=True)
        with db.write_transaction() as session:
            updated = session.execute(
                update(WorkerHeartbeat)
                .where(WorkerHeartbeat.worker_id == self.worker_id)
                .values(beat_at=moment, last_tick=last_tick)
            ).rowcount
            if not updated:
                session.add(
                    WorkerHeartbeat(
                        worker_id=self.worker_id,
                        hostname=socket.gethostname()[:255],
                        pid=os.getpid(),
                        started_at=moment,
                        beat_at=moment,
                        last_tick=last_tick,
                    )
                )
