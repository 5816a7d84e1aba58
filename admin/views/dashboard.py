"""The dashboard: the funnel, signups per day, top sources and campaigns, alerts."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from admin import snapshots
from admin.blueprint import bp
from admin.charts import daily_svg, funnel_svg
from admin.forms import ActionForm
from core.clock import now
from core.db import db
from mailer.ledger import clear_auth_failure
from studio.registry import registry

# Who confirms that an email was delivered, per MAIL_BACKEND (see admin.queries.dashboard_figures).
DELIVERED_BY = {
    "sendgrid": "SendGrid's delivered events",
    "outbox": "the outbox (an email counts once written)",
    "console": "the console backend (an email counts once logged)",
}


@bp.get("/")
def dashboard() -> str:
    """Figures for the chosen period (7, 30 or 90 days) and campaign."""
    try:
        days = int(request.args.get("days", snapshots.DEFAULT_PERIOD))
    except ValueError:
        days = snapshots.DEFAULT_PERIOD
    days = days if days in snapshots.PERIODS else snapshots.DEFAULT_PERIOD
    slugs = [c.slug for c in registry().all()]
    campaign = request.args.get("campaign", "")
    campaign = campaign if campaign in slugs else ""
    cache_seconds = float(current_app.config["DASHBOARD_CACHE_SECONDS"])
    figures = snapshots.dashboard(days, campaign, now(), current_app.config["CLINIC_TIMEZONE"], cache_seconds)
    scope = f" for {campaign}" if campaign else ""
    return render_template(
        "admin/dashboard.html",
        figures=figures,
        periods=snapshots.PERIODS,
        slugs=slugs,
        funnel_chart=funnel_svg(figures.funnel, f"Funnel, last {days} days{scope}"),
        action_form=ActionForm(),
        daily_chart=daily_svg(figures.per_day, f"Signups per day, last {days} days{scope}"),
        delivered_by=DELIVERED_BY.get(current_app.config["MAIL_BACKEND"], "the provider"),
        cache_seconds=cache_seconds,
    )


@bp.post("/provider/resume")
def provider_resume() -> Response:
    """Lift the sending pause once the API key or setting is fixed; workers resume sending on their next tick."""
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction() as s:
        clear_auth_failure(s)
    current_app.logger.warning("provider pause lifted by user=%s", current_user.id)
    flash("Sending resumed. If the key or the setting is still wrong, sending pauses again at once.", "success")
    return redirect(url_for("admin.dashboard"))
