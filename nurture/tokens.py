"""Signed, timestamped double opt-in tokens: /confirm/<token> names one enrollment for two weeks."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from core.clock import now

SALT = "confirm"
# Long enough for the reminder (two days later) and a slow reader; short enough that old mail goes stale.
CONFIRM_MAX_AGE = 14 * 24 * 3600


class _ClockSigner(TimestampSigner):
    """Token ages follow the app's clock, so tests (and demos) can move time."""

    def get_timestamp(self) -> int:
        return int(now().timestamp())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT, signer=_ClockSigner)


def make_confirm_token(enrollment_id: int) -> str:
    """A signed, timestamped token naming one enrollment."""
    return _serializer().dumps({"enrollment": int(enrollment_id)})


def read_confirm_token(token: str) -> int | None:
    """The enrollment id in a valid, unexpired token, else None."""
    if not token or len(token) > 300:
        return None
    try:
        data = _serializer().loads(token, max_age=CONFIRM_MAX_AGE)
    except (SignatureExpired, BadSignature):
        return None
    value = data.get("enrollment") if isinstance(data, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return value


def confirm_url(enrollment_id: int) -> str:
    """The absolute confirmation link for an enrollment."""
    return f"{current_app.config['SITE_URL']}/confirm/{make_confirm_token(enrollment_id)}"
