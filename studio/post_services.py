"""What the admin and `flask blog` do to the posts store: save a draft, publish now or at a set time, unpublish,
roll back, import and export, each written to the audit log. Published versions are never changed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from core.clock import now
from core.markdown import blog_links
from studio.document import Problem
from studio.media import images_by_key
from studio.models import CampaignRecord, CampaignVersion, PostRecord, PostVersion
from studio.posts import (
    DEFAULT_TREATMENT,
    SLUG_RE,
    Post,
    PostDocument,
    post_files,
    post_text,
    problem_line,
    read_post_file,
    shown,
    validate_post,
    write_post_file,
)
from studio.services import ImportResult, StudioError, bump_revision, record_audit


class InvalidPost(StudioError):
    """The draft has problems: it cannot be published (the site keeps what is live)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"the post has {len(problems)} problem(s): fix them before publishing")
        self.problems = problems


class PostLinked(StudioError):
    """Live campaigns link to the post, so it cannot be taken off the site."""

    def __init__(self, slug: str, campaigns: list[str]) -> None:
        super().__init__(
            f"blog:{slug} is linked by the live campaign(s) {', '.join(campaigns)}: "
            "remove the links there and publish those campaigns first"
        )
        self.campaigns = campaigns


@dataclass
class PostConflict:
    """A save based on an older revision: their text, so nobody's work is lost."""

    theirs: PostDocument
    theirs_by: str | None
    theirs_at: datetime
    revision: int


def subject(slug: str) -> str:
    """A post's name in the audit log (campaigns use their bare slug)."""
    return f"post:{slug}"


def normalized_post(doc: PostDocument) -> PostDocument:
    """The stored form: empty optional fields left out, tags as a list, the body ending with one newline."""
    out: PostDocument = {}
    for key, value in doc.items():
        if value is None or (isinstance(value, str) and not value.strip() and key != "body"):
            continue
        if isinstance(value, str) and key != "body":
            value = value.strip()
        out[key] = value
    if isinstance(out.get("tags"), str):
        out["tags"] = [tag.strip() for tag in out["tags"].split(",") if tag.strip()]
    if out.get("tags") == []:
        del out["tags"]
    if isinstance(out.get("body"), str):
        out["body"] = out["body"].replace("\r\n", "\n").rstrip("\n") + "\n"
    return out


def media_index(session: Session) -> dict[str, Any] | None:
    """The uploaded images a post may name, by key."""
    return images_by_key(session)


def check_post(session: Session, doc: PostDocument) -> tuple[Post | None, list[Problem]]:
    """Check a post document with the files and images the site has."""
    return validate_post(doc, Path(current_app.static_folder or "static"), media_index(session))


def served_post(doc: PostDocument, media: dict[str, Any] | None) -> Post | None:
    """A published version as the site serves it (checked when published; a static file removed since does
    not take it down)."""
    return validate_post(doc, None, media)[0]


def get_post(session: Session, slug: str) -> PostRecord | None:
    """The stored post with this slug."""
    return session.scalar(select(PostRecord).where(PostRecord.slug == slug))


def post_records(session: Session) -> list[PostRecord]:
    """Every stored post, by slug."""
    return list(session.scalars(select(PostRecord).order_by(PostRecord.slug)))


def post_versions(session: Session, record: PostRecord) -> list[PostVersion]:
    """Every published version, newest first."""
    return list(
        session.scalars(select(PostVersion).where(PostVersion.post_id == record.id).order_by(PostVersion.number.desc()))
    )


def post_version(session: Session, record: PostRecord, number: int | None) -> PostVersion | None:
    """One published version."""
    if number is None:
        return None
    return session.scalar(select(PostVersion).where(PostVersion.post_id == record.id, PostVersion.number == number))


def changed_drafts(session: Session, records: list[PostRecord]) -> set[int]:
    """The ids of the posts whose draft differs from their newest published version (the scheduled one, else the
    live one), in one query."""
    newest = {r.id: r.scheduled_version or r.live_version for r in records if r.scheduled_version or r.live_version}
    if not newest:
        return set()
    pairs = tuple_(PostVersion.post_id, PostVersion.number).in_(list(newest.items()))
    documents = {
        post_id: document
        for post_id, document in session.execute(select(PostVersion.post_id, PostVersion.document).where(pairs))
    }
    return {r.id for r in records if r.id in documents and normalized_post(documents[r.id]) != normalized_post(r.draft)}


def new_post_document(slug: str, title: str, moment: datetime) -> PostDocument:
    """A new post's starting draft."""
    return {
        "slug": slug,
        "title": title,
        "description": "",
        "date": moment.date().isoformat(),
        "author": "NexGenEsis clinical team",
        "treatment": DEFAULT_TREATMENT,
        "body": "",
    }


def slug_problem(session: Session, slug: str) -> str | None:
    """Why a new post cannot take this slug, if it cannot."""
    if not SLUG_RE.match(slug or "") or len(slug) > 80:
        return "must be lowercase letters, digits and dashes, like my-post"
    if get_post(session, slug) is not None:
        return f"{slug!r} is taken by another post (pick another)"
    return None


def create_post(session: Session, doc: PostDocument, actor: str | None, action: str = "create") -> PostRecord:
    """Store a new post with this document as its draft (nothing is live until it is published)."""
    doc = normalized_post(doc)
    problem = slug_problem(session, str(doc.get("slug", "")))
    if problem:
        raise StudioError(f"slug: {problem}")
    moment = now()
    record = PostRecord(
        slug=doc["slug"], draft=doc, draft_revision=1, draft_saved_by=actor, draft_saved_at=moment,
        created_at=moment, created_by=actor,
    )  # fmt: skip
    session.add(record)
    session.flush()
    record_audit(session, actor, action, subject(record.slug))
    return record


def save_post_draft(
    session: Session, record: PostRecord, doc: PostDocument, base_revision: int, actor: str | None
) -> PostConflict | None:
    """Save the draft if nobody saved since base_revision; otherwise return the conflict and change nothing.

    A draft with problems is saved anyway (work is never lost); only publishing needs it valid.
    """
    doc = normalized_post(doc)
    doc["slug"] = record.slug  # a post's address never changes (emails already sent link to it)
    result = session.execute(
        update(PostRecord)
        .where(PostRecord.id == record.id, PostRecord.draft_revision == base_revision)
        .values(draft=doc, draft_revision=base_revision + 1, draft_saved_by=actor, draft_saved_at=now())
        .execution_options(synchronize_session=False)
    )
    session.refresh(record)
    if not result.rowcount:
        return PostConflict(record.draft, record.draft_saved_by, record.draft_saved_at, record.draft_revision)
    record_audit(session, actor, "save", subject(record.slug), {"revision": record.draft_revision})
    return None


def settle(record: PostRecord) -> None:
    """Make a scheduled version whose time has come the live one in the row too (readers already serve it)."""
    number, since = record.live_at(now())
    if number is not None and number == record.scheduled_version:
        record.live_version, record.live_since = number, since
        record.scheduled_version = record.scheduled_at = None


def live_document(session: Session, record: PostRecord) -> PostDocument | None:
    """The document live now, if any."""
    version = post_version(session, record, record.live_at(now())[0])
    return version.document if version is not None else None


def publish_post(
    session: Session,
    record: PostRecord,
    actor: str | None,
    at: datetime | None = None,
    revision: int | None = None,
    document: PostDocument | None = None,
    note: str | None = None,
) -> PostVersion:
    """Publish the draft (or `document`) as a new version, live now or at `at` (an aware moment).

    revision: the draft revision the publisher looked at (a later save by someone else refuses the publish).
    """
    if revision is not None and revision != record.draft_revision:
        raise StudioError("someone saved this post since you opened it: review their changes, then publish")
    doc = normalized_post(document if document is not None else record.draft)
    _, problems = check_post(session, doc)
    if problems:
        raise InvalidPost(problems)
    moment = now()
    scheduled = at is not None and at > moment
    settle(record)
    live = live_document(session, record)
    if not scheduled and live is not None and normalized_post(live) == doc and record.scheduled_version is None:
        raise StudioError("nothing changed since the live version")
    number = (session.scalar(select(func.max(PostVersion.number)).where(PostVersion.post_id == record.id)) or 0) + 1
    version = PostVersion(post_id=record.id, number=number, document=doc, published_by=actor, published_at=moment,
                          note=note)  # fmt: skip
    session.add(version)
    if scheduled:
        record.scheduled_version, record.scheduled_at = number, at
    else:
        record.live_version, record.live_since = number, moment
        record.scheduled_version = record.scheduled_at = None
    if record.draft != doc:
        record.draft = doc
        record.draft_revision += 1
    session.flush()
    _changed(session)
    detail: dict[str, Any] = {"version": number}
    if scheduled:
        detail["at"] = at.isoformat()
    if note:
        detail["note"] = note
    record_audit(session, actor, "schedule" if scheduled else "publish", subject(record.slug), detail)
    return version


def linking_campaigns(session: Session, slug: str) -> list[str]:
    """The names of live (published, not archived) campaigns whose page or emails link to blog:<slug>."""
    rows = session.execute(
        select(CampaignRecord.slug, CampaignVersion.document)
        .join(
            CampaignVersion,
            (CampaignVersion.campaign_id == CampaignRecord.id)
            & (CampaignVersion.number == CampaignRecord.live_version),
        )
        .where(CampaignRecord.archived_at.is_(None))
        .order_by(CampaignRecord.slug)
    )
    names = []
    for campaign_slug, document in rows:
        texts = [str((document.get("page") or {}).get("body", ""))]
        texts += [str(step.get("body", "")) for step in document.get("steps") or []]
        if any(slug in blog_links(text) for text in texts):
            names.append(f"{document.get('name') or campaign_slug} ({campaign_slug})")
    return names


def unpublish_post(session: Session, record: PostRecord, actor: str | None) -> None:
    """Take the post off the site (and drop a scheduled version); refused while a live campaign links to it."""
    linked = linking_campaigns(session, record.slug)
    if linked and record.live_at(now())[0] is not None:
        raise PostLinked(record.slug, linked)
    if record.live_version is None and record.scheduled_version is None:
        return
    record.live_version = record.live_since = None
    record.scheduled_version = record.scheduled_at = None
    _changed(session)
    record_audit(session, actor, "unpublish", subject(record.slug))


def cancel_schedule(session: Session, record: PostRecord, actor: str | None) -> None:
    """Drop the scheduled version before its time (what is live stays live)."""
    settle(record)
    if record.scheduled_version is None:
        return
    record_audit(session, actor, "unschedule", subject(record.slug), {"version": record.scheduled_version})
    record.scheduled_version = record.scheduled_at = None
    _changed(session)


def rollback_post(session: Session, record: PostRecord, number: int, actor: str | None) -> PostVersion:
    """Publish an old version again now (as a new version, so the history keeps every step); the draft follows."""
    old = post_version(session, record, number)
    if old is None:
        raise StudioError(f"version {number} does not exist")
    published = publish_post(session, record, actor, document=old.document, note=f"roll back to version {number}")
    record_audit(session, actor, "rollback", subject(record.slug), {"to": number, "version": published.number})
    return published


def diff_posts(before: PostDocument | None, after: PostDocument, before_name: str = "before",
               after_name: str = "after") -> str:  # fmt: skip
    """A line diff of two versions as their Markdown files."""
    old = post_text(before).splitlines(keepends=True) if before else []
    return "".join(difflib.unified_diff(old, post_text(after).splitlines(keepends=True), before_name, after_name))


def published_slugs(session: Session) -> set[str]:
    """The posts live now (what a `blog:` link may name)."""
    moment = now()
    return {record.slug for record in session.scalars(select(PostRecord)) if record.live_at(moment)[0] is not None}


def _changed(session: Session) -> None:
    bump_revision(session)
    session.info["content_changed"] = True


# -- files -------------------------------------------------------------------------------------------------


def import_post_files(
    session: Session, root: Path, actor: str | None, publish_them: bool = False, only_new: bool = False
) -> ImportResult:
    """Read post files into drafts (and publish them); nothing is stored when any file has a problem.

    only_new: leave posts that already exist alone (how `make run` imports the shipped ones once).
    """
    result = ImportResult([], [], [], [], [], [])
    found: list[PostDocument] = []
    if not Path(root).is_dir():
        result.problems.append(f"{root}: posts folder not found")
        return result
    media = media_index(session)
    for path in post_files(root):
        doc, problems = read_post_file(path)
        if doc is not None:
            _, checked = validate_post(doc, Path(current_app.static_folder or "static"), media)
            problems += [problem_line(shown(path), p) for p in checked]
        result.problems += problems
        if doc is not None and not problems:
            found.append(normalized_post(doc))
    if result.problems:
        return result
    for doc in found:
        record = get_post(session, doc["slug"])
        if record is not None and only_new:
            result.skipped.append(doc["slug"])
            continue
        if record is None:
            record = create_post(session, doc, actor, action="import")
            result.created.append(doc["slug"])
        elif record.draft != doc:
            save_post_draft(session, record, doc, record.draft_revision, actor)
            record_audit(session, actor, "import", subject(doc["slug"]))
            result.updated.append(doc["slug"])
        if publish_them:
            try:
                publish_post(session, record, actor, document=doc, note="imported from files")
                result.published.append(doc["slug"])
            except InvalidPost:
                raise
            except StudioError:
                result.unchanged.append(doc["slug"])
        elif doc["slug"] not in result.created and doc["slug"] not in result.updated:
            result.unchanged.append(doc["slug"])
    return result


def export_post_files(session: Session, root: Path, drafts: bool = False) -> list[str]:
    """Write each post's live version (or its draft) as root/<slug>.md; returns the slugs written."""
    written = []
    for record in post_records(session):
        document = record.draft if drafts else live_document(session, record)
        if document is None:
            continue
        write_post_file(normalized_post(document), Path(root))
        written.append(record.slug)
    return written


def live_entries(session: Session) -> list[tuple[PostRecord, PostVersion | None, PostVersion | None]]:
    """Each post with its live version and its scheduled one (either may be missing)."""
    out = []
    for record in post_records(session):
        live = post_version(session, record, record.live_version)
        scheduled = post_version(session, record, record.scheduled_version)
        if live is not None or scheduled is not None:
            out.append((record, live, scheduled))
    return out
