"""Blog posts: list, new, edit the Markdown, preview at desktop and phone width, publish now or at a set time,
unpublish, and the history with its differences and roll back."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateField, HiddenField, IntegerField, RadioField, StringField, TextAreaField, TimeField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from admin.blueprint import bp
from admin.forms import ActionForm
from core.clock import now
from core.db import db
from core.formatting import local_text
from studio import post_services
from studio.models import PostRecord
from studio.post_services import InvalidPost, PostLinked
from studio.posts import validate_post
from studio.registry import registry
from studio.services import StudioError, audit

# The form's fields and the document's: an error found in the document shows next to the field that holds it.
FIELD_OF = {
    "image": "image_src",
    "image.src": "image_src",
    "image.alt": "image_alt",
    "image.width": "image_width",
    "image.height": "image_height",
}


class NewPostForm(FlaskForm):
    """The address and title of a new post."""

    slug = StringField("Address (/blog/…)", validators=[Length(max=80)])
    title = StringField("Title", validators=[Length(max=200)])


class PostForm(FlaskForm):
    """Every field of a post's draft."""

    revision = HiddenField()
    title = StringField("Title", validators=[Length(max=500)])
    description = TextAreaField("Description (search results and link previews)", validators=[Length(max=1000)])
    date = StringField("Date shown on the post (YYYY-MM-DD)", validators=[Length(max=40)])
    author = StringField("Author", validators=[Length(max=500)])
    tags = StringField("Topics (comma separated)", validators=[Length(max=500)])
    treatment = StringField("Landing page the call to action books", validators=[Length(max=80)])
    image_src = StringField("Image (media:… from Images, or a path under static/)", validators=[Length(max=300)])
    image_alt = StringField("Image description (alt text)", validators=[Length(max=500)])
    image_width = IntegerField("Image width (px)", validators=[Optional()])
    image_height = IntegerField("Image height (px)", validators=[Optional()])
    body = TextAreaField("Text (Markdown)", validators=[Length(max=200_000)])


class PublishForm(FlaskForm):
    """Publish now or at a date and time in the clinic's time zone."""

    revision = HiddenField()
    when = RadioField(
        "When", choices=[SelectChoice("now", "Now"), SelectChoice("later", "At a set time")], default="now"
    )
    day = DateField("Date", validators=[Optional()])
    at = TimeField("Time", validators=[Optional()])


def document_from(form: PostForm, slug: str) -> dict[str, Any]:
    """The draft as the form holds it."""
    doc: dict[str, Any] = {
        "slug": slug,
        "title": form.title.data,
        "description": form.description.data,
        "date": form.date.data,
        "author": form.author.data,
        "tags": [tag.strip() for tag in (form.tags.data or "").split(",") if tag.strip()],
        "treatment": form.treatment.data,
        "body": form.body.data or "",
    }
    if form.image_src.data or form.image_alt.data:
        doc["image"] = {
            "src": (form.image_src.data or "").strip(),
            "alt": form.image_alt.data or "",
            "width": form.image_width.data,
            "height": form.image_height.data,
        }
    return doc


def fill(form: PostForm, doc: dict[str, Any], revision: int) -> None:
    """Put a stored draft into the form."""
    form.revision.data = str(revision)
    for name in ("title", "description", "date", "author", "treatment", "body"):
        value = doc.get(name)
        getattr(form, name).data = value if isinstance(value, str) else ("" if value is None else str(value))
    tags = doc.get("tags") or []
    form.tags.data = ", ".join(tags) if isinstance(tags, list) else str(tags)
    image = doc.get("image") if isinstance(doc.get("image"), dict) else {}
    form.image_src.data = image.get("src", "")
    form.image_alt.data = image.get("alt", "")
    form.image_width.data = image.get("width")
    form.image_height.data = image.get("height")


def show_problems(form: PostForm, problems: list[Any]) -> list[str]:
    """Put each problem next to its field; returns those no field holds."""
    loose = []
    for problem in problems:
        name = FIELD_OF.get(problem.field, problem.field)
        field = getattr(form, name, None) if name in form._fields else None
        if field is None:
            loose.append(str(problem))
        else:
            field.errors = [*field.errors, problem.message]
    return loose


def _record(slug: str) -> PostRecord:
    record = post_services.get_post(db.session, slug)
    if record is None:
        abort(404)
    return record


def _actor() -> str:
    return current_user.email


def state(record: PostRecord, changed: bool) -> str:
    """The post's state in words: live, scheduled (when), or a draft."""
    live, _ = record.live_at(now())
    parts = []
    if live is not None:
        parts.append(f"live (version {live})")
    if record.scheduled_version is not None and record.scheduled_at is not None and record.scheduled_at > now():
        parts.append(f"version {record.scheduled_version} scheduled for {local_text(record.scheduled_at)}")
    if parts and changed:
        # Saved is not published: say so where the marketer looks, as the campaigns list does.
        parts.append("unpublished changes in the draft")
    return ", ".join(parts) or "draft, not on the site"


@bp.route("/posts", methods=["GET", "POST"])
def posts() -> str | tuple[str, int] | Response:
    """Every post with its state, and a form to start a new one."""
    form = NewPostForm()
    if form.validate_on_submit():
        slug = (form.slug.data or "").strip().lower()
        problem = post_services.slug_problem(db.session, slug)
        if problem:
            form.slug.errors = [problem]
        else:
            with db.write_transaction() as session:
                doc = post_services.new_post_document(slug, (form.title.data or "").strip(), now())
                post_services.create_post(session, doc, _actor())
            flash("Draft created: write it, then publish it.", "success")
            return redirect(url_for("admin.posts_edit", slug=slug))
    records = post_services.post_records(db.session)
    changed = post_services.changed_drafts(db.session, records)
    rows = [(record, state(record, record.id in changed)) for record in records]
    return render_template("admin/posts.html", rows=rows, form=form), 400 if form.errors else 200


@bp.route("/posts/<slug>", methods=["GET", "POST"])
def posts_edit(slug: str) -> str | tuple[str, int] | Response:
    """Edit the draft; problems show next to their fields (a draft with problems is still saved)."""
    record = _record(slug)
    form = PostForm()
    conflict = None
    status = 200
    if form.validate_on_submit():
        doc = document_from(form, slug)
        try:
            base = int(form.revision.data or 0)
        except ValueError:
            base = 0
        with db.write_transaction() as session:
            conflict = post_services.save_post_draft(session, record, doc, base, _actor())
        if conflict is None:
            flash("Draft saved.", "success")
            return redirect(url_for("admin.posts_edit", slug=slug))
        status = 409
    elif form.is_submitted():
        status = 400
    else:
        fill(form, record.draft, record.draft_revision)
    current = document_from(form, slug) if form.is_submitted() else record.draft
    _, problems = post_services.check_post(db.session, current)
    loose = show_problems(form, problems)
    publish_form = PublishForm(formdata=None, revision=str(record.draft_revision))
    publish_form.day.data = now().astimezone(_zone()).date()
    return (
        render_template(
            "admin/post_edit.html",
            record=record,
            form=form,
            problems=problems,
            loose=loose,
            conflict=conflict,
            state=state(record, record.id in post_services.changed_drafts(db.session, [record])),
            publish_form=publish_form,
            action_form=ActionForm(),
            linked=post_services.linking_campaigns(db.session, slug),
            zone=current_app.config["CLINIC_TIMEZONE"],
            treatments=[c.slug for c in registry().active()],
        ),
        status,
    )


@bp.get("/posts/<slug>/preview")
def posts_preview(slug: str) -> str:
    """The draft at desktop and phone width, as the site would show it."""
    record = _record(slug)
    return render_template("admin/post_preview.html", record=record)


@bp.get("/posts/<slug>/preview/page")
def posts_preview_page(slug: str) -> str | tuple[str, int]:
    """The draft rendered by the blog's own page template (shown inside the preview's frames)."""
    record = _record(slug)
    post, problems = validate_post(record.draft, None, post_services.media_index(db.session))
    if post is None:
        return render_template("admin/post_preview_problems.html", problems=problems), 200
    campaign = registry().get(post.treatment) or next(iter(registry().active()), None)
    return render_template("blog/post.html", post=post, campaign=campaign)


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["CLINIC_TIMEZONE"])


@bp.post("/posts/<slug>/publish")
def posts_publish(slug: str) -> Response:
    """Publish the draft now, or schedule it for a date and time in the clinic's time zone."""
    record = _record(slug)
    form = PublishForm()
    if not form.validate_on_submit():
        flash("Choose a date and time (the clinic's time zone) to schedule the post.", "error")
        return redirect(url_for("admin.posts_edit", slug=slug))
    at = None
    if form.when.data == "later":
        if form.day.data is None or form.at.data is None:
            flash("Choose both a date and a time to schedule the post.", "error")
            return redirect(url_for("admin.posts_edit", slug=slug))
        at = datetime.combine(form.day.data, form.at.data or time(9), tzinfo=_zone())
        if at <= now():
            flash(f"{local_text(at)} has passed: choose a later time, or publish now.", "error")
            return redirect(url_for("admin.posts_edit", slug=slug))
    try:
        with db.write_transaction() as session:
            revision = int(form.revision.data) if (form.revision.data or "").isdecimal() else None
            version = post_services.publish_post(session, record, _actor(), at=at, revision=revision)
    except InvalidPost as exc:
        flash(f"Not published: {exc}. The problems are shown next to the fields.", "error")
    except StudioError as exc:
        flash(f"Not published: {exc}.", "error")
    else:
        if at is None:
            flash(f"Version {version.number} is live at /blog/{slug}.", "success")
        else:
            flash(f"Version {version.number} goes live on {local_text(at)}.", "success")
    return redirect(url_for("admin.posts_edit", slug=slug))


@bp.post("/posts/<slug>/unpublish")
def posts_unpublish(slug: str) -> Response:
    """Take the post off the site; refused, naming them, while live campaigns link to it."""
    record = _record(slug)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with db.write_transaction() as session:
            post_services.unpublish_post(session, record, _actor())
    except PostLinked as exc:
        flash(f"Not unpublished: {exc}.", "error")
    else:
        flash("The post is off the site (its history is kept; publish it again any time).", "success")
    return redirect(url_for("admin.posts_edit", slug=slug))


@bp.post("/posts/<slug>/unschedule")
def posts_unschedule(slug: str) -> Response:
    """Drop the scheduled version before its time."""
    record = _record(slug)
    if not ActionForm().validate_on_submit():
        abort(400)
    with db.write_transaction() as session:
        post_services.cancel_schedule(session, record, _actor())
    flash("The scheduled version will not go live.", "success")
    return redirect(url_for("admin.posts_edit", slug=slug))


@bp.get("/posts/<slug>/history")
def posts_history(slug: str) -> str:
    """Every published version with who published it and when, the audit log, and one diff."""
    record = _record(slug)
    versions = post_services.post_versions(db.session, record)
    shown = request.args.get("version", type=int)
    diff = None
    if shown is not None:
        chosen = post_services.post_version(db.session, record, shown)
        if chosen is None:
            abort(404)
        before = post_services.post_version(db.session, record, shown - 1)
        diff = post_services.diff_posts(
            before.document if before else None,
            chosen.document,
            f"version {shown - 1}" if before else "nothing",
            f"version {shown}",
        )
    return render_template(
        "admin/post_history.html",
        record=record,
        versions=versions,
        shown=shown,
        diff=diff,
        live=record.live_at(now())[0],
        entries=audit(db.session, post_services.subject(slug), limit=50),
        action_form=ActionForm(),
    )


@bp.post("/posts/<slug>/rollback/<int:number>")
def posts_rollback(slug: str, number: int) -> Response:
    """Publish an old version again now."""
    record = _record(slug)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        with db.write_transaction() as session:
            version = post_services.rollback_post(session, record, number, _actor())
    except StudioError as exc:
        flash(f"Not rolled back: {exc}.", "error")
    else:
        flash(f"Version {number} is live again (as version {version.number}).", "success")
    return redirect(url_for("admin.posts_history", slug=slug))
