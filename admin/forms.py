"""Forms of the admin screens; every POST form carries a CSRF token (Flask-WTF)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, Optional

from admin.models import ROLES
from leads.models import STATUSES

STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "booked": "Booked",
    "patient": "Patient",
    "not_a_fit": "Not a fit",
}


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class StatusForm(FlaskForm):
    """Change a lead's status."""

    status = SelectField("New status", choices=[SelectChoice(s, STATUS_LABELS[s]) for s in STATUSES])


class NoteForm(FlaskForm):
    """A staff note."""

    body = TextAreaField("Note", validators=[DataRequired(), Length(max=5000)])


class ConfirmForm(FlaskForm):
    """An action that needs an explicit confirmation."""

    confirm = BooleanField("I understand", validators=[InputRequired(message="Tick the box to confirm.")])


class EraseForm(FlaskForm):
    """Erase a lead: the operator types the word ERASE."""

    confirm = StringField("Type ERASE to confirm", validators=[DataRequired()])


class PreviewLeadForm(FlaskForm):
    """Pick the lead a campaign preview is rendered for (a GET form)."""

    class Meta:
        csrf = False

    lead = StringField("Lead id or email (empty: a sample lead)", validators=[Length(max=320)])


class UserCreateForm(FlaskForm):
    """A new staff account."""

    email = EmailField("Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)])
    role = SelectField("Role", choices=[SelectChoice(r, r.capitalize()) for r in ROLES], default="marketer")
    password = PasswordField("Password (at least 12 characters)", validators=[DataRequired(), Length(min=12)])
    password2 = PasswordField(
        "Repeat the password", validators=[DataRequired(), EqualTo("password", message="The passwords differ.")]
    )


class PasswordForm(FlaskForm):
    """Set a new password for a user."""

    password = PasswordField("New password (at least 12 characters)", validators=[DataRequired(), Length(min=12)])
    password2 = PasswordField(
        "Repeat the password", validators=[DataRequired(), EqualTo("password", message="The passwords differ.")]
    )


class NewCampaignForm(FlaskForm):
    """A new campaign: its address and its name (everything else starts from a template)."""

    slug = StringField(
        "Address of the landing page (/slug)",
        validators=[DataRequired(message="is required"), Length(max=80)],
        description="lowercase letters, digits and dashes, e.g. hair-restoration-prp",
    )
    name = StringField("Name", validators=[DataRequired(message="is required"), Length(max=120)])


class DuplicateForm(NewCampaignForm):
    """A copy of a campaign under a new address and name."""


class PublishForm(FlaskForm):
    """Publish the draft revision the marketer reviewed, with an optional note."""

    revision = HiddenField()
    note = StringField("Note for the history (optional)", validators=[Length(max=200)])


class TimelineForm(FlaskForm):
    """The timeline simulator: when a visitor signs up, where, and what they are interested in (a GET form)."""

    class Meta:
        csrf = False

    signup = DateTimeLocalField(
        "Signs up at (their local time; empty: now)", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )
    tz = StringField("Their time zone", validators=[Length(max=80)])
    interest = SelectField("Area of interest", choices=[], validate_choice=True)
