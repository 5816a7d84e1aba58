"""The campaign studio: create, duplicate, edit a draft, preview it, publish it, see its history and roll back.

Everything is a plain server-rendered form (works without JavaScript); the editor's inputs are named after the
document's field paths (`steps[2].delay`), so each problem the checker reports lands beside its own input.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from admin.blueprint import PREVIEW_CSP, bp
from admin.forms import ActionForm, DuplicateForm, NewCampaignForm, PreviewLeadForm, PublishForm, TimelineForm
from admin.views.campaigns import _compose, _preview_lead
from core.clock import now
from core.db import db
from core.markdown import render as render_markdown
from core.markdown import rewrite_blog_links
from core.vocabulary import STATUSES
from leads.forms import SignupForm
from nurture.replan import effect
from nurture.schedule import timeline
from studio import services
from studio.definitions import WEEKDAYS, Campaign
from studio.document import Checked, Document, normalized, validate_document
from studio.models import CampaignRecord

# The landing page previewed in a frame: its own stylesheet applies, nothing runs, its form posts nowhere.
PAGE_PREVIEW_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)
INDEXED = re.compile(r"^(steps|page\.interests)\[(\d{1,3})\]\.([a-z_]+)$")
MAX_TEXT = 20_000


def field_id(path: str) -> str:
    """The HTML id of the input for a document field path (`steps[2].delay` -> `f-steps-2-delay`)."""
    return "f-" + (re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "campaign")


FIELD_WORDS = {
    "id": "Step id",
    "delay": "Wait",
    "any_time": "Any time",
    "interests": "Only for",
    "subject": "Subject",
    "preheader": "Preheader",
    "body": "Body",
    "weight": "Weight",
    "title": "Title",
    "description": "Description",
    "headline": "Headline",
    "intro": "Intro",
    "value": "Value",
    "label": "Label",
    "name": "Name",
    "days": "Days",
    "start": "From",
    "end": "Until",
    "timezone": "Time zone",
    "exit_statuses": "Stop when",
    "active": "Active",
    "double_opt_in": "Double opt-in",
}


def field_label(path: str) -> str:
    """A field path in words for the summary (`steps[1].delay` -> `Email 2, Wait`); the message stays the CLI's."""
    parts = []
    for name, index in re.findall(r"([a-z_]+)(?:\[(\d+)\])?", path):
        if name == "steps" and index:
            parts.append(f"Email {int(index) + 1}")
        elif name == "variants" and index:
            parts.append(f"Variant {'BCD'[int(index)] if int(index) < 3 else int(index) + 2}")
        elif name == "interests" and index:
            parts.append(f"Interest option {int(index) + 1}")
        elif name == "page":
            parts.append("Landing page")
        elif name == "send_window":
            parts.append("Send window")
        else:
            parts.append(FIELD_WORDS.get(name, name.replace("_", " ").capitalize()))
    return ", ".join(parts) or "Campaign"


def _actor() -> str:
    return current_user.email


def _record(slug: str) -> CampaignRecord:
    record = services.get_record(db.session, slug)
    if record is None:
        abort(404)
    return record


def _csrf_ok() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


def _status(record: CampaignRecord) -> dict[str, Any]:
    """Live version and whether the draft differs from it (what the list and the editor show)."""
    live = services.live_document(db.session, record)
    return {
        "live": record.live_version,
        "changed": live is None or normalized(live) != normalized(record.draft),
        "archived": record.archived_at is not None,
    }


# -- list: new, duplicate, archive ---------------------------------------------------------------------------


def studio_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The stored campaigns (and the archived ones) with their draft status, for the campaigns list."""
    rows = [{"record": r, **_status(r)} for r in services.records(db.session)]
    archived = [{"record": r, **_status(r)} for r in services.records(db.session, archived=True)]
    return rows, archived


@bp.post("/campaigns/new")
def campaign_new() -> Response | tuple[str, int]:
    """Create a campaign from the starting template; a slug that cannot be used is explained beside the field."""
    form = NewCampaignForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _list_with(form), 400
    slug = form.slug.data.strip()
    problem = services.slug_problem(db.session, slug)
    if problem:
        form.slug.errors = [problem]
        return _list_with(form), 400
    with db.write_transaction() as s:
        services.create_new(s, slug, form.name.data.strip(), _actor())
    flash(f"{slug} created as a draft: nothing is live until you publish it.", "success")
    return redirect(url_for("admin.campaign_edit", slug=slug))


def _list_with(form: NewCampaignForm) -> str:
    from admin.views.campaigns import campaigns_page

    return campaigns_page(new_form=form)


@bp.route("/campaigns/<slug>/duplicate", methods=["GET", "POST"])
def campaign_duplicate(slug: str) -> Response | str | tuple[str, int]:
    """Start a new campaign as a copy of this one (its draft), under a new slug and name."""
    source = _record(slug)
    form = DuplicateForm()
    if request.method == "GET":
        form.name.data = f"{source.draft.get('name', slug)} (copy)"
        return render_template("admin/studio_duplicate.html", source=source, form=form)
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return render_template("admin/studio_duplicate.html", source=source, form=form), 400
    new_slug = form.slug.data.strip()
    problem = services.slug_problem(db.session, new_slug)
    if problem:
        form.slug.errors = [problem]
        return render_template("admin/studio_duplicate.html", source=source, form=form), 400
    with db.write_transaction() as s:
        services.duplicate(s, services.get_record(s, slug), new_slug, form.name.data.strip(), _actor())
    flash(f"{new_slug} created as a copy of {slug}: change it, then publish it.", "success")
    return redirect(url_for("admin.campaign_edit", slug=new_slug))


@bp.post("/campaigns/<slug>/archive")
def campaign_archive(slug: str) -> Response:
    """Take a campaign off the site: its page answers 404 and its emails wait until it is brought back."""
    _record(slug)
    _csrf_ok()
    with db.write_transaction() as s:
        services.archive(s, services.get_record(s, slug), _actor())
    flash(f"{slug} archived: its page is off the site and its emails wait.", "success")
    return redirect(url_for("admin.campaigns"))


@bp.post("/campaigns/<slug>/unarchive")
def campaign_unarchive(slug: str) -> Response:
    """Bring an archived campaign back as it was."""
    _record(slug)
    _csrf_ok()
    with db.write_transaction() as s:
        services.unarchive(s, services.get_record(s, slug), _actor())
    flash(f"{slug} is back.", "success")
    return redirect(url_for("admin.campaigns"))


# -- the editor ----------------------------------------------------------------------------------------------


def _text(form: MultiDict, key: str, limit: int = MAX_TEXT) -> str:
    return (form.get(key) or "")[:limit].replace("\r\n", "\n")


def document_from_form(form: MultiDict, slug: str) -> Document:
    """The draft as the editor's form posted it (empty extra option rows dropped)."""
    rows: dict[str, dict[int, dict[str, Any]]] = {"steps": {}, "page.interests": {}}
    for key in form:
        match = INDEXED.match(key)
        if match and int(match.group(2)) < 100:
            rows[match.group(1)].setdefault(int(match.group(2)), {})
    interests = []
    for index in sorted(rows["page.interests"]):
        value = _text(form, f"page.interests[{index}].value", 40).strip()
        label = _text(form, f"page.interests[{index}].label", 200).strip()
        if value or label:
            interests.append({"value": value, "label": label})
    steps = []
    for index in sorted(rows["steps"]):
        where = f"steps[{index}]"
        steps.append(
            {
                "id": _text(form, f"{where}.id", 100).strip(),
                "delay": _text(form, f"{where}.delay", 40).strip(),
                "any_time": bool(form.get(f"{where}.any_time")),
                "interests": [v[:40] for v in form.getlist(f"{where}.interests")][:20],
                "subject": _text(form, f"{where}.subject", 400),
                "preheader": _text(form, f"{where}.preheader", 400),
                "body": _text(form, f"{where}.body"),
                **_variants_from_form(form, where, ("subject", "preheader")),
            }
        )
    return {
        "slug": slug,
        "name": _text(form, "name", 400).strip(),
        "active": bool(form.get("active")),
        "double_opt_in": bool(form.get("double_opt_in")),
        "send_window": {
            "days": [d for d in form.getlist("send_window.days") if d in WEEKDAYS],
            "start": _text(form, "send_window.start", 10).strip(),
            "end": _text(form, "send_window.end", 10).strip(),
            "timezone": _text(form, "send_window.timezone", 80).strip(),
        },
        "exit_statuses": [s for s in form.getlist("exit_statuses") if s in STATUSES],
        "page": {
            "title": _text(form, "page.title", 400),
            "description": _text(form, "page.description", 1000),
            "headline": _text(form, "page.headline", 400),
            "intro": _text(form, "page.intro", 2000),
            "body": _text(form, "page.body"),
            "interests": interests,
            **_variants_from_form(form, "page", ("headline", "intro")),
        },
        "steps": steps,
    }


def _variants_from_form(form: MultiDict, where: str, fields: tuple[str, str]) -> dict[str, Any]:
    """An A/B test's extra variants as posted (a variant whose first field is empty is dropped)."""
    variants = []
    for index in range(3):
        at = f"{where}.variants[{index}]"
        values = {key: _text(form, f"{at}.{key}", 2000).strip() for key in fields}
        if values[fields[0]]:
            variants.append({**values, "weight": _number(_text(form, f"{at}.weight", 10))})
    return {"weight": _number(_text(form, f"{where}.weight", 10)) if variants else 1, "variants": variants}


def _number(text: str) -> int | str:
    """A typed weight as a number when it is one (else as typed, so the checker names the problem)."""
    text = text.strip() or "1"
    return int(text) if text.isdigit() and len(text) < 6 else text


def _blank_step(doc: Document) -> dict[str, Any]:
    ids = {step["id"] for step in doc["steps"]}
    number = len(doc["steps"]) + 1
    while f"email-{number}" in ids:
        number += 1
    return {
        "id": f"email-{number}",
        "delay": "3d",
        "any_time": False,
        "interests": [],
        "subject": "",
        "preheader": "",
        "body": "Hi {{ first_name }},\n\n",
    }


def rearrange(doc: Document, action: str) -> tuple[Document, int | None]:
    """Apply a step button (`up:2`, `down:0`, `remove:1`, `add`) and return the step to scroll to."""
    steps = doc["steps"]
    if action == "add":
        steps.append(_blank_step(doc))
        return doc, len(steps) - 1
    verb, _, raw = action.partition(":")
    if not raw.isdecimal() or int(raw) >= len(steps):
        return doc, None
    index = int(raw)
    if verb == "up" and index > 0:
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
        return doc, index - 1
    if verb == "down" and index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
        return doc, index + 1
    if verb == "remove":
        del steps[index]
        return doc, max(index - 1, 0) if steps else None
    return doc, index


def _editor(
    record: CampaignRecord,
    doc: Document,
    checked: Checked,
    revision: int,
    conflict: services.Conflict | None = None,
    status: int = 200,
) -> tuple[str, int]:
    doc = normalized(doc)
    # Options for the step conditions: the page's options, and any value a step names that the page lost.
    offered = [(i.get("value", ""), i.get("label", "")) for i in doc["page"]["interests"] if isinstance(i, dict)]
    html = render_template(
        "admin/studio_edit.html",
        record=record,
        doc=doc,
        checked=checked,
        errors=checked.by_field(),
        warnings=_by_field(checked.warnings),
        revision=revision,
        offered=offered,
        weekdays=WEEKDAYS,
        statuses=STATUSES,
        conflict=conflict,
        conflict_diff=services.diff(conflict.theirs, conflict.mine, "theirs (saved)", "mine (not saved)")
        if conflict
        else "",
        conflict_theirs=services.readable(conflict.theirs) if conflict else "",
        conflict_mine=services.readable(conflict.mine) if conflict else "",
        field_id=field_id,
        field_label=field_label,
        **_status(record),
    )
    return html, status


def _by_field(problems: list) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for problem in problems:
        out.setdefault(problem.field, []).append(problem.message)
    return out


@bp.get("/campaigns/<slug>/edit")
def campaign_edit(slug: str) -> tuple[str, int]:
    """The draft in one form: settings, landing page and emails, each problem beside its field."""
    record = _record(slug)
    return _editor(record, record.draft, services.check(record.draft), record.draft_revision)


@bp.post("/campaigns/<slug>/edit")
def campaign_save(slug: str) -> Response | tuple[str, int]:
    """Save the draft (even with problems: work is never lost), then apply the button that was pressed."""
    record = _record(slug)
    _csrf_ok()
    if record.archived_at is not None:
        flash("This campaign is archived: bring it back before changing it.", "error")
        return redirect(url_for("admin.campaign_edit", slug=slug))
    action = request.form.get("action", "save")
    doc = normalized(document_from_form(request.form, slug))
    anchor = None
    if action.startswith(("up:", "down:", "remove:")) or action == "add":
        doc, index = rearrange(doc, action)
        anchor = field_id(f"steps[{index}]") if index is not None else "steps"
    base = request.form.get("base_revision", "")
    if not base.isdecimal():
        abort(400)
    with db.write_transaction() as s:
        result = services.save_draft(s, services.get_record(s, slug), doc, int(base), _actor())
        conflict = result.conflict
    if conflict is not None:
        record = _record(slug)
        return _editor(record, conflict.mine, result.checked, conflict.revision, conflict, status=409)
    problems = len(result.checked.problems)
    if action == "preview":
        return redirect(url_for("admin.campaign_draft_preview", slug=slug))
    if action == "publish":
        return redirect(url_for("admin.campaign_publish", slug=slug))
    if problems:
        flash(f"Draft saved with {problems} problem(s) to fix before it can be published.", "error")
    else:
        flash("Draft saved. Nothing is live until you publish it.", "success")
    target = url_for("admin.campaign_edit", slug=slug)
    return redirect(f"{target}#{anchor}" if anchor else target)


# -- preview -------------------------------------------------------------------------------------------------


def _draft_campaign(record: CampaignRecord) -> tuple[Campaign | None, Checked]:
    checked = services.check(record.draft)
    return checked.campaign, checked


def _signup_at(form: TimelineForm, zone_name: str) -> datetime:
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    moment = form.signup.data
    return moment.replace(tzinfo=zone) if moment else now().astimezone(zone)


@bp.get("/campaigns/<slug>/draft")
def campaign_draft_preview(slug: str) -> tuple[str, int]:
    """The draft's landing page and emails as they will be sent, at desktop or phone width, and its timeline."""
    record = _record(slug)
    campaign, checked = _draft_campaign(record)
    if campaign is None:
        html = render_template(
            "admin/studio_preview.html",
            record=record,
            campaign=None,
            checked=checked,
            field_id=field_id,
            field_label=field_label,
        )
        return html, 200
    width = "phone" if request.args.get("width") == "phone" else "desktop"
    show = request.args.get("show", "page")
    step = campaign.step(show) if show != "page" else None
    lead, warning = _preview_lead(request.args.get("lead", ""))
    message, error = _compose(campaign, step, lead) if step is not None else (None, None)
    tl_form = TimelineForm(request.args)
    tl_form.interest.choices = [("", "Not given")] + [(v, label) for v, label in campaign.page.interests]
    zone = (tl_form.tz.data or "").strip() or campaign.window.timezone
    plan, tl_error = [], None
    if tl_form.validate():
        try:
            plan = timeline(campaign, _signup_at(tl_form, zone), zone, tl_form.interest.data or None)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            tl_error = str(exc)
    else:
        tl_error = " ".join(e for errs in tl_form.errors.values() for e in errs)
    html = render_template(
        "admin/studio_preview.html",
        record=record,
        campaign=campaign,
        checked=checked,
        width=width,
        show=show if (step is not None or show == "page") else "page",
        step=step,
        lead=lead,
        warning=warning,
        message=message,
        error=error,
        lead_form=PreviewLeadForm(request.args),
        tl_form=tl_form,
        plan=plan,
        tl_error=tl_error,
        tl_zone=zone,
        delays={str(s.get("id")): str(s.get("delay")) for s in normalized(record.draft)["steps"]},
    )
    return html, 200


def _framed(body: str, csp: str) -> Response:
    response = make_response(body)
    response.headers["Content-Security-Policy"] = csp
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.mimetype = "text/html"
    return response


@bp.get("/campaigns/<slug>/draft/email/<step_id>.html")
def campaign_draft_email(slug: str, step_id: str) -> Response:
    """One email of the draft as HTML alone, for the preview frame (nothing in it may run or load)."""
    campaign, _ = _draft_campaign(_record(slug))
    step = campaign.step(step_id) if campaign else None
    if step is None:
        abort(404)
    lead, _ = _preview_lead(request.args.get("lead", ""))
    message, error = _compose(campaign, step, lead)
    body = message.html if message is not None else str(Markup("<p>{}</p>").format(error))
    return _framed(body, PREVIEW_CSP)


@bp.get("/campaigns/<slug>/draft/page.html")
def campaign_draft_page(slug: str) -> Response:
    """The draft's landing page as visitors will see it, for the preview frame (its form posts nowhere)."""
    campaign, _ = _draft_campaign(_record(slug))
    if campaign is None:
        abort(404)
    markdown = rewrite_blog_links(campaign.page.markdown, lambda post: f"/blog/{post}")
    form = SignupForm(formdata=None).offer(campaign.page.interests)
    form.landing.data = campaign.slug
    body = render_template(
        "leads/landing.html",
        campaign=campaign,
        page_html=render_markdown(markdown, services.images()),
        form=form,
        form_notice=None,
    )
    return _framed(body, PAGE_PREVIEW_CSP)


# -- publish -------------------------------------------------------------------------------------------------


def _publish_page(
    record: CampaignRecord, form: PublishForm, status: int = 200, problems: list | None = None
) -> tuple[str, int]:
    checked = services.check(record.draft)
    problems = problems if problems is not None else checked.problems
    live = services.live_document(db.session, record)
    found, nothing = None, False
    if not problems and checked.campaign is not None:
        old = validate_document(live, None, record.live_version or 0).campaign if live is not None else None
        found = effect(db.session, old, checked.campaign)
        nothing = live is not None and normalized(live) == normalized(record.draft)
    form.revision.data = str(record.draft_revision)
    html = render_template(
        "admin/studio_publish.html",
        record=record,
        form=form,
        problems=problems,
        warnings=checked.warnings,
        effect=found,
        nothing=nothing,
        diff=services.diff(live, record.draft, f"version {record.live_version}" if live else "nothing live", "draft"),
        field_id=field_id,
        field_label=field_label,
        step_names={s["id"]: f"{n}. {s['subject'] or s['id']}" for n, s in enumerate(record.draft["steps"], 1)},
    )
    return html, status


@bp.get("/campaigns/<slug>/publish")
def campaign_publish(slug: str) -> tuple[str, int]:
    """Before publishing: what changes for leads already in the sequence, and the difference from the live version."""
    return _publish_page(_record(slug), PublishForm(formdata=None))


@bp.post("/campaigns/<slug>/publish")
def campaign_publish_confirm(slug: str) -> Response | tuple[str, int]:
    """Publish the revision of the draft the marketer reviewed; an invalid or newer draft is refused."""
    record = _record(slug)
    form = PublishForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _publish_page(record, form, 400)
    revision = int(form.revision.data) if (form.revision.data or "").isdecimal() else -1
    try:
        with db.write_transaction() as s:
            published = services.publish(
                s, services.get_record(s, slug), _actor(), revision=revision, note=(form.note.data or "").strip()
            )
            number = published.number
    except services.InvalidDraft as exc:
        flash("Not published: the draft has problems. The live site keeps the last published version.", "error")
        return _publish_page(_record(slug), form, 400, exc.problems)
    except services.StaleDraft:
        flash("Not published: someone saved this draft since you opened this page. Review it, then publish.", "error")
        return redirect(url_for("admin.campaign_publish", slug=slug))
    except services.NothingToPublish:
        flash("Nothing to publish: the draft is the same as the live version.", "error")
        return redirect(url_for("admin.campaign_edit", slug=slug))
    except services.ArchivedCampaign as exc:
        flash(f"Not published: {exc}.", "error")
        return redirect(url_for("admin.campaigns"))
    flash(f"Version {number} of {slug} is published: live on every server within seconds.", "success")
    return redirect(url_for("admin.campaign_history", slug=slug))


# -- history -------------------------------------------------------------------------------------------------


@bp.get("/campaigns/<slug>/history")
def campaign_history(slug: str) -> str:
    """Every published version with who and when, its difference from the one before, and the audit log."""
    record = _record(slug)
    found = services.versions(db.session, record)
    rows = []
    for index, ver in enumerate(found):
        before = found[index + 1] if index + 1 < len(found) else None
        text = services.diff(
            before.document if before else None,
            ver.document,
            f"version {before.number}" if before else "nothing",
            f"version {ver.number}",
        )
        rows.append({"version": ver, "diff": text})
    return render_template(
        "admin/studio_history.html",
        record=record,
        rows=rows,
        audit=services.audit(db.session, slug),
        **_status(record),
    )


@bp.post("/campaigns/<slug>/history/<int:number>/rollback")
def campaign_rollback(slug: str, number: int) -> Response:
    """Publish an old version again (as a new version); the draft follows."""
    _record(slug)
    _csrf_ok()
    try:
        with db.write_transaction() as s:
            published = services.rollback(s, services.get_record(s, slug), number, _actor())
            new_number = published.number
    except services.NothingToPublish:
        flash(f"Version {number} is what is live already.", "error")
    except (services.InvalidDraft, services.StudioError) as exc:
        flash(f"Not rolled back: {exc}.", "error")
    else:
        flash(f"Rolled back: version {number} is live again as version {new_number}.", "success")
    return redirect(url_for("admin.campaign_history", slug=slug))
