"""One pass of the nurture worker: sweep, check the pause, send queued mail, send due steps, beat, run tasks.

The database is the source of truth. For a batch of due enrollments, one transaction checks exits and the
suppression list, records each step as a Delivery (unique dedupe_key; `pending`, leased to this worker) and
advances the enrollments. Then, per email, the message is composed first: an email that cannot be built fails
with the reason while still `pending` (it never reached a provider). Only then one transaction re-checks the
lead and the suppression list and moves the delivery to `sending` (storing the previous email's answer on the
way) *before* the provider is called, so no step can be sent twice; a worker that dies between that commit and
the provider's answer leaves the delivery `sending`, which the next sweep turns into `unknown` (never resent
automatically). Steps it recorded but never started stay `pending` and are sent by any worker once the lease is
over.

Pipelined sending (NURTURE_CONCURRENCY, default 8): up to that many provider calls are in flight at once. All
database work stays in the tick's own thread, on the store's one connection (SQLite has one writer anyway, and
answers are stored with the next transaction as before); a thread pool only makes the blocking HTTP calls. A
delivery becomes `sending` only when a slot is free for it, and the steps filling the free slots are re-checked
and marked in one UPDATE, committed just before their calls start on idle threads (milliseconds, never near a
second): so a worker killed mid-run leaves at most NURTURE_CONCURRENCY deliveries `sending` (later `unknown`).
The next emails are composed ahead while calls are out. Answers are read back in the tick's thread, so retries,
the provider pause and the setting pause behave as before; once one stops the tick, no new call starts and the
answers of the calls already out are still stored. NURTURE_CONCURRENCY=1 sends in the tick's thread, one at a
time, exactly as before.

When a campaign step fails for a lead, the lead's sequence waits: the enrollment keeps its place but has no next
send time, so no later step goes out as if it were the first; queueing the failed email again and sending it
starts the clock for the next step. A setting every email needs (mailer.health.setting_problems) pauses all
sending like a 401/403 instead of failing anything. Logs carry ids and counts only: never names, emails or
interests.

This module is the loop; the decisions are nurture.rules (pure) and the SQL is nurture.store.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from core.clock import now
from core.db import db
from mailer.base import Message, SettingError, composer_for, get_sender
from mailer.health import setting_problems
from mailer.ledger import pause_provider, provider_pause
from mailer.models import Delivery
from nurture.composers import compose_step, content_problem
from nurture.enrollment import time_scale
from nurture.rules import (
    SKIPPED_CONDITION,
    SOURCE_CONTENT,
    classify,
    dedupe_key,
    holds_sequence,
    next_state,
    skip_reason,
)
from nurture.rules import (
    position as step_position,
)
from nurture.schedule import due_at
from nurture.store import DeliveryRef, QueuedClaim, Store, worker_identity
from studio.definitions import Campaign, Step
from studio.registry import find_campaign, registry

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A recorded delivery to hand to the provider, with what its composer needs."""

    delivery: Delivery | DeliveryRef
    campaign: Campaign | None = None
    step: Step | None = None
    lead: Any = None  # a row of leads (id, email, first_name... are what composers read)
    message: Message | None = None  # composed before the delivery becomes `sending`
    # A queued-again campaign step whose sequence waits for it: (enrollment id, its next step's time) once sent.
    resume: Callable[[datetime], tuple[int, datetime]] | None = None


class Stop(Exception):
    """Stop sending for this tick (rate limit) or until an operator acts (auth, a setting)."""


class Tick:
    """One pass; counts what happened so the worker can log a single line."""

    def __init__(self, worker_id: str | None = None, should_stop: Callable[[], bool] | None = None) -> None:
        config = current_app.config
        self.worker_id = worker_id or worker_identity()
        self.should_stop = should_stop or (lambda: False)
        self.counts: Counter[str] = Counter()
        self.batch_size = int(config.get("NURTURE_BATCH_SIZE", 100))
        self.max_attempts = int(config.get("NURTURE_MAX_ATTEMPTS", 5))
        self.scale = time_scale()
        lease = timedelta(seconds=int(config.get("NURTURE_LEASE_SECONDS", 120)))
        self.store = Store(self.worker_id, lease, self.batch_size)
        self.concurrency = max(1, int(config.get("NURTURE_CONCURRENCY", 8)))
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]  # for the pool's threads
        self.pool: ThreadPoolExecutor | None = None
        self.in_flight: dict[Future[str | None], Job] = {}

    def run(self) -> dict[str, int]:
        """Sweep, send queued mail, send due steps, beat, run the registered tick tasks."""
        try:
            self.sweep()
            if self.paused():
                self.counts["provider_paused"] = 1
            else:
                try:
                    self.send_queued()
                    self.send_due_steps()
                except Stop:
                    pass
                finally:
                    self.land()
        finally:
            db.session.rollback()
            self.close()
        self.store.heartbeat(now(), dict(self.counts))
        self.run_tasks()
        return {key: value for key, value in self.counts.items() if value}

    # -- before sending ------------------------------------------------------------------------------------

    def sweep(self) -> None:
        """Deliveries whose sender vanished mid-send become `unknown`: never resent automatically."""
        stale = self.store.sweep(now())
        if stale:
            self.counts["unknown"] += stale
            log.warning("%d delivery(ies) marked unknown after their worker stopped mid-send", stale)

    def paused(self) -> bool:
        """Whether sending is paused (a 401/403, a setting); a setting every email needs that is wrong pauses it."""
        pause = provider_pause(db.session)
        db.session.commit()
        if pause is not None:
            return True
        problems = setting_problems(current_app.config)
        if problems:
            self.pause_for_setting(problems[0])
        return bool(problems)

    def pause_for_setting(self, exc: SettingError) -> None:
        """Pause every worker's sending until the setting is fixed and sending resumed; nothing is marked failed."""
        self.counts["setting_error"] += 1
        self.store.flush()
        pause_provider(str(exc), exc.setting)

    # -- confirmations, reminders, retries, staff mail -----------------------------------------------------

    def send_queued(self) -> None:
        """Pending and retrying deliveries of any kind whose time has come, claimed one by one as a slot frees."""
        while not self.should_stop():
            rows = self.store.queued(now())
            for delivery_id, state in rows:
                # The claim is the re-check: taken only once a call can start at once.
                self.make_room()
                job = self.claim(delivery_id, state)
                if job is not None:
                    self.submit(job)
            if len(rows) < self.batch_size:
                return

    def claim(self, delivery_id: int, state: str) -> Job | None:
        """Claim a queued delivery, re-check who it goes to, compose it: all in the claiming transaction.

        An email that cannot be built fails in that same transaction, so it is never seen as `sending` (never in
        the "may have been sent" window). A wrong setting rolls the claim back (it stays due) and pauses sending.
        """
        try:
            with self.store.claim_queued(delivery_id, state, now()) as claim:
                if claim is None:
                    return None
                delivery = claim.delivery
                reason = skip_reason(delivery, claim.lead, claim.enrollment, claim.suppressed)
                if reason:
                    self.store.settle_unsent(claim, "skipped", reason, None, hold=False)
                    self.counts["skipped"] += 1
                    return None
                job = Job(delivery)
                problem = self.compose_queued(job)
                holds = holds_sequence(delivery.kind, delivery.enrollment_id)
                if problem is not None:
                    self.store.settle_unsent(claim, "failed", problem, SOURCE_CONTENT, hold=holds)
                    self.counts["failed"] += 1
                    log.warning("delivery %s failed: the email could not be built", delivery_id)
                    return None
                job.resume = self.resume_after(claim) if holds else None
                return job
        except SettingError as exc:
            self.pause_for_setting(exc)
            raise Stop from None

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
            return content_problem(job.delivery, exc)
        return None

    def resume_after(self, claim: QueuedClaim) -> Callable[[datetime], tuple[int, datetime]] | None:
        """For a queued-again step whose sequence waits for it: when its next step is due, once it is sent."""
        enrollment = self.store.sequence_waiting(claim)
        campaign = registry().get(enrollment.campaign_slug) if enrollment is not None else None
        if campaign is None or step_position(enrollment, campaign) >= len(campaign.steps):
            return None
        following, enrollment_id = campaign.steps[step_position(enrollment, campaign)], enrollment.id
        timezone = claim.lead.timezone if claim.lead is not None else None
        return lambda moment: (enrollment_id, due_at(moment, following, campaign.window, timezone, self.scale))

    # -- campaign steps ------------------------------------------------------------------------------------

    def send_due_steps(self) -> None:
        """Record a batch of due steps at once, send them as slots free; until nothing is due or a stop is asked."""
        while not self.should_stop():
            jobs, claimed = self.record_batch()
            self.counts["claimed"] += claimed
            waiting, ready = deque(jobs), deque()
            try:
                while waiting or ready:
                    # Composed while still `pending` (an email that cannot be built never reaches `sending`), a
                    # window ahead: that work overlaps the calls in flight.
                    while waiting and len(ready) < self.concurrency:
                        job = waiting.popleft()
                        if self.compose_step(job):
                            ready.append(job)
                    self.make_room()
                    self.start_group([ready.popleft() for _ in range(min(self.free, len(ready)))])
            except Stop:
                # Whatever never started (the UPDATE only touches our own pending rows; the rest are settled).
                self.store.release([job.delivery.id for job in jobs])
                raise
            self.store.flush()
            if claimed < self.batch_size:
                return

    def record_batch(self) -> tuple[list[Job], int]:
        """In one transaction for a batch of due enrollments: check exits, record deliveries, advance each one.

        The deliveries are recorded `pending` and leased to this worker; each becomes `sending` only in start(),
        just before its provider call. A worker that dies here leaves them pending, and once the lease is over any
        worker sends them as queued mail (they were never handed to the provider).
        """
        moment = now()
        planned = []
        with self.store.due_batch(moment) as batch:
            if batch is None:
                return [], 0
            changes, ended_elsewhere, records = [], [], []
            for row in batch.rows:
                if row.state != "active":
                    # Ended elsewhere without clearing its due time: clear it so it is never claimed again.
                    ended_elsewhere.append(row.id)
                    continue
                lead = batch.leads.get(row.lead_id)
                campaign = find_campaign(row.campaign_slug)
                advance = next_state(row, lead, campaign, batch.suppression_of(row.lead_id), moment, self.scale)
                changes.append(advance.values)
                if advance.exited:
                    self.counts["exited"] += 1
                    log.info("enrollment %s exited (%s)", row.id, advance.exited.split(":")[0])
                if advance.completed:
                    self.counts["completed"] += 1
                step = advance.step
                if step is None:
                    continue
                if not step.applies_to(lead.interest):
                    records.append(self.store.delivery_values(row, step.id, "skipped", moment, SKIPPED_CONDITION))
                    self.counts["skipped"] += 1
                else:
                    records.append(
                        self.store.delivery_values(row, step.id, "pending", moment, None, step.variant_for(row.id))
                    )
                    planned.append((row, campaign, step, lead))
            self.store.record(batch, changes, records, ended_elsewhere)
        jobs = []
        for row, campaign, step, lead in planned:
            delivery_id = batch.recorded.get(dedupe_key(row.id, step.id))
            if delivery_id is None:
                # Already recorded by someone else: never send it again.
                self.counts["duplicate"] += 1
                continue
            ref = DeliveryRef(delivery_id, row.id, lead.email, batch.hashes[lead.id])
            # The lead's A/B variant of the step (the same one a retry reads back from the delivery row).
            jobs.append(Job(ref, campaign, step.as_variant(step.variant_for(row.id)), lead))
        return jobs, len(batch.rows)

    def compose_step(self, job: Job) -> bool:
        """Compose a step recorded in this tick; when it cannot be built, fail it with the reason (never sent)."""
        try:
            job.message = compose_step(job.campaign, job.step, job.lead, job.delivery)
        except SettingError as exc:
            self.pause_for_setting(exc)
            raise Stop from None
        except Exception as exc:  # noqa: BLE001 - whatever breaks while building, nothing was sent
            problem = content_problem(job.delivery, exc, job.campaign, job.step)
            self.store.hold_unsent_failure(job.delivery, problem, now(), holds=True)
            self.counts["failed"] += 1
            log.warning("delivery %s failed: the email could not be built (%s)", job.delivery.id, type(exc).__name__)
            return False
        return True

    def start_group(self, group: list[Job]) -> None:
        """pending -> sending for the steps that fill the free slots, one statement per group, then their calls.

        The re-check and the mark are one UPDATE for the whole group, committed just before the group's calls are
        handed to threads that are idle, so no email leaves more than a moment after its re-check.
        """
        if len(group) <= 1:
            for job in group:
                if self.start(job):
                    self.submit(job)
            return
        moment = now()
        by_exits: dict[frozenset[str], list[Job]] = {}
        for job in group:
            by_exits.setdefault(frozenset(job.campaign.exit_statuses), []).append(job)
        for statuses, jobs in by_exits.items():
            started = self.store.start_sending_many([job.delivery for job in jobs], statuses, moment)
            for job in jobs:
                if job.delivery.id in started:
                    self.submit(job)
                else:
                    self.refused(job, moment)

    def start(self, job: Job) -> bool:
        """pending -> sending (the re-check before the send); when refused, the step is skipped and the lead exits."""
        moment = now()
        statuses = frozenset(job.campaign.exit_statuses)
        if self.store.start_sending(job.delivery, job.lead.id, statuses, moment):
            return True
        self.refused(job, moment)
        return False

    def refused(self, job: Job, moment: datetime) -> None:
        """The re-check refused a recorded step: it is skipped and the lead exits (or someone else settled it)."""
        reason = self.store.refused_start(job.delivery, job.lead.id, job.campaign, moment)
        if reason is None:
            # Someone else settled it (an unsubscribe skipped it, or our lease ran out and a worker took it).
            self.counts["lost_lease"] += 1
        else:
            self.counts["exited"] += 1
            log.info("enrollment %s exited before sending (%s)", job.delivery.enrollment_id, reason.split(":")[0])

    # -- the provider call ---------------------------------------------------------------------------------

    @property
    def free(self) -> int:
        """How many more calls may start now."""
        return self.concurrency - len(self.in_flight)

    def submit(self, job: Job) -> None:
        """Hand a `sending` delivery to the provider: here and now at concurrency 1, else on an idle pool thread."""
        if self.concurrency == 1:
            self.send(job)
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="nurture-send")
        self.in_flight[self.pool.submit(self.call, job)] = job

    def call(self, job: Job) -> str | None:
        """The provider call alone (in a pool thread, with an app context of its own); no database work here."""
        if job.message is None:
            raise RuntimeError("send() needs a composed message")
        with self.app.app_context():
            return get_sender().send(job.message)

    def make_room(self) -> None:
        """Store the answers of calls that finished; while every slot is busy, wait for one to finish."""
        if self.in_flight:
            self.collect(block=self.free <= 0)

    def collect(self, block: bool) -> None:
        """Hold the answers of the finished calls (waiting for the first one when `block`); Stop if one says so."""
        done, _ = wait(self.in_flight, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        stop = False
        for future in done:
            job = self.in_flight.pop(future)
            try:
                try:
                    provider_id = future.result()
                except Exception as exc:  # noqa: BLE001 - every failure is classified; an unexpected one may have sent
                    self.failed_send(job, exc)
                else:
                    self.sent(job, provider_id)
            except Stop:
                stop = True  # the other finished calls' answers are held all the same
        if stop:
            raise Stop

    def land(self) -> None:
        """Wait for every call still in flight and hold its answer: they all left, whatever stopped the tick."""
        while self.in_flight:
            with contextlib.suppress(Stop):
                self.collect(block=True)

    def send(self, job: Job) -> None:
        """Call the provider outside any transaction; its answer is stored with the store's next transaction."""
        try:
            if job.message is None:
                raise RuntimeError("send() needs a composed message")
            provider_id = get_sender().send(job.message)
        except Exception as exc:  # noqa: BLE001 - every failure is classified; an unexpected one may have sent
            self.failed_send(job, exc)
            return
        self.sent(job, provider_id)

    def sent(self, job: Job, provider_id: str | None) -> None:
        """The provider accepted it: held for the next transaction, with the sequence's resumption if it waited."""
        delivery = job.delivery
        moment = now()
        self.store.hold_sent(delivery.id, moment, str(provider_id)[:128] if provider_id else None)
        if job.resume is not None:
            self.store.hold_resume(*job.resume(moment))
        self.counts["sent"] += 1

    def failed_send(self, job: Job, exc: Exception) -> None:
        """Hold what the failure makes of the delivery; pause or stop the tick when the failure says so."""
        delivery, moment = job.delivery, now()
        outcome = classify(exc, delivery.attempts or 1, self.max_attempts, moment, self.scale)
        holds = holds_sequence(getattr(delivery, "kind", "nurture"), delivery.enrollment_id)
        self.store.hold_outcome(delivery.id, delivery.enrollment_id, outcome, moment, holds)
        self.counts.update(outcome.counts)
        if outcome.state in ("failed", "unknown"):
            log.warning("delivery %s %s: %s", delivery.id, outcome.state, type(exc).__name__)
        if outcome.pause == "setting":
            self.pause_for_setting(exc)
        elif outcome.pause == "auth":
            self.store.flush()
            pause_provider(str(exc))
        elif outcome.stop:
            self.store.flush()
        if outcome.stop:
            raise Stop

    # -- after sending -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Store what is held and give the tick's connection and threads back."""
        try:
            self.store.flush()
        except Exception as exc:  # noqa: BLE001 - unstored answers only leave deliveries `unknown`, never resent
            log.error("could not store %d provider answer(s): %s", self.store.holding, type(exc).__name__)
        finally:
            self.store.close()
            if self.pool is not None:
                self.pool.shutdown(wait=True)
                self.pool = None

    def run_tasks(self) -> None:
        """Other packages' periodic work (webhooks, digests), registered in app.extensions, each isolated."""
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
