"""A fake SendGrid v3 server on 127.0.0.1: checks Mail Send bodies like SendGrid does, records them, injects faults.

In a test: `FakeSendGrid().start()` (or the `fake_sendgrid` fixture). As a process, for benchmarks and crash tests:
`python -m tests.fakes.sendgrid --port 8765 [--api-key KEY] [--delay SECONDS]`, then
GET /_fake/requests (accepted requests as JSON, each with its wall-clock `received_at`), GET /_fake/stats (counts,
most Mail Sends in flight at once), POST /_fake/mode (faults; {"delay_seconds": 0.05} makes every Mail Send answer
that much later), POST /_fake/reset,
GET /_fake/public_key and POST /_fake/sign (body: a JSON array of events) to get a signed webhook batch.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import random
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_API_KEY = "SG.fake-test-key"
MAX_BODY_BYTES = 30 * 1024 * 1024  # SendGrid's limit for a whole Mail Send request
RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}

# SendGrid's own wording for the errors the fake reproduces.
MSG_PERSONALIZATIONS = "The personalizations field is required and must have at least one personalization."
MSG_TO = (
    "The to array is required for all personalization objects, "
    "and must have at least one email object with a valid email address."
)
MSG_SUBJECT = (
    "The subject is required. You can get around this requirement if you use a template "
    "with a subject defined or if every personalization has a subject defined."
)
MSG_CONTENT = (
    "Unless a valid template_id is provided, the content parameter is required. "
    "There must be at least one defined content block."
)
MSG_CONTENT_VALUE = "The content value must be a string at least one character in length."
MSG_PLAIN_FIRST = "If present, text/plain content must be first, followed by any other content."
MSG_AUTH = "The provided authorization grant is invalid, expired, or revoked"
FAULTS = {"429", "500", "503", "400", "401", "403", "413", "hang"}


class WebhookSigner:
    """An EC P-256 key pair that signs event batches the way SendGrid's Event Webhook does."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        #: The verification key as SendGrid's settings page shows it: base64 DER.
        self.public_key = base64.b64encode(der).decode("ascii")

    def sign(
        self, events: list[dict[str, Any]] | bytes, timestamp: int | float | datetime | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """Return (body bytes, headers) for a webhook POST; timestamp defaults to now."""
        body = events if isinstance(events, bytes) else json.dumps(events).encode("utf-8")
        if isinstance(timestamp, datetime):
            timestamp = timestamp.timestamp()
        stamp = str(int(timestamp if timestamp is not None else time.time()))
        signature = self._key.sign(stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode("ascii"),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }
        return body, headers


def _error(message: str, field_name: str | None = None, help_url: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field_name, "help": help_url}


def _valid_email(value: Any) -> bool:
    return isinstance(value, str) and "@" in value and "." in value.rpartition("@")[2] and len(value) <= 320


def validate_mail_send(body: Any) -> list[dict[str, Any]]:
    """SendGrid's rules for a v3 Mail Send body; an empty list means it would be accepted."""
    errors: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        return [_error("Bad Request", None)]
    has_template = bool(body.get("template_id"))

    sender = body.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        errors.append(_error("The from object must be provided for every email send.", "from"))
    elif not _valid_email(sender["email"]):
        errors.append(_error("The from email does not contain a valid address.", "from.email"))
    reply_to = body.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, dict) or not _valid_email(reply_to.get("email"))):
        errors.append(_error("The reply_to email does not contain a valid address.", "reply_to.email"))

    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(_error(MSG_PERSONALIZATIONS, "personalizations"))
        personalizations = []
    elif len(personalizations) > 1000:
        errors.append(_error("The personalizations field must have at most 1000 items.", "personalizations"))
    for index, item in enumerate(personalizations[:1000]):
        where = f"personalizations.{index}"
        if not isinstance(item, dict):
            errors.append(_error("Each personalization must be an object.", where))
            continue
        to = item.get("to")
        if not isinstance(to, list) or not to:
            errors.append(_error(MSG_TO, f"{where}.to"))
        else:
            for n, recipient in enumerate(to):
                if not isinstance(recipient, dict) or not _valid_email(recipient.get("email")):
                    errors.append(_error("Does not contain a valid address.", f"{where}.to.{n}.email"))
        if not has_template and not body.get("subject") and not item.get("subject"):
            errors.append(_error(MSG_SUBJECT, "subject"))
        args = item.get("custom_args")
        if args is not None and (not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values())):
            errors.append(_error("Invalid type. Expected: string, given: non-string.", f"{where}.custom_args"))

    subject = body.get("subject")
    if subject is not None and (not isinstance(subject, str) or not subject):
        errors.append(_error("The subject must be a non-empty string.", "subject"))

    content = body.get("content")
    if content is None:
        if not has_template:
            errors.append(_error(MSG_CONTENT, "content"))
    elif not isinstance(content, list) or not content:
        errors.append(_error("The content parameter must be an array with at least one content block.", "content"))
    else:
        types = []
        for n, block in enumerate(content):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str) or not block.get("type"):
                errors.append(_error("The content type cannot be empty.", f"content.{n}.type"))
                continue
            value = block.get("value")
            if not isinstance(value, str) or not value:
                errors.append(_error(MSG_CONTENT_VALUE, f"content.{n}.value"))
            types.append(block["type"])
        if "text/plain" in types and types[0] != "text/plain":
            errors.append(_error(MSG_PLAIN_FIRST, "content"))

    categories = body.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or len(categories) > 10:
            errors.append(_error("Too many categories: a message may have at most 10.", "categories"))
        elif not all(isinstance(c, str) and 0 < len(c) <= 255 for c in categories):
            errors.append(_error("A category must be a string of at most 255 characters.", "categories"))
        elif len(set(categories)) != len(categories):
            errors.append(_error("The categories must be unique.", "categories"))

    args = body.get("custom_args")
    if args is not None:
        if not isinstance(args, dict) or not all(isinstance(v, str) for v in args.values()):
            errors.append(_error("Invalid type. Expected: string, given: non-string.", "custom_args"))
        elif len(json.dumps(args)) > 10_000:
            errors.append(_error("The custom_args may not exceed 10,000 bytes.", "custom_args"))

    headers = body.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            errors.append(_error("The headers must be an object.", "headers"))
        else:
            for name, value in headers.items():
                if name.lower() in RESERVED_HEADERS:
                    errors.append(_error(f"The header {name} is reserved and cannot be set.", f"headers.{name}"))
                elif not isinstance(value, str):
                    errors.append(_error("Invalid type. Expected: string.", f"headers.{name}"))
    return errors


@dataclass
class _Mode:
    fault: str | None = None
    count: int | None = None  # None = until changed
    probability: float = 0.0
    statuses: tuple[str, ...] = ("500", "503", "429")
    rng: random.Random = field(default_factory=random.Random)
    hang_seconds: float = 5.0
    reset_seconds: float = 1.0
    max_bytes: int = MAX_BODY_BYTES
    delay_seconds: float = 0.0  # every Mail Send answers this much later, like a real provider's latency


class FakeSendGrid:
    """The server: start(), url, requests (accepted bodies), set_fault()/set_random(), signer."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, port: int = 0) -> None:
        self.api_key = api_key
        self.port = port
        self.signer = WebhookSigner()
        self.requests: list[dict[str, Any]] = []
        self.attempts = 0
        self.answers: dict[str, int] = {}
        # Mail Send requests being handled now, and the most at once since the last reset (pipelining shows here).
        self.in_flight = 0
        self.max_in_flight = 0
        self._mode = _Mode()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL for SENDGRID_API_HOST."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def public_key(self) -> str:
        """The webhook verification key (base64 DER) for SENDGRID_WEBHOOK_PUBLIC_KEY."""
        return self.signer.public_key

    def sign(self, events: list[dict[str, Any]] | bytes, timestamp: Any = None) -> tuple[bytes, dict[str, str]]:
        """A signed webhook batch: (body, headers)."""
        return self.signer.sign(events, timestamp)

    def set_delay(self, seconds: float) -> None:
        """Answer every Mail Send `seconds` later (faults and all), as a provider far away does."""
        with self._lock:
            self._mode.delay_seconds = float(seconds)

    def set_fault(self, fault: str | int | None, count: int | None = None, **options: float) -> None:
        """Answer `fault` (429, 500, 503, 400, 401, 403, 413 or 'hang') to the next `count` requests (None: all)."""
        fault = None if fault is None else str(fault)
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._mode.fault, self._mode.count, self._mode.probability = fault, count, 0.0
            for key, value in options.items():
                setattr(self._mode, key, value)

    def set_random(self, probability: float, seed: int = 0, statuses: tuple[str | int, ...] = (500, 503, 429)) -> None:
        """Answer a random fault from `statuses` with this probability, reproducibly from `seed`."""
        with self._lock:
            self._mode.fault, self._mode.count = None, None
            self._mode.probability = probability
            self._mode.statuses = tuple(str(s) for s in statuses)
            self._mode.rng = random.Random(seed)

    def reset(self) -> None:
        """Forget recorded requests and faults."""
        with self._lock:
            self.requests.clear()
            self.attempts = 0
            self.answers.clear()
            self.max_in_flight = self.in_flight
            mode = self._mode
            self._mode = _Mode(
                hang_seconds=mode.hang_seconds, reset_seconds=mode.reset_seconds, delay_seconds=mode.delay_seconds
            )

    def snapshot(self) -> list[dict[str, Any]]:
        """A copy of the accepted requests."""
        with self._lock:
            return json.loads(json.dumps(self.requests))

    def start(self) -> FakeSendGrid:
        """Serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", self.port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-sendgrid", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release hanging requests."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- behaviour -------------------------------------------------------------------------------------
    def _next_fault(self) -> tuple[str | None, _Mode]:
        with self._lock:
            mode = self._mode
            self.attempts += 1
            if mode.fault is not None:
                fault = mode.fault
                if mode.count is not None:
                    mode.count -= 1
                    if mode.count <= 0:
                        mode.fault, mode.count = None, None
                return fault, mode
            if mode.probability and mode.rng.random() < mode.probability:
                return mode.rng.choice(mode.statuses), mode
            return None, mode

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _count(self, status: str) -> None:
        with self._lock:
            self.answers[status] = self.answers.get(status, 0) + 1


class _Server(ThreadingHTTPServer):
    # A client keeping several sends in flight opens several connections at once: more than the default backlog of 5.
    request_queue_size = 128


_FAULT_BODIES = {
    "400": (400, [_error("invalid request", None)]),
    "401": (401, [_error(MSG_AUTH, None)]),
    "403": (403, [_error("access forbidden", None)]),
    "413": (413, [_error("content too large", None)]),
    "500": (500, [_error("internal server error", None)]),
    "503": (503, [_error("service unavailable", None)]),
    "429": (429, [_error("too many requests", None)]),
}


def _make_handler(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeSendGrid/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
            # No longer in flight once the answer starts: the client may send its next request the moment it has it.
            self._done()
            data = b"" if payload is None else json.dumps(payload).encode("utf-8")
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            fake._count(str(status))

        def _done(self) -> None:
            if getattr(self, "in_flight", False):
                self.in_flight = False
                fake._leave()

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if self.path == "/_fake/requests":
                self._send(200, fake.snapshot())
            elif self.path == "/_fake/public_key":
                self._send(200, {"public_key": fake.public_key})
            elif self.path == "/_fake/stats":
                with fake._lock:
                    stats = {
                        "attempts": fake.attempts,
                        "accepted": len(fake.requests),
                        "answers": dict(fake.answers),
                        "max_in_flight": fake.max_in_flight,
                    }
                self._send(200, stats)
            else:
                self._send(404, {"errors": [_error("not found", None)]})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/v3/mail/send":
                fake._enter()
                self.in_flight = True
                try:
                    self._mail_send(body)
                finally:
                    self._done()
            elif self.path == "/_fake/mode":
                self._control(body)
            elif self.path == "/_fake/reset":
                fake.reset()
                self._send(200, {"ok": True})
            elif self.path == "/_fake/sign":
                try:
                    events = json.loads(body or b"[]")
                except ValueError:
                    self._send(400, {"error": "events must be JSON"})
                    return
                signed, headers = fake.sign(json.dumps(events).encode("utf-8"))
                self._send(200, {"body": signed.decode("utf-8"), "headers": headers, "public_key": fake.public_key})
            else:
                self._send(404, {"errors": [_error("not found", None)]})

        def _control(self, body: bytes) -> None:
            try:
                spec = json.loads(body or b"{}")
                if "probability" in spec:
                    statuses = tuple(spec.get("statuses", (500, 503, 429)))
                    fake.set_random(float(spec["probability"]), int(spec.get("seed", 0)), statuses)
                else:
                    keys = ("hang_seconds", "reset_seconds", "delay_seconds")
                    options = {k: float(spec[k]) for k in keys if k in spec}
                    if set(spec) == {"delay_seconds"}:
                        fake.set_delay(options["delay_seconds"])
                    else:
                        fake.set_fault(spec.get("fault"), spec.get("count"), **options)
            except (ValueError, TypeError, AttributeError) as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, {"ok": True})

        def _mail_send(self, raw: bytes) -> None:
            fault, mode = fake._next_fault()
            if mode.delay_seconds > 0:
                fake._stop.wait(mode.delay_seconds)
            if fault == "hang":
                # Answer nothing until the client gives up (or the fake stops).
                fake._stop.wait(mode.hang_seconds)
                self.close_connection = True
                return
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                self._send(401, {"errors": [_error(MSG_AUTH, None)]})
                return
            if fault is not None:
                status, errors = _FAULT_BODIES[fault]
                headers = {}
                if status == 429:
                    headers = {
                        "X-RateLimit-Limit": "600",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(time.time() + mode.reset_seconds)),
                    }
                self._send(status, {"errors": errors}, headers)
                return
            if len(raw) > mode.max_bytes:
                self._send(413, {"errors": [_error("content too large", None)]})
                return
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                self._send(400, {"errors": [_error("Bad Request", None)]})
                return
            errors = validate_mail_send(body)
            if errors:
                self._send(400, {"errors": errors})
                return
            message_id = secrets.token_urlsafe(16)[:22]
            with fake._lock:
                fake.requests.append(
                    {
                        "message_id": message_id,
                        # When the 2xx was decided (wall clock), for benchmarks timing a send end to end.
                        "received_at": time.time(),
                        "headers": {k: v for k, v in self.headers.items() if k.lower() != "authorization"},
                        "body": body,
                    }
                )
            self._send(202, None, {"X-Message-Id": message_id})

    return Handler


def main() -> None:
    """Run the fake until SIGTERM or Ctrl-C; prints its URL and webhook public key."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--delay", type=float, default=0.0, help="answer every Mail Send this many seconds later")
    args = parser.parse_args()
    fake = FakeSendGrid(api_key=args.api_key, port=args.port).start()
    fake.set_delay(args.delay)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(json.dumps({"url": fake.url, "api_key": fake.api_key, "public_key": fake.public_key}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    fake.stop()


if __name__ == "__main__":
    main()
