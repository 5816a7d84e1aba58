"""Signed unsubscribe tokens, one per lead, that never expire: links in old emails must keep working."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from core import signing

SALT = "unsubscribe"


def _serializer() -> URLSafeSerializer:
    # Kept per key set (core.signing), the same tokens byte for byte: a tick signs one per email, and a serializer
    # built per call derived its key and tried zlib on a payload it can never shrink (a fifth of a tick's time).
    # A key being rotated out (SECRET_KEY_FALLBACKS) still reads the links of the emails it signed.
    return signing.serializer(signing.key_set(current_app), SALT)


def make_token(lead_id: int) -> str:
    """The token that names this lead in unsubscribe links."""
    return _serializer().dumps({"lead": int(lead_id)})


def read_token(token: str) -> int | None:
    """The lead id a token names, or None when it was tampered with or is not ours."""
    if not token or len(token) > 200:
        return None
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    lead_id = data.get("lead")
    if not isinstance(lead_id, int) or isinstance(lead_id, bool) or lead_id <= 0:
        return None
    return lead_id


def unsubscribe_url(lead_id: int) -> str:
    """The absolute one-click unsubscribe URL for this lead (SITE_URL/unsubscribe/TOKEN)."""
    return f"{current_app.config['SITE_URL']}/unsubscribe/{make_token(lead_id)}"
