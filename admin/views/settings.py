"""Site settings (admins only): the clinic's details, the home page's words, the privacy notice and the medical
disclaimer. The environment's values are the defaults; what is saved here wins, within seconds, everywhere."""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField

from admin.blueprint import admin_required, bp
from core.db import db
from studio.services import audit
from studio.settings import SETTINGS, save_settings, stored


class SettingsForm(FlaskForm):
    """One field per setting (added below, from studio.settings)."""


for _setting in SETTINGS:
    setattr(SettingsForm, _setting.key, (TextAreaField if _setting.multiline else StringField)(_setting.label))


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings() -> str | tuple[str, int] | Response:
    """Every setting with its default from the environment; an empty field goes back to the default."""
    form = SettingsForm()
    saved = stored(db.session)
    held = current_app.extensions["settings"]
    if form.validate_on_submit():
        values = {s.key: form[s.key].data or "" for s in SETTINGS}
        with db.write_transaction() as session:
            problems = save_settings(session, values, current_user.email)
            if problems:
                session.rollback()
        if not problems:
            flash("Settings saved: the site and new emails use them within seconds.", "success")
            return redirect(url_for("admin.settings"))
        for key, message in problems.items():
            form[key].errors = [message]
    elif not form.is_submitted():
        for setting in SETTINGS:
            form[setting.key].data = saved[setting.key].value if setting.key in saved else ""
    return (
        render_template(
            "admin/settings.html",
            form=form,
            settings=SETTINGS,
            saved=saved,
            defaults=held.defaults,
            entries=audit(db.session, "settings", limit=30),
        ),
        400 if form.errors else 200,
    )
