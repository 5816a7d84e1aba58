"""Senders for tests: one that records every message, one that fails first; swapped in through app.extensions."""

from __future__ import annotations

import threading
from collections import Counter

from flask import Flask

from mailer.base import Message
from mailer.links import provider_campaign_id
from nurture.dispatch import tick
from studio.registry import registry


def step_of(message: Message) -> str | None:
    """The campaign step id of a message, read back from the opaque ids the provider sees (in an app context)."""
    campaign_id, position = message.custom_args.get("campaign"), message.custom_args.get("step")
    for campaign in registry().all():
        if provider_campaign_id(campaign.slug) == campaign_id and position and position.isdecimal():
            return campaign.steps[int(position) - 1].id
    return None


class RecordingSender:
    """Keeps every message it is asked to send and answers with a fake provider id."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.step_ids: list[str | None] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> str:
        step = step_of(message)  # the worker sends inside an app context
        with self._lock:
            self.messages.append(message)
            self.step_ids.append(step)
            return f"msg-{len(self.messages)}"

    def steps(self) -> Counter:
        """How many times each (recipient, step id) was sent."""
        return Counter((m.to, step) for m, step in zip(self.messages, self.step_ids, strict=True))


class FlakySender(RecordingSender):
    """Raises the queued errors first, then sends."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__()
        self.errors = list(errors)
        self.calls = 0

    def send(self, message: Message) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return super().send(message)


def use_sender(app: Flask, sender: object) -> object:
    """Swap the app's sender (the interface chosen by config) for this test."""
    app.extensions["mail_sender"] = sender
    return sender


def run_tick(app: Flask, worker_id: str | None = None) -> dict[str, int]:
    """One tick of the nurture worker in a fresh app context; returns its counts."""
    with app.app_context():
        return tick(worker_id)
