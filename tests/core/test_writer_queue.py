"""SQLite writers of several processes take turns through the lock file beside the database."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

from core.db import WriterQueue

CONTEXT = multiprocessing.get_context("fork")


def _hold_then_write(path: str, log: str, ready, release) -> None:
    queue = WriterQueue(path)
    with queue.turn():
        ready.set()
        release.wait(10)
        with open(log, "a") as out:
            out.write("first\n")


def test_a_second_process_waits_for_the_holder_and_goes_as_soon_as_it_lets_go(tmp_path: Path) -> None:
    lock, log = str(tmp_path / "app.db-writers.lock"), str(tmp_path / "order.log")
    ready, release = CONTEXT.Event(), CONTEXT.Event()
    holder = CONTEXT.Process(target=_hold_then_write, args=(lock, log, ready, release))
    holder.start()
    assert ready.wait(10)
    waiter = CONTEXT.Process(target=_write_second, args=(lock, log))
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive(), "the second writer went ahead while the first held the queue"
    release.set()
    holder.join(10)
    waiter.join(10)
    assert Path(log).read_text().splitlines() == ["first", "second"]


def _write_second(path: str, log: str) -> None:
    with WriterQueue(path).turn(), open(log, "a") as out:
        out.write("second\n")


def test_a_forked_child_does_not_share_its_parents_turn(tmp_path: Path) -> None:
    queue = WriterQueue(str(tmp_path / "app.db-writers.lock"))
    with queue.turn():
        pass  # the parent opened its descriptor, as a web app does before gunicorn forks its workers
    ready, release = CONTEXT.Event(), CONTEXT.Event()
    child = CONTEXT.Process(target=_hold, args=(queue, ready, release))
    child.start()
    assert ready.wait(10)
    entered = threading.Event()
    # The parent itself, with the descriptor it opened before the fork.
    parent_try = threading.Thread(target=_enter, args=(queue, entered), daemon=True)
    parent_try.start()
    assert not entered.wait(0.3), "parent and child held the queue at once"
    release.set()
    assert entered.wait(10)
    child.join(10)
    parent_try.join(10)


def _hold(queue: WriterQueue, ready, release) -> None:
    with queue.turn():
        ready.set()
        release.wait(10)


def _enter(queue: WriterQueue, entered) -> None:
    with queue.turn():
        entered.set()


def test_a_thread_may_take_its_turn_again_inside_its_turn(tmp_path: Path) -> None:
    queue = WriterQueue(str(tmp_path / "app.db-writers.lock"))
    with queue.turn(), queue.turn():
        pass
    # Let go for real: another process gets it at once.
    entered = CONTEXT.Event()
    other = CONTEXT.Process(target=_enter, args=(WriterQueue(queue.path), entered))
    other.start()
    assert entered.wait(10)
    other.join(10)
    assert os.path.exists(queue.path)
