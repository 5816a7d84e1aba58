"""`flask nurture run`: the worker process. The only module that imports APScheduler."""

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.base import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from core.db import db
from mailer.wake import Listener
from nurture.dispatch import describe, tick
from nurture.store import worker_identity

log = logging.getLogger(__name__)
# Idle ticks are not logged; this often a line says the worker is still there.
HEARTBEAT_LOG_SECONDS = 300.0


class _SkipOverlapNotice(logging.Filter):
    """Drop APScheduler's warning that a run was skipped because the last tick is still busy.

    With max_instances=1 that is the intended behaviour (a long tick keeps working through the backlog),
    so repeating it every interval would only bury real warnings.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the overlap notice."""
        return "maximum number of running instances reached" not in record.getMessage()


class TickLog:
    """One line per tick that did something; while idle (or paused), one heartbeat line every few minutes."""

    def __init__(self, every: float = HEARTBEAT_LOG_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.last_line = clock()
        self.quiet_ticks = 0

    def tick(self, counts: dict[str, int]) -> None:
        """Log what this tick did, or count it as quiet and say once in a while that the worker is alive."""
        paused = counts.get("provider_paused", 0)
        done = describe({key: value for key, value in counts.items() if key != "provider_paused"})
        if done:
            log.info("tick %s", done)
            self.last_line, self.quiet_ticks = self.clock(), 0
            return
        self.quiet_ticks += 1
        if self.clock() - self.last_line >= self.every:
            state = "sending is PAUSED (see /healthz or the dashboard)" if paused else "nothing was due"
            log.info("worker alive: %d tick(s) since the last line, %s", self.quiet_ticks, state)
            self.last_line, self.quiet_ticks = self.clock(), 0


def _in_context(app: Flask, job_id: str, work: Callable[[], object]) -> Callable[[], None]:
    """A registered job run in an app context; its failure is logged and the next run tries again."""

    def run() -> None:
        with app.app_context():
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - the worker outlives one failed run (database restart...)
                log.error("job %s failed: %s", job_id, type(exc).__name__)

    return run


def _every(
    scheduler: BlockingScheduler, work: Callable[[], object], seconds: float, job_id: str, executor: str = "default"
) -> None:
    """Run `work` now and every `seconds`, one run at a time."""
    scheduler.add_job(
        work,
        "interval",
        seconds=seconds,
        id=job_id,
        executor=executor,
        next_run_time=datetime.now(UTC),
        coalesce=True,
        max_instances=1,
        # A run later than one interval is dropped: the next one, moments away, does the same work.
        misfire_grace_time=max(1, int(seconds)),
    )


def run_worker(app: Flask) -> None:
    """Tick every NURTURE_TICK_SECONDS, and at once when woken, until SIGTERM or SIGINT (after the batch in flight)."""
    seconds = float(app.config["NURTURE_TICK_SECONDS"])
    worker_id = worker_identity()
    stopping = threading.Event()
    lines = TickLog()

    def job() -> None:
        with app.app_context():
            try:
                counts = tick(worker_id, should_stop=stopping.is_set)
            except Exception as exc:  # noqa: BLE001 - the worker outlives one failed pass (database restart...)
                log.error("tick failed: %s", type(exc).__name__)
                return
        lines.tick(counts)

    # Our own lines say what happened; APScheduler's two lines per run would only repeat it.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("apscheduler.scheduler").addFilter(_SkipOverlapNotice())
    scheduler = BlockingScheduler(
        timezone=UTC,
        executors={
            "default": {"type": "threadpool", "max_workers": 1},
            # Other packages' jobs (nurture.register_worker_job) take turns in a thread of their own.
            "jobs": {"type": "threadpool", "max_workers": 1},
        },
    )
    _every(scheduler, job, seconds, "nurture-tick")
    for job_id, (every, work) in app.extensions.get("worker_jobs", {}).items():
        _every(scheduler, _in_context(app, job_id, work), every, job_id, executor="jobs")

    # A wake-up adds a one-off run of the same job. The executor has one thread, so it waits for a tick in
    # flight instead of overlapping it; while one wake-up run is still queued, further wake-ups add nothing.
    queued = threading.Event()
    runs = itertools.count(1)

    def woken_job() -> None:
        queued.clear()
        job()

    def wake() -> None:
        if stopping.is_set() or queued.is_set():
            return
        queued.set()
        try:
            scheduler.add_job(woken_job, id=f"nurture-wake-{next(runs)}", misfire_grace_time=None)
        except SchedulerNotRunningError:
            queued.clear()

    listener = Listener(db.engine, wake) if app.config["NURTURE_WAKE"] else None
    listening = listener.start() if listener is not None else False

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the batch in flight", signum)
        stopping.set()
        # shutdown(wait=True) waits for the running tick; run it off the signal handler.
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "nurture worker %s: ticking every %gs%s (time scale %g); idle ticks are not logged, a line every %d min "
        "says it is alive",
        worker_id,
        seconds,
        f" and woken by each signup ({listener.kind})" if listening and listener is not None else "",
        app.config["NURTURE_TIME_SCALE"],
        HEARTBEAT_LOG_SECONDS // 60,
    )
    try:
        scheduler.start()
    finally:
        if listener is not None:
            listener.close()
    log.info("nurture worker %s stopped", worker_id)
