"""The worker's console: a line for each tick that did something, and only a heartbeat line while idle."""

from __future__ import annotations

import logging

from nurture.scheduler import HEARTBEAT_LOG_SECONDS, TickLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_ticks_are_quiet_but_a_heartbeat_line_comes_every_few_minutes(caplog):
    clock = Clock()
    lines = TickLog(clock=clock)
    with caplog.at_level(logging.INFO, logger="nurture.scheduler"):
        for _ in range(50):  # about four minutes of idle ticks
            clock.now += 5
            lines.tick({})
        assert caplog.messages == []
        lines.tick({"claimed": 1, "sent": 1})
        assert caplog.messages == ["tick claimed=1 sent=1"]
        clock.now += HEARTBEAT_LOG_SECONDS - 1
        lines.tick({})
        assert len(caplog.messages) == 1
        clock.now += 1
        lines.tick({"provider_paused": 1})
    assert (
        caplog.messages[1]
        == "worker alive: 2 tick(s) since the last line, sending is PAUSED (see /healthz or the dashboard)"
    )
