"""The consultation form: fields, validation, and the spam checks that need no captcha."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers
from flask import Flask, current_app
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer
from wtforms import BooleanField, EmailField, HiddenField, RadioField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from core import signing
from core.clock import app_now, now
from core.text import strip_bidi
from leads import services
from leads.consent import email_consent_text, privacy_notice_text
from leads.models import CONTACT_METHODS, INTERESTS, UTM_FIELDS

# Control characters, CR/LF included; a single-line field keeps none of them (no header or log injection).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A multi-line field keeps newlines and tabs only.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
TIMESTAMP_SALT = "leads.signup-form-started"


def single_line(value: Any) -> Any:
    """Strip control and bidirectional-override characters and surrounding space from a one-line value."""
    if not isinstance(value, str):
        return value
    if value.isascii() and value.isprintable():
        return value.strip()  # nothing to strip but spaces: no control or bidirectional character is printable ASCII
    return _CONTROL.sub(" ", strip_bidi(value)).strip()


def multi_line(value: Any) -> Any:
    """Strip control characters except newlines and tabs, and bidirectional overrides; normalize line endings."""
    if not isinstance(value, str):
        return value
    return _CONTROL_MULTILINE.sub("", strip_bidi(value).replace("\r\n", "\n").replace("\r", "\n")).strip()


def capped(limit: int) -> Any:
    """A filter that cleans a hidden one-line value and cuts it to a column's width."""

    def _filter(value: Any) -> Any:
        value = single_line(value)
        return value[:limit] if isinstance(value, str) else value

    return _filter


def _serializer(app: Flask | None = None) -> URLSafeSerializer:
    # Built once per key: every landing page view signs a start time.
    return signing.serializer((app or current_app).config["SECRET_KEY"], TIMESTAMP_SALT)


# The last stamp signed: (serializer, time, signed). Views in the same tenth of a second share it.
_last_stamp: tuple[Any, float, str] | None = None


def sign_started(app: Flask | None = None) -> str:
    """A signed 'form shown at' time, to the tenth of a second, rendered into the form and checked on post.

    The stamp holds nothing of the visitor: landing views in the same tenth of a second get the same one, signed
    once (a signature was ~5% of a landing view's time under load). `app`: the current app, when the caller
    holds it (the landing view: each proxy lookup finds the context again).
    """
    global _last_stamp
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    serializer = _serializer(app)
    moment = math.floor(app_now(app).timestamp() * 10) / 10
    last = _last_stamp
    if last is not None and last[0] is serializer and last[1] == moment:
        return last[2]
    signed = serializer.dumps(moment)
    _last_stamp = (serializer, moment, signed)
    return signed


def seconds_since(token: str | None) -> float | None:
    """Seconds since the signed time in token, or None when it is missing or forged."""
    if not token:
        return None
    try:
        started = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(started, int | float):
        return None
    return now().timestamp() - float(started)


def phone_e164(text: str) -> str | None:
    """A real number for the clinic's region (DEFAULT_PHONE_REGION) or in +country form, as E.164; else None."""
    try:
        number = phonenumbers.parse(text, current_app.config.get("DEFAULT_PHONE_REGION", "US"))
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def looks_like_a_bot(honeypot: str | None, started: str | None) -> bool:
    """The honeypot was filled, or the form came back faster than a person can fill it."""
    if (honeypot or "").strip():
        return True
    elapsed = seconds_since(started)
    return elapsed is None or elapsed < float(current_app.config.get("FORM_MIN_FILL_SECONDS", 0))


class SignupForm(FlaskForm):
    """Ask for a free consultation."""

    class Meta:
        # Flask-WTF's CSRF field and checks; only the token is signed with a serializer kept per key.
        csrf_class = signing.FormCSRF

    first_name = StringField(
        "First name",
        filters=[single_line],
        validators=[
            DataRequired("Please enter your first name."),
            Length(max=100, message="Keep it under 100 characters."),
        ],
        render_kw={"autocomplete": "given-name"},
    )
    last_name = StringField(
        "Last name (optional)",
        filters=[single_line],
        validators=[Optional(), Length(max=100, message="Keep it under 100 characters.")],
        render_kw={"autocomplete": "family-name"},
    )
    email = EmailField(
        "Email",
        filters=[single_line],
        validators=[
            DataRequired("Please enter your email address."),
            Length(max=320, message="This address is too long."),
        ],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    phone = TelField(
        "Phone (optional)",
        filters=[single_line],
        validators=[Optional(), Length(max=40, message="This phone number is too long.")],
        render_kw={"autocomplete": "tel"},
    )
    interest = SelectField(
        "Area of interest",
        choices={"": "Choose one", **INTERESTS},
        validators=[InputRequired("Please choose the area you would like to talk about.")],
    )
    preferred_contact = RadioField(
        "How should we contact you?",
        choices=dict(CONTACT_METHODS),
        default="email",
        validators=[InputRequired("Please choose how we should contact you.")],
    )
    message = TextAreaField(
        "Message (optional)",
        filters=[multi_line],
        validators=[Optional(), Length(max=2000, message="Please keep your message under 2,000 characters.")],
        render_kw={"rows": 5},
    )
    email_consent = BooleanField(email_consent_text(), default=False)
    privacy_ack = BooleanField(
        privacy_notice_text(),
        validators=[DataRequired("Please confirm you have read the privacy notice.")],
    )

    utm_source = HiddenField(filters=[capped(100)])
    utm_medium = HiddenField(filters=[capped(100)])
    utm_campaign = HiddenField(filters=[capped(100)])
    utm_term = HiddenField(filters=[capped(100)])
    utm_content = HiddenField(filters=[capped(100)])
    referrer = HiddenField(filters=[capped(1000)])
    landing = HiddenField(filters=[capped(64)])
    # The headline variant this page view showed, signed (leads.experiments); empty when nothing is tested.
    landing_variant = HiddenField(filters=[capped(400)])
    # Filled by optional JavaScript with the browser's IANA zone; anything else is ignored.
    tz = HiddenField(filters=[capped(64)])
    started = HiddenField(filters=[capped(200)])
    # The honeypot: people never see it (CSS), bots fill it.
    website = StringField(
        "Leave this field empty",
        render_kw={"class": "hp-field", "tabindex": "-1", "autocomplete": "off"},
    )

    def offer(self, interests: tuple[tuple[str, str], ...]) -> SignupForm:
        """Ask about this campaign's areas of interest (a hair page never asks about knees)."""
        self.interest.choices = {"": "Choose one", **dict(interests)}
        return self

    def validate_interest(self, field: SelectField) -> None:
        """Only the listed areas."""
        offered = dict(field.choices) if isinstance(field.choices, dict) else dict(field.choices or [])
        if not field.data or field.data not in offered:
            raise ValidationError("Please choose the area you would like to talk about.")

    def validate_email(self, field: EmailField) -> None:
        """A well-formed address, normalized; deliverability is not checked (no network on submit)."""
        try:
            field.data = services.normalize_email(field.data or "")
        except services.UnsendableEmail as exc:
            raise ValidationError(str(exc)) from None
        except ValueError:
            raise ValidationError("Enter an email address like name@example.com.") from None

    def validate_phone(self, field: TelField) -> None:
        """A real number for the clinic's region or in +country form; stored as E.164."""
        if not field.data:
            field.data = None
            return
        number = phone_e164(field.data)
        if number is None:
            raise ValidationError("Enter a phone number like (303) 555-0123, or +44 20 7946 0958 outside the US.")
        field.data = number

    def validate_preferred_contact(self, field: RadioField) -> None:
        """Calls and texts need a number."""
        if field.data in {"phone", "text"} and not (self.phone.data or "").strip():
            raise ValidationError("Add a phone number above so we can call or text you, or choose email.")

    @property
    def is_bot(self) -> bool:
        """The honeypot was filled, or the form came back faster than a person can fill it."""
        return looks_like_a_bot(self.website.data, self.started.data)

    def signup_data(self) -> dict[str, Any]:
        """The visitor's answers in the shape services.capture_lead takes."""
        return {
            "first_name": self.first_name.data,
            "last_name": self.last_name.data or None,
            "email": self.email.data,
            "phone": self.phone.data or None,
            "interest": self.interest.data,
            "preferred_contact": self.preferred_contact.data,
            "message": self.message.data or None,
            "email_consent": bool(self.email_consent.data),
            "privacy_ack": bool(self.privacy_ack.data),
            "timezone": services.valid_timezone(self.tz.data),
        }

    def tracking(self) -> dict[str, Any]:
        """The hidden attribution fields in the shape services.capture_lead takes as meta."""
        tags = {name: self[name].data or None for name in UTM_FIELDS}
        return {**tags, "referrer": self.referrer.data or None}


@dataclass(frozen=True)
class PlainSignup:
    """A post every field of which SignupForm would accept as it is, read without building the form."""

    data: dict[str, Any]
    tracking: dict[str, Any]
    landing_variant: str | None
    honeypot: str
    started: str | None


_TRACKING = {**{name: capped(100) for name in UTM_FIELDS}, "referrer": capped(1000)}


def _max_length(unbound: Any) -> int:
    """The Length limit of one of SignupForm's fields: one source for both readings."""
    return next(v.max for v in unbound.kwargs["validators"] if isinstance(v, Length))


_NAME_MAX, _LAST_NAME_MAX = _max_length(SignupForm.first_name), _max_length(SignupForm.last_name)
_EMAIL_MAX, _PHONE_MAX = _max_length(SignupForm.email), _max_length(SignupForm.phone)
_MESSAGE_MAX = _max_length(SignupForm.message)
_FALSE = ("false", "")
CONTACT_CHOICES = frozenset(dict(CONTACT_METHODS))


def _first(formdata: Mapping[str, Any], name: str) -> str | None:
    value = formdata.get(name)
    return value if isinstance(value, str) else None


def plain_signup(formdata: Mapping[str, Any], interests: tuple[tuple[str, str], ...]) -> PlainSignup | None:
    """The answers of a post SignupForm would accept unchanged, or None: then SignupForm reads it and says what
    is wrong beside each field.

    Building and validating the WTForms form cost a signup about half a millisecond, more than storing it; most
    posts are correct, so they are read here with the form's own filters, limits and rules, and anything this
    reading is not sure of (a blank required field, a length past a limit, a phone number that does not parse)
    goes through the form as before. The two readings are compared in tests/leads/test_plain_signup.py.
    """
    first_name = single_line(_first(formdata, "first_name"))
    email_raw = single_line(_first(formdata, "email"))
    interest = _first(formdata, "interest")
    contact = _first(formdata, "preferred_contact")
    privacy = _first(formdata, "privacy_ack")
    if not first_name or len(first_name) > _NAME_MAX or not email_raw or len(email_raw) > _EMAIL_MAX:
        return None
    if not interest or interest not in dict(interests) or contact not in CONTACT_CHOICES:
        return None
    if privacy is None or privacy in _FALSE:
        return None
    phone_text = single_line(_first(formdata, "phone"))
    phone = phone_e164(phone_text) if phone_text and len(phone_text) <= _PHONE_MAX else None
    if (phone_text and phone is None) or (contact != "email" and phone is None):
        return None  # a number to correct, or calls and texts without one: the form says so beside the field
    last_name = single_line(_first(formdata, "last_name"))
    message = multi_line(_first(formdata, "message"))
    if (last_name and len(last_name) > _LAST_NAME_MAX) or (message and len(message) > _MESSAGE_MAX):
        return None
    try:
        email = services.normalize_email(email_raw)
    except ValueError:
        return None
    consent = _first(formdata, "email_consent")
    return PlainSignup(
        data={
            "first_name": first_name,
            "last_name": last_name or None,
            "email": email,
            "phone": phone,
            "interest": interest,
            "preferred_contact": contact,
            "message": message or None,
            "email_consent": consent is not None and consent not in _FALSE,
            "privacy_ack": True,
            "timezone": services.valid_timezone(capped(64)(_first(formdata, "tz"))),
        },
        tracking={name: clean(_first(formdata, name)) or None for name, clean in _TRACKING.items()},
        landing_variant=capped(400)(_first(formdata, "landing_variant")),
        honeypot=_first(formdata, "website") or "",
        started=capped(200)(_first(formdata, "started")),
    )
