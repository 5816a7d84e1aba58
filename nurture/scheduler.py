"""`flask nurture run`: the worker process. The only module that imports APScheduler."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from nurture.dispatch import tick, worker_identity

log = logging.getLogger(__name__)


class _SkipOverlapNotice(logging.Filter):
    """Drop APScheduler's warning that a run was skipped because the last tick is still busy.

    With max_instances=1 that is the intended behaviour (a long tick keeps working through the backlog),
    so repeating it every interval would only bury real warnings.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but the overlap notice."""
        return "maximum number of running instances reached" not in record.getMessage()


def run_worker(app: Flask) -> None:
    """Tick every NURTURE_TICK_SECONDS until SIGTERM or SIGINT, which stop after the batch in flight."""
    seconds = float(app.config["NURTURE_TICK_SECONDS"])
    worker_id = worker_identity()
    stopping = threading.Event()

    def job() -> None:
        with app.app_context():
            try:
                counts = tick(worker_id, should_stop=stopping.is_set)
            except Exception as exc:  # noqa: BLE001 - the worker outlives one failed pass (database restart...)
                log.error("tick failed: %s", type(exc).__name__)
                return
        log.info("tick %s", " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "idle")

    # Our own line per tick says what happened; APScheduler's two lines per run would only repeat it.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("apscheduler.scheduler").addFilter(_SkipOverlapNotice())
    scheduler = BlockingScheduler(timezone=UTC, executors={"default": {"type": "threadpool", "max_workers": 1}})
    scheduler.add_job(
        job,
        "interval",
        seconds=seconds,
        id="nurture-tick",
        next_run_time=datetime.now(UTC),
        coalesce=True,
        max_instances=1,
        # A run later than one interval is dropped: the next tick, moments away, does the same work.
        misfire_grace_time=max(1, int(seconds)),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the batch in flight", signum)
        stopping.set()
        # shutdown(wait=True) waits for the running tick; run it off the signal handler.
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "nurture worker %s: ticking every %gs (time scale %g)", worker_id, seconds, app.config["NURTURE_TIME_SCALE"]
    )
    scheduler.start()
    log.info("nurture worker %s stopped", worker_id)
