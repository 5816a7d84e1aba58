"""The outbox (MAIL_BACKEND=outbox): the .eml files the app would have sent, listed and readable."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import Response, abort, current_app, make_response, render_template

from admin.blueprint import PREVIEW_CSP, bp

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.eml$")
LIMIT = 200


def _outbox() -> Path:
    if current_app.config.get("MAIL_BACKEND") != "outbox":
        abort(404)
    return Path(current_app.config["OUTBOX_DIR"]).resolve()


def _file(name: str) -> Path:
    """The named message inside the outbox; anything else (../, absolute paths, odd names) is a 404."""
    root = _outbox()
    if not NAME_RE.match(name):
        abort(404)
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        abort(404)
    return path


def _parse(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        return BytesParser(policy=policy.default).parse(fh)  # type: ignore[return-value]


def _part(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    if part is None:
        return ""
    try:
        return part.get_content()
    except (LookupError, ValueError):
        return ""


@bp.get("/outbox")
def outbox() -> str:
    """Messages in the outbox, newest first."""
    root = _outbox()
    files = sorted(root.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True)[:LIMIT] if root.is_dir() else []
    items = []
    for path in files:
        try:
            with path.open("rb") as fh:
                head = BytesParser(policy=policy.default).parse(fh, headersonly=True)
            items.append(
                {
                    "name": path.name,
                    "to": str(head.get("To", "")),
                    "subject": str(head.get("Subject", "")),
                    "at": datetime.fromtimestamp(path.stat().st_mtime, UTC),
                }
            )
        except (OSError, ValueError):
            continue
    return render_template("admin/outbox.html", items=items, directory=str(root))


@bp.get("/outbox/<name>")
def outbox_message(name: str) -> str:
    """One message: headers, text, and the HTML in a sandboxed frame."""
    message = _parse(_file(name))
    headers = [(k, str(v)) for k, v in message.items()]
    return render_template(
        "admin/outbox_message.html",
        name=name,
        headers=headers,
        subject=str(message.get("Subject", "")),
        text=_part(message, "plain"),
        has_html=bool(_part(message, "html")),
    )


@bp.get("/outbox/<name>/html")
def outbox_html(name: str) -> Response:
    """The message's HTML alone, for the preview frame, under a CSP that lets nothing run or load."""
    message = _parse(_file(name))
    response = make_response(_part(message, "html"))
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.mimetype = "text/html"
    return response
