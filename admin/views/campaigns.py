"""Campaigns: the list, step statistics, pause and resume, previews and test sends of the live version."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from admin.blueprint import PREVIEW_CSP, bp
from admin.composers import sample_lead
from admin.forms import ActionForm, NewCampaignForm, PreviewLeadForm
from admin.queries import STEP_FIGURES, enrollment_counts, experiment_results, step_stats
from admin.services import queue_test_send, test_send_addresses
from core.clock import now
from core.db import db
from leads.models import Lead
from mailer.models import Delivery
from nurture.composers import compose_step
from nurture.models import CampaignState
from studio import services as studio_services
from studio.definitions import Campaign, Step
from studio.registry import registry


def _campaign(slug: str) -> Campaign:
    campaign = registry().get(slug)
    if campaign is None:
        abort(404)
    return campaign


def _step(campaign: Campaign, step_id: str) -> Step:
    step = campaign.step(step_id)
    if step is None:
        abort(404)
    return step


def _rate(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


@bp.get("/campaigns")
def campaigns() -> str:
    """Every campaign with its draft status, enrollment counts and pause state; new, duplicate, archive."""
    return campaigns_page()


def campaigns_page(new_form: NewCampaignForm | None = None) -> str:
    """The campaigns list (with the New form's errors when it was refused)."""
    from admin.views.studio import studio_rows  # the studio's views import this module's preview helpers

    rows, archived = studio_rows()
    states = {s.slug: s for s in db.session.scalars(select(CampaignState))}
    live = registry()
    return render_template(
        "admin/campaigns.html",
        rows=rows,
        archived=archived,
        live={row["record"].slug: live.get(row["record"].slug) for row in rows},
        counts=enrollment_counts(db.session),
        states=states,
        action_form=ActionForm(),
        new_form=new_form or NewCampaignForm(formdata=None),
    )


@bp.get("/campaigns/<slug>")
def campaign_detail(slug: str) -> str:
    """A campaign's steps: waiting now, sent, failed and skipped; delivered, opened... with their rates."""
    campaign = _campaign(slug)
    stats = step_stats(db.session, slug)
    empty = dict.fromkeys((*STEP_FIGURES, "waiting"), 0)
    rows = []
    for step in campaign.steps:
        s = stats.get(step.id, empty)
        rates = {k: _rate(s[k], s["sent"]) for k in ("delivered", "opened", "clicked", "unsubscribed", "bounced")}
        rows.append({"step": step, "stats": s, "rates": rates})
    state = db.session.get(CampaignState, slug)
    return render_template(
        "admin/campaign.html",
        campaign=campaign,
        rows=rows,
        counts=enrollment_counts(db.session).get(slug, {}),
        state=state,
        action_form=ActionForm(),
        lead_form=PreviewLeadForm(request.args),
        experiments=experiment_results(db.session, campaign),
    )


@bp.post("/campaigns/<slug>/pause")
def campaign_pause(slug: str) -> Response:
    """Pause a campaign: nothing of it sends until it is resumed."""
    return _set_paused(slug, True)


@bp.post("/campaigns/<slug>/resume")
def campaign_resume(slug: str) -> Response:
    """Resume a paused campaign."""
    return _set_paused(slug, False)


def _set_paused(slug: str, paused: bool) -> Response:
    _campaign(slug)
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction() as s:
        state = s.get(CampaignState, slug)
        if state is None:
            state = CampaignState(slug=slug)
            s.add(state)
        state.paused = paused
        state.paused_at = now() if paused else None
        state.paused_by = current_user.email if paused else None
        state.updated_at = now()
    flash(f"{slug} {'paused: nothing of it sends' if paused else 'resumed'}.", "success")
    if request.form.get("back") == "list":
        return redirect(url_for("admin.campaigns"))
    return redirect(url_for("admin.campaign_detail", slug=slug))


def _preview_lead(raw: str) -> tuple[Lead, str | None]:
    """The chosen lead (by id or email), or the sample lead with a message saying why."""
    raw = (raw or "").strip()
    if not raw:
        return sample_lead(), None
    lead = None
    if raw.isdecimal() and len(raw) <= 18:
        lead = db.session.get(Lead, int(raw))
    else:
        lead = db.session.scalars(select(Lead).where(Lead.email == raw.lower())).first()
    if lead is None or lead.erased_at:
        return sample_lead(), f"No lead {raw!r}; showing the sample lead."
    return lead, None


def _compose(campaign: Campaign, step: Step, lead: Lead) -> tuple[Any, str | None]:
    try:
        return compose_step(campaign, step, lead, Delivery(id=0, kind="nurture", dedupe_key="preview")), None
    except Exception as exc:  # noqa: BLE001 - a broken step must show its error, not a 500
        return None, str(exc) or type(exc).__name__


def _variant_arg(step: Step) -> str | None:
    """The subject variant a preview asks for (?variant=b), when the step tests that one."""
    name = request.args.get("variant", "")
    return name if any(v.name == name for v in step.variants) else None


@bp.post("/campaigns/<slug>/experiments/<where>/promote")
def experiment_promote(slug: str, where: str) -> Response:
    """Publish a new version with the winning variant alone, when the rule says there is a winner."""
    campaign = _campaign(slug)
    if not ActionForm().validate_on_submit():
        abort(400)
    result = next((r for r in experiment_results(db.session, campaign) if r.where == where), None)
    if result is None:
        abort(404)
    if result.verdict.winner is None:
        flash("Not promoted: the test is not sure of a winner yet. " + result.verdict.words, "error")
        return redirect(url_for("admin.campaign_detail", slug=slug, _anchor="experiments"))
    with db.write_transaction() as s:
        record = studio_services.get_record(s, slug)
        version = studio_services.promote(s, record, where, result.verdict.winner, current_user.email)
    flash(f"Variant {result.verdict.winner.upper()} promoted: version {version.number} is live.", "success")
    return redirect(url_for("admin.campaign_detail", slug=slug, _anchor="experiments"))


@bp.get("/campaigns/<slug>/steps/<step_id>/preview")
def step_preview(slug: str, step_id: str) -> str:
    """Subject, preheader, HTML (in a sandboxed frame) and text of a step for the sample or a chosen lead."""
    campaign = _campaign(slug)
    step = _step(campaign, step_id)
    variant = _variant_arg(step)
    lead, warning = _preview_lead(request.args.get("lead", ""))
    message, error = _compose(campaign, step.as_variant(variant), lead)
    return render_template(
        "admin/preview.html",
        campaign=campaign,
        step=step,
        variant=variant,
        lead=lead,
        warning=warning,
        message=message,
        error=error,
        applies=step.applies_to(lead.interest) if lead.id else True,
        lead_form=PreviewLeadForm(request.args),
        action_form=ActionForm(),
        test_addresses=test_send_addresses(current_user),
    )


@bp.get("/campaigns/<slug>/steps/<step_id>/preview.html")
def step_preview_html(slug: str, step_id: str) -> Response:
    """The step's HTML alone, for the preview frame: its own CSP lets nothing run or load."""
    campaign = _campaign(slug)
    step = _step(campaign, step_id)
    lead, _ = _preview_lead(request.args.get("lead", ""))
    message, error = _compose(campaign, step.as_variant(_variant_arg(step)), lead)
    body = message.html if message is not None else str(Markup("<p>{}</p>").format(error))
    response = make_response(body)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.mimetype = "text/html"
    return response


@bp.post("/campaigns/<slug>/steps/<step_id>/test")
def step_test_send(slug: str, step_id: str) -> Response:
    """Queue a test of the step to a staff address (yours, or one in TEST_SEND_EMAILS); never to a lead."""
    campaign = _campaign(slug)
    step = _step(campaign, step_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    user = current_user._get_current_object()
    to = (request.form.get("to") or user.email).strip().lower()
    if to not in test_send_addresses(user):
        flash(f"Not sent: {to[:80]} is not a staff address for test sends (add it to TEST_SEND_EMAILS).", "error")
        return redirect(url_for("admin.step_preview", slug=slug, step_id=step.id))
    # An A/B test: one test email per variant, so every subject is seen before it goes to leads.
    variants = [f"{step.experiment}:{v.name}" for v in step.variants] or [None]
    with db.write_transaction() as s:
        for variant in variants:
            queue_test_send(s, campaign.slug, step.id, user, to, variant)
    what = f"{len(variants)} tests (one per subject variant)" if len(variants) > 1 else f"Test of “{step.subject}”"
    flash(f"{what} queued for {to}; the worker sends it within seconds.", "success")
    if request.form.get("back") == "preview":
        return redirect(url_for("admin.step_preview", slug=slug, step_id=step.id))
    return redirect(url_for("admin.campaign_detail", slug=slug))
