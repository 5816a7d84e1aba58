"""The consultation form: fields, validation, and the spam checks that need no captcha."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
from flask import current_app
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer
from wtforms import BooleanField, EmailField, HiddenField, RadioField, SelectField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from core import signing
from core.clock import now
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


def _serializer() -> URLSafeSerializer:
    # Built once per key: every landing page view signs a start time.
    return signing.serializer(current_app.config["SECRET_KEY"], TIMESTAMP_SALT)


def sign_started() -> str:
    """A signed 'form shown at' time, rendered into the form and checked on post."""
    return _serializer().dumps(round(now().timestamp(), 3))


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
        region = current_app.config.get("DEFAULT_PHONE_REGION", "US")
        try:
            number = phonenumbers.parse(field.data, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValidationError("Enter a phone number like (303) 555-0123, or +44 20 7946 0958 outside the US.")
        field.data = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def validate_preferred_contact(self, field: RadioField) -> None:
        """Calls and texts need a number."""
        if field.data in {"phone", "text"} and not (self.phone.data or "").strip():
            raise ValidationError("Add a phone number above so we can call or text you, or choose email.")

    @property
    def is_bot(self) -> bool:
        """The honeypot was filled, or the form came back faster than a person can fill it."""
        if (self.website.data or "").strip():
            return True
        elapsed = seconds_since(self.started.data)
        return elapsed is None or elapsed < float(current_app.config.get("FORM_MIN_FILL_SECONDS", 0))

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
