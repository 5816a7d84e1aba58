"""itsdangerous serializers built once per key and salt, signing with the derived key kept.

Every landing page view signs three values (the session cookie, the CSRF token and the form's start time); built
afresh, each itsdangerous serializer derives its HMAC key and builds a signer per call, which cost more than the
signing. These subclasses produce and accept exactly the bytes the stock classes do (tests/security checks both
ways); they only keep what depends on the key and salt alone. Nothing about a visitor is ever cached here.
"""

from __future__ import annotations

import binascii
import hmac
import json
import re
import secrets
import zlib
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any

from flask import Flask, current_app, g, request, session
from flask.json import dumps as json_dumps
from flask.json.provider import DefaultJSONProvider
from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect as _CSRFProtect
from flask_wtf.csrf import _FlaskFormCSRF, logger, same_origin
from itsdangerous import BadData, SignatureExpired, Signer, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous._json import _CompactJSON
from itsdangerous.encoding import base64_decode, int_to_bytes, want_bytes
from itsdangerous.signer import HMACAlgorithm
from werkzeug.http import dump_cookie
from wtforms import ValidationError

__all__ = [
    "CSRFProtect",
    "CookieSessionInterface",
    "FormCSRF",
    "csrf_token",
    "key_set",
    "serializer",
    "timed_serializer",
    "validate_csrf",
]


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _base64(data: bytes) -> bytes:
    """itsdangerous's base64_encode for bytes (URL-safe, no padding) in one step: six calls per landing view."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=")


class _KeyedMixin:
    """A signer that derives each secret's HMAC key once and keeps an HMAC keyed with it to copy for each signature.

    hmac.digest builds its OpenSSL HMAC anew on every call (~5 µs with OpenSSL 3, every landing view signs three
    values); copying one already keyed costs about half. Same algorithm, same bytes (tests/security).
    """

    secret_keys: list[bytes]
    algorithm: Any

    def _setup(self) -> None:
        self._derived: dict[bytes, bytes] = {}
        self._keyed: dict[bytes, hmac.HMAC] = {}
        digest = getattr(self.algorithm, "digest_method", None)
        # Only the stock HMAC algorithm with a named hashlib digest qualifies; anything else signs as itsdangerous.
        self._digest_name = getattr(digest(), "name", None) if isinstance(self.algorithm, HMACAlgorithm) else None

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        """The key for `secret_key` (default: the newest), as itsdangerous derives it, computed once."""
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        found = self._derived.get(secret)
        if found is None:
            found = self._derived[secret] = super().derive_key(secret)  # type: ignore[misc]
        return found

    def _mac(self, secret: bytes, value: bytes) -> bytes:
        keyed = self._keyed.get(secret)
        if keyed is None:
            keyed = hmac.new(self.derive_key(secret), digestmod=self._digest_name)
            # OpenSSL's HMAC object behind hmac.HMAC, when there is one: copied without three Python calls.
            keyed = self._keyed[secret] = getattr(keyed, "_hmac", None) or keyed
        mac = keyed.copy()
        mac.update(value)
        return mac.digest()

    def get_signature(self, value: str | bytes) -> bytes:
        """The same signature as itsdangerous's, from the kept HMAC of the newest key."""
        if self._digest_name is None:
            return super().get_signature(value)  # type: ignore[misc]
        return _base64(self._mac(self.secret_keys[-1], want_bytes(value)))

    def verify_signature(self, value: str | bytes, sig: str | bytes) -> bool:
        """Whether `sig` signs `value` under any of the keys, newest first, compared in constant time."""
        if self._digest_name is None:
            return super().verify_signature(value, sig)  # type: ignore[misc]
        try:
            raw = base64_decode(sig)
        except Exception:  # noqa: BLE001 - as itsdangerous: anything undecodable is simply not a signature
            return False
        value = want_bytes(value)
        return any(hmac.compare_digest(raw, self._mac(secret, value)) for secret in reversed(self.secret_keys))


class KeyedSigner(_KeyedMixin, Signer):
    """itsdangerous.Signer keeping its derived keys."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup()


class KeyedTimestampSigner(_KeyedMixin, TimestampSigner):
    """itsdangerous.TimestampSigner keeping its derived keys."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._setup()
        self._sep_bytes = want_bytes(self.sep)
        # The last second signed and its encoding: a second's signatures all carry the same few bytes.
        self._stamp: tuple[int, bytes] = (-1, b"")

    def sign(self, value: str | bytes) -> bytes:
        """value.timestamp.signature, as TimestampSigner.sign makes it, in one step with the kept HMAC."""
        if self._digest_name is None:
            return super().sign(value)
        sep = self._sep_bytes
        second, stamp = self._stamp
        now = self.get_timestamp()
        if now != second:
            stamp = _base64(int_to_bytes(now))
            self._stamp = (now, stamp)
        signed = want_bytes(value) + sep + stamp
        return signed + sep + _base64(self._mac(self.secret_keys[-1], signed))


# Payloads shorter than this are signed uncompressed. itsdangerous tries zlib on every payload (~5 µs even for a
# dozen bytes) and keeps the result only when it is shorter; a CSRF token (40 random hex digits), a session holding
# one and a time stamp never get shorter, and a payload that would is still read back the same (only longer).
COMPRESS_FROM = 64


# What itsdangerous's _CompactJSON.dumps(obj) builds on every call (json.dumps with options makes a new encoder).
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class _SignerPerSalt:
    """A URL-safe serializer that builds its signer once per salt instead of once per call."""

    def dumps(self, obj: Any, salt: str | bytes | None = None) -> Any:
        """As Serializer.dumps: the payload signed, as text for a text serializer."""
        signed = self.make_signer(salt).sign(self.dump_payload(obj))
        return signed.decode() if self.is_text_serializer else signed  # type: ignore[attr-defined]

    def dump_payload(self, obj: Any) -> bytes:
        """As URLSafeSerializerMixin.dump_payload, skipping zlib for payloads under COMPRESS_FROM bytes."""
        if self.serializer is _CompactJSON and not self.serializer_kwargs:  # type: ignore[attr-defined]
            # A string (a CSRF secret) as JSONEncoder.encode writes one with ensure_ascii off, minus its call.
            json = (encode_basestring(obj) if type(obj) is str else _COMPACT_JSON.encode(obj)).encode()
        else:
            json = want_bytes(self.serializer.dumps(obj, **self.serializer_kwargs))  # type: ignore[attr-defined]
        if len(json) >= COMPRESS_FROM:
            compressed = zlib.compress(json)
            if len(compressed) < len(json) - 1:
                return b"." + _base64(compressed)
        return _base64(json)

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        """The signer for `salt` (default: the serializer's), built on first use."""
        cache: dict[Any, Signer] = self.__dict__.setdefault("_signers", {})
        found = cache.get(salt)
        if found is None:
            found = cache[salt] = super().make_signer(salt)  # type: ignore[misc]
        return found


class KeyedURLSafeSerializer(_SignerPerSalt, URLSafeSerializer):
    """URLSafeSerializer with one KeyedSigner per salt."""

    default_signer = KeyedSigner


class KeyedURLSafeTimedSerializer(_SignerPerSalt, URLSafeTimedSerializer):
    """URLSafeTimedSerializer with one KeyedTimestampSigner per salt."""

    default_signer = KeyedTimestampSigner


def _keys(secret_key: str | bytes | tuple[str | bytes, ...]) -> tuple[str | bytes, ...]:
    return secret_key if isinstance(secret_key, tuple) else (secret_key,)


@lru_cache(maxsize=32)
def serializer(secret_key: str | bytes | tuple[str | bytes, ...], salt: str) -> URLSafeSerializer:
    """An URLSafeSerializer for this key (or keys, newest last) and salt, built once."""
    return KeyedURLSafeSerializer(list(_keys(secret_key)), salt=salt)


@lru_cache(maxsize=32)
def timed_serializer(
    secret_key: str | bytes | tuple[str | bytes, ...],
    salt: str,
    serializer: Any = None,
    signer_kwargs: tuple[tuple[str, Any], ...] = (),
) -> URLSafeTimedSerializer:
    """An URLSafeTimedSerializer for this key (or keys, newest last), salt and options, built once."""
    return KeyedURLSafeTimedSerializer(
        list(_keys(secret_key)), salt=salt, serializer=serializer, signer_kwargs=dict(signer_kwargs)
    )


# Flask-WTF's salt: its validate_csrf (CSRFProtect on every POST) checks the tokens made here.
CSRF_SALT = "wtf-csrf-token"


def csrf_token(secret_key: str | bytes | None = None, field_name: str | None = None) -> str:
    """This request's signed CSRF token, exactly as flask_wtf.csrf.generate_csrf makes it, with a kept serializer.

    The raw secret lives in the visitor's own session (a new random one for a new session) and the signed token
    is kept in `g`, so nothing is shared between two requests, let alone two visitors.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    if secret_key is None:
        secret_key = config.get("WTF_CSRF_SECRET_KEY", app.secret_key)
    if field_name is None:
        field_name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if secret_key is None or field_name is None:
        raise RuntimeError("A secret key and a field name are required to use CSRF.")
    # The objects behind the proxies, looked up once: this runs on every landing page view.
    request_g, visitor = g._get_current_object(), session._get_current_object()  # type: ignore[attr-defined]
    # g's own dict: its `in`, setattr and get are each a Python call on the namespace object.
    kept = request_g.__dict__
    if field_name not in kept:
        signer = timed_serializer(secret_key, CSRF_SALT)
        if field_name not in visitor:
            raw = visitor[field_name] = secrets.token_hex(20)
        else:
            raw = visitor[field_name]
        try:
            token = signer.dumps(raw)
        except TypeError:
            raw = visitor[field_name] = secrets.token_hex(20)
            token = signer.dumps(raw)
        kept[field_name] = token
    return kept.get(field_name)


class FormCSRF(_FlaskFormCSRF):
    """Flask-WTF's form CSRF (validation unchanged) making its token with csrf_token()."""

    def generate_csrf_token(self, csrf_token_field: Any) -> str:
        """The request's token, signed once per request."""
        return csrf_token(self.meta.csrf_secret, self.meta.csrf_field_name)


# Values Flask's TaggedJSONSerializer passes through untagged (exact types: a str subclass such as Markup is tagged).
_PLAIN = (str, int, float, bool, type(None))


# What Flask's default JSON provider writes a session of plain values with (its defaults), kept: json.dumps with
# any option builds a new encoder per call.
_PLAIN_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, sort_keys=True)


class SessionJSON(TaggedJSONSerializer):
    """Flask's session serializer; a session of plain values (a new visitor's holds only the CSRF secret) skips the
    tagging walk, which returns such a session unchanged, and is dumped as the app's JSON provider dumps it."""

    def dumps(self, value: Any) -> str:
        """The session as Flask's TaggedJSONSerializer dumps it."""
        if (
            type(value) is dict
            and not (len(value) == 1 and next(iter(value)) in self.tags)
            and all(type(key) is str and type(item) in _PLAIN for key, item in value.items())
        ):
            provider = current_app.json
            if type(provider) is DefaultJSONProvider and provider.sort_keys and provider.ensure_ascii:
                if len(value) == 1:
                    ((key, item),) = value.items()
                    if type(item) is str and _json_bare(key) and _json_bare(item):
                        # A new visitor's session: JSONEncoder.encode builds an encoder and a closure per call.
                        return f'{{"{key}":"{item}"}}'
                return _PLAIN_JSON.encode(value)
            return json_dumps(value, separators=(",", ":"))
        return super().dumps(value)


def _json_bare(text: str) -> bool:
    """Whether JSON writes `text` between its quotes as it is (printable ASCII but for the quote and backslash)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def key_set(app: Flask) -> tuple[str | bytes, ...]:
    """The app's signing keys, the current one last: those being rotated out (SECRET_KEY_FALLBACKS) still verify."""
    return (*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key)


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with the signing serializer built once per key set instead of twice a request."""

    serializer = SessionJSON()

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """The same serializer as Flask's (keys, salt, JSON tags, key derivation, digest), kept per key set."""
        if not app.secret_key:
            return None
        options = (("key_derivation", self.key_derivation), ("digest_method", self.digest_method))
        return timed_serializer(key_set(app), self.salt, self.serializer, options)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        """Flask's save_session (3.1), step for step, but for how it adds "Vary: Cookie" (see _vary_cookie) and
        writes the Set-Cookie header (see _set_cookie)."""
        name = self.get_cookie_name(app)
        attributes = {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "partitioned": self.get_cookie_partitioned(app),
            "samesite": self.get_cookie_samesite(app),
            "httponly": self.get_cookie_httponly(app),
        }
        varied = session.accessed
        if varied:
            _vary_cookie(response)
        if not session:
            if session.modified:
                response.delete_cookie(name, **attributes)
                _vary_cookie(response)
            return
        if not self.should_set_cookie(app, session):
            return
        expires = self.get_expiration_time(app, session)
        val = self.get_signing_serializer(app).dumps(dict(session))  # type: ignore[union-attr]
        _set_cookie(app, response, name, val, expires, attributes)
        if not varied:  # Flask adds it again; once is the same header
            _vary_cookie(response)


# What follows the value in a Set-Cookie header without an expiry date, per cookie name and attributes: the same
# for every new visitor of a site. Only a few combinations ever occur (the app's session settings).
_COOKIE_TAILS: dict[tuple[Any, ...], str] = {}
# Characters a signed value is made of (URL-safe base64 and dots): Werkzeug never quotes them.
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_.-]*")


def _set_cookie(app: Flask, response: Any, name: str, value: str, expires: Any, attributes: dict[str, Any]) -> None:
    """response.set_cookie(name, value, expires=expires, **attributes): the very header, the attributes' part
    written once per name and settings when the cookie has no expiry date and its value needs no quoting."""
    max_size = app.config.get("MAX_COOKIE_SIZE", 4093)
    if expires is None and name.isascii() and _COOKIE_VALUE.fullmatch(value) is not None:
        key = (name, *attributes.values())
        tail = _COOKIE_TAILS.get(key)
        if tail is None:
            tail = _COOKIE_TAILS[key] = dump_cookie(name, "", **attributes).removeprefix(f"{name}=")
        header = f"{name}={value}{tail}"
        if not max_size or len(header) <= max_size:  # a larger one goes through Werkzeug, which warns
            response.headers.add("Set-Cookie", header)
            return
    response.set_cookie(name, value, expires=expires, **attributes)


def _vary_cookie(response: Any) -> None:
    """response.vary.add("Cookie"), without parsing the header into a set and writing it back when it has no Vary
    yet or says exactly that (a new visitor's page view added it twice: about half of saving the session)."""
    headers = response.headers
    # getlist, not get: Headers.get builds and catches a BadRequestKeyError when the header is missing.
    current = headers.getlist("Vary")
    if not current:
        headers.add("Vary", "Cookie")
    elif current[0] != "Cookie":  # response.vary reads the first Vary header only
        response.vary.add("Cookie")


def validate_csrf(data: str | None) -> None:
    """flask_wtf.csrf.validate_csrf with the kept serializer: the same checks in the same order, the same reasons."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    # Flask-WTF's _get_config: the setting or its default; None refused for the key and field, "no limit" for time.
    secret_key = config.get("WTF_CSRF_SECRET_KEY", app.secret_key)
    field_name = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    time_limit = config.get("WTF_CSRF_TIME_LIMIT", 3600)
    if secret_key is None:
        raise RuntimeError("A secret key is required to use CSRF.")
    if field_name is None:
        raise RuntimeError("A field name is required to use CSRF.")
    if not data:
        raise ValidationError("The CSRF token is missing.")
    if field_name not in session:
        raise ValidationError("The CSRF session token is missing.")
    try:
        token = timed_serializer(secret_key, CSRF_SALT).loads(data, max_age=time_limit)
    except SignatureExpired as exc:
        raise ValidationError("The CSRF token has expired.") from exc
    except BadData as exc:
        raise ValidationError("The CSRF token is invalid.") from exc
    if not hmac.compare_digest(session[field_name], token):
        raise ValidationError("The CSRF tokens do not match.")


class CSRFProtect(_CSRFProtect):
    """Flask-WTF's CSRFProtect checking each POST's token with validate_csrf above; protect() is otherwise its own
    (Flask-WTF 1.3.0), line for line but for the order of two checks: a serializer built per POST derived its key
    for every signup."""

    def protect(self, apply_exemptions: bool = False) -> None:
        """Validate CSRF on the current request (a 400 CSRFError when it fails), as Flask-WTF does."""
        # The method first, where Flask-WTF looks up exemptions first: either way such a request only returns, and
        # the lookup (the blueprint, the view function, its formatted name) cost every page view.
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        try:
            validate_csrf(self._get_csrf_token())
        except ValidationError as exc:
            logger.info(exc.args[0])
            self._error_response(exc.args[0])
        if request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True
