"""The mail interface every sender implements, and the errors they raise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from flask import Flask, current_app


@dataclass
class Message:
    """One email ready to send. Never put health details (interest, message) in any field."""

    to: str
    subject: str
    text: str
    html: str
    from_email: str = ""
    from_name: str = ""
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    # Only ids: delivery, campaign, step. SendGrid echoes these in its events.
    custom_args: dict[str, str] = field(default_factory=dict)


class SendError(Exception):
    """The provider did not accept the message."""


class TemporaryError(SendError):
    """Try again later (429, 5xx, no connection); retry_after in seconds when the provider said."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, rate_limited: bool = False, answered: bool = True
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        # A 429 applies to every message, so the dispatcher stops for this tick instead of trying the next one.
        self.rate_limited = rate_limited
        # False when the provider was never reached: the admin then never says "the provider refused".
        self.answered = answered


class UncertainError(SendError):
    """The request reached the provider but no answer came back (a read timeout): it may have been sent.

    Resending could give the reader the same email twice, so the delivery becomes `unknown` until the
    provider's events or an operator settle it.
    """


class PermanentError(SendError):
    """The provider refused this message (400, 413): sending it again will not help."""


class ComposeError(PermanentError):
    """The message cannot be built (missing config, a broken template): sending again will not help."""


class AuthError(SendError):
    """The provider refused our credentials (401, 403): stop all sending until an operator acts."""


class SettingError(SendError):
    """A setting every marketing email needs is missing or wrong (no postal address, no API key...).

    No message can leave until an operator fixes it, so sending pauses as after a 401/403: nothing is marked
    failed and every delivery stays due. str() reads `VARIABLE: problem`.
    """

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class Sender(Protocol):
    """Anything that can send a Message and return the provider's message id (or None)."""

    def send(self, message: Message) -> str | None:
        """Send one message; raise a SendError subclass on failure."""
        ...


# A composer builds the Message for a recorded delivery of its kind (see mailer.models.DELIVERY_KINDS).
Composer = Callable[..., Message]


def register_composer(app: Flask, kind: str, composer: Composer) -> None:
    """Declare how deliveries of `kind` become messages; called from a package's init_app."""
    app.extensions.setdefault("composers", {})[kind] = composer


def composer_for(kind: str) -> Composer:
    """The composer registered for `kind`."""
    return current_app.extensions["composers"][kind]


def get_sender() -> Sender:
    """The sender chosen by MAIL_BACKEND for the current app."""
    return current_app.extensions["mail_sender"]
