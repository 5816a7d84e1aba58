"""The senders behind MAIL_BACKEND: outbox (.eml files), console (headers only) and SendGrid."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import python_http_client
from email_validator import EmailNotValidError, validate_email
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from config import ConfigError
from core.clock import now
from mailer.base import AuthError, Message, PermanentError, Sender, SettingError, TemporaryError, UncertainError

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3600.0
# Long URLs in List-Unsubscribe must stay literal: at 78 columns the policy would turn them into encoded words.
_MIME_POLICY = SMTP.clone(max_line_length=998)
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def ascii_address(address: str) -> str:
    """The address with an internationalised domain in its ASCII (IDNA) form, as headers and SendGrid need it.

    New leads are stored that way; this covers addresses stored before. Anything else is left for the
    provider to refuse with its own message.
    """
    if address.isascii():
        return address
    try:
        return validate_email(address, check_deliverability=False).ascii_email or address
    except EmailNotValidError:
        return address


def to_mime(message: Message, message_id: str | None = None) -> EmailMessage:
    """The message as a MIME multipart/alternative email with every header we would send."""
    mime = EmailMessage(policy=_MIME_POLICY)
    mime["From"] = formataddr((message.from_name, message.from_email)) if message.from_name else message.from_email
    mime["To"] = ascii_address(message.to)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(now())
    domain = message.from_email.rpartition("@")[2] or "localhost"
    mime["Message-ID"] = message_id or make_msgid(domain=domain)
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


class OutboxSender:
    """Writes each message as an .eml file under a folder; names sort by time of sending."""

    _counter = itertools.count()
    _lock = threading.Lock()

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def send(self, message: Message) -> str | None:
        """Save the message atomically (write a temp file, then rename) and return its Message-ID."""
        self.directory.mkdir(parents=True, exist_ok=True)
        mime = to_mime(message)
        with self._lock:
            sequence = next(self._counter)
        # Wall-clock nanoseconds, not the app clock: tests freeze the app clock but still need order.
        name = f"{time.time_ns():020d}-{os.getpid()}-{sequence:06d}.eml"
        data = mime.as_bytes()
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.directory)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.directory / name)
        except OSError as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            raise TemporaryError(f"outbox: cannot write {self.directory}: {exc.strerror}", answered=False) from None
        return str(mime["Message-ID"]).strip("<>")


class ConsoleSender:
    """Logs that a message left, with ids and sizes only: never the address, the subject, a body or a link.

    The subject can hold the reader's first name and List-Unsubscribe their token, so neither is logged.
    """

    def send(self, message: Message) -> str | None:
        """Log one line per message and return a made-up id."""
        message_id = make_msgid(domain="console.invalid").strip("<>")
        size = len(message.text.encode("utf-8")) + len(message.html.encode("utf-8"))
        log.info(
            "mail (console backend, not sent) id=%s custom_args=%s categories=%s headers=%s size=%d bytes",
            message_id,
            json.dumps(message.custom_args, sort_keys=True),
            ",".join(message.categories),
            ",".join(sorted(message.headers)),
            size,
        )
        return message_id


class _Client(python_http_client.Client):
    """python_http_client's Client that skips environment proxies for loopback hosts (the fake SendGrid)."""

    def _build_client(self, name: str | None = None) -> _Client:
        url_path = [*self._url_path, name] if name else self._url_path
        return _Client(
            host=self.host,
            version=self._version,
            request_headers=self.request_headers,
            url_path=url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
        )

    def _make_request(self, opener: Any, request: Any, timeout: float | None = None) -> Any:
        if urlsplit(self.host).hostname in _LOOPBACK:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return super()._make_request(opener, request, timeout=timeout)


def sendgrid_body(message: Message) -> dict[str, Any]:
    """The v3 Mail Send JSON for one message."""
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": ascii_address(message.to)}]}],
        "from": {"email": message.from_email, **({"name": message.from_name} if message.from_name else {})},
        "subject": message.subject,
        "content": [
            {"type": "text/plain", "value": message.text},
            {"type": "text/html", "value": message.html},
        ],
    }
    if message.reply_to:
        body["reply_to"] = {"email": message.reply_to}
    if message.headers:
        body["headers"] = dict(message.headers)
    if message.categories:
        body["categories"] = list(dict.fromkeys(message.categories))[:10]
    if message.custom_args:
        body["custom_args"] = {key: str(value) for key, value in message.custom_args.items()}
    return body


def _error_text(exc: http_errors.HTTPError) -> str:
    """SendGrid's own error messages from a failed response, kept for the operator."""
    raw = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
    try:
        data = json.loads(raw.decode("utf-8", "replace"))
        messages = [
            f"{e.get('field')}: {e.get('message')}"
            if e.get("field") not in (None, "", "null")
            else str(e.get("message"))
            for e in data.get("errors", [])
            if isinstance(e, dict)
        ]
        text = "; ".join(m for m in messages if m)
    except (ValueError, AttributeError):
        text = raw.decode("utf-8", "replace").strip()
    return (text or str(exc.reason or ""))[:500]


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    with contextlib.suppress(AttributeError, TypeError):
        return headers.get(name)
    return None


def retry_after_from(headers: Any) -> float | None:
    """Seconds to wait from X-RateLimit-Reset (a Unix time) or Retry-After (seconds)."""
    reset = _header(headers, "X-RateLimit-Reset")
    if reset:
        with contextlib.suppress(ValueError):
            # The provider's clock, so compare with the wall clock, not the app clock.
            return min(max(float(reset) - time.time(), 0.0), MAX_RETRY_AFTER)
    after = _header(headers, "Retry-After")
    if after:
        with contextlib.suppress(ValueError):
            return min(max(float(after), 0.0), MAX_RETRY_AFTER)
    return None


class SendGridSender:
    """Sends through SendGrid's v3 Mail Send API with the official client; maps failures to mailer errors."""

    def __init__(self, api_key: str, host: str = "https://api.sendgrid.com", timeout: float = 10.0) -> None:
        self.host = host.rstrip("/")
        self.timeout = timeout
        self.api_key = api_key
        # At DEBUG the HTTP client logs each request's payload and headers: addresses, names, links, the key.
        logging.getLogger("python_http_client").setLevel(max(logging.INFO, logging.getLogger().level))
        self.api = SendGridAPIClient(api_key, host=self.host)
        # The library builds its client without a timeout; ours sets one and bypasses proxies for loopback.
        self.api.client = _Client(host=self.host, request_headers=self.api._default_headers, version=3, timeout=timeout)

    def send(self, message: Message) -> str | None:
        """POST /v3/mail/send; return X-Message-Id."""
        if not self.api_key:
            raise SettingError("SENDGRID_API_KEY", "is not set: MAIL_BACKEND=sendgrid needs an API key")
        try:
            response = self.api.send(sendgrid_body(message))
        except http_errors.HTTPError as exc:
            raise self._translate(exc) from None
        except urllib.error.URLError as exc:
            # urllib wraps failures while connecting and sending: SendGrid never got the whole request.
            if isinstance(exc.reason, TimeoutError):
                raise TemporaryError(f"could not reach SendGrid within {self.timeout:g}s", answered=False) from None
            raise TemporaryError(f"cannot reach SendGrid: {exc.reason}", answered=False) from None
        except (TimeoutError, http.client.HTTPException, ConnectionError, OSError) as exc:
            # Raised while waiting for the answer: the request went out and may have been accepted.
            raise UncertainError(
                f"SendGrid got the request but did not answer ({type(exc).__name__} after up to {self.timeout:g}s); "
                "it may have sent the email: check its events before sending again"
            ) from None
        message_id = _header(response.headers, "X-Message-Id")
        return str(message_id) if message_id else None

    def _translate(self, exc: http_errors.HTTPError) -> Exception:
        code = int(getattr(exc, "status_code", 0) or 0)
        text = _error_text(exc)
        if code == 429:
            return TemporaryError(
                f"SendGrid rate limit (429): {text}", retry_after=retry_after_from(exc.headers), rate_limited=True
            )
        if code in (401, 403):
            return AuthError(f"SendGrid refused the API key ({code}): {text}")
        if code >= 500:
            return TemporaryError(f"SendGrid error {code}: {text}", retry_after=retry_after_from(exc.headers))
        return PermanentError(f"SendGrid refused the message ({code}): {text}")


def make_sender(config: Any) -> Sender:
    """The sender MAIL_BACKEND names: outbox, console or sendgrid."""
    backend = (config.get("MAIL_BACKEND") or "outbox").strip().lower()
    if backend == "outbox":
        return OutboxSender(config["OUTBOX_DIR"])
    if backend == "console":
        return ConsoleSender()
    if backend == "sendgrid":
        # A missing key stops the worker at start (mailer.health.setting_problems), not the web processes.
        return SendGridSender(
            config.get("SENDGRID_API_KEY") or "",
            host=config.get("SENDGRID_API_HOST") or "https://api.sendgrid.com",
            timeout=float(config.get("SENDGRID_TIMEOUT") or 10.0),
        )
    raise ConfigError(f"MAIL_BACKEND: {backend!r} is not a mail backend (use outbox, console or sendgrid)")
