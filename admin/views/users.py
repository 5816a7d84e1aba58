"""Staff accounts (admins only): list, create, deactivate, reset a password."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_user
from sqlalchemy import select

from admin.blueprint import admin_required, bp
from admin.forms import ActionForm, PasswordForm, UserCreateForm
from admin.models import User
from admin.users import UserError, create_user, set_password
from core.db import db


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users() -> str | tuple[str, int] | Response:
    """Everyone who can sign in, and a form to add someone."""
    form = UserCreateForm()
    status = 200
    if form.validate_on_submit():
        try:
            with db.write_transaction() as s:
                user = create_user(s, form.email.data or "", form.password.data or "", form.role.data or "marketer")
            flash(f"{user.email} can now sign in as {user.role}.", "success")
            return redirect(url_for("admin.users"))
        except UserError as exc:
            form.email.errors = [str(exc)]
    if form.is_submitted():
        status = 400
    rows = list(db.session.scalars(select(User).order_by(User.email)))
    return render_template("admin/users.html", rows=rows, form=form, action_form=ActionForm()), status


@bp.post("/users/<int:user_id>/active")
@admin_required
def user_toggle(user_id: int) -> Response:
    """Deactivate or reactivate an account (you cannot deactivate yourself)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction() as s:
        user = s.get(User, user_id)
        if user is None:
            abort(404)
        if user.id == current_user.id:
            flash("You cannot deactivate your own account.", "error")
            return redirect(url_for("admin.users"))
        user.active = not user.active
        user.end_sessions()  # reactivating must not bring back the sessions of before
        flash(f"{user.email} {'reactivated' if user.active else 'deactivated'}.", "success")
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@admin_required
def user_password(user_id: int) -> str | tuple[str, int] | Response:
    """Set a new password for an account, ending its sessions everywhere."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    form = PasswordForm()
    if form.validate_on_submit():
        with db.write_transaction() as s:
            changed = s.get(User, user_id)
            set_password(changed, form.password.data or "")
        if changed.id == current_user.id:
            # The new password signed everyone out, this browser included; keep the one that changed it.
            login_user(changed)
        flash(f"Password of {user.email} changed; every session of that account has ended.", "success")
        return redirect(url_for("admin.users"))
    return render_template("admin/user_password.html", user=user, form=form), 400 if form.is_submitted() else 200
