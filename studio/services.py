"""What the editor and `flask campaigns` do to the store: create, duplicate, save a draft, publish, roll back,
archive, import and export, each written to the audit log. Published versions are never changed.
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.clock import now
from core.db import db
from core.signals import campaign_published
from studio.definitions import RESERVED_SLUGS, SLUG_RE, Campaign, shown_path
from studio.document import Checked, Document, Problem, new_document, normalized, validate_document
from studio.files import campaign_folders, check_folder, write_folder
from studio.models import AuditEntry, CampaignRecord, CampaignVersion, ContentRevision


class StudioError(Exception):
    """Something the studio refuses, in words for the marketer."""


class InvalidDraft(StudioError):
    """The draft has problems: it cannot be published (the live site keeps the last published version)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"the draft has {len(problems)} problem(s): fix them before publishing")
        self.problems = problems


class StaleDraft(StudioError):
    """Someone saved the draft after the version being published was read."""


class NothingToPublish(StudioError):
    """The draft is the same as the live version."""


class ArchivedCampaign(StudioError):
    """An archived campaign cannot be published or edited until it is brought back."""


@dataclass
class Conflict:
    """A save based on an older revision: both texts, so nobody's work is lost."""

    mine: Document
    theirs: Document
    theirs_by: str | None
    theirs_at: datetime
    revision: int


@dataclass
class SaveResult:
    """A saved draft (or the conflict that stopped it) and what is wrong with it now."""

    record: CampaignRecord
    checked: Checked
    conflict: Conflict | None = None


def posts() -> set[str] | None:
    """The blog posts a `blog:` link may name: those published and live now."""
    from studio.post_services import published_slugs  # it builds on this module's audit log and revision

    return published_slugs(db.session)


def images() -> dict[str, Any]:
    """The uploaded images a page's `media:` image may name, by key."""
    from studio.media import images_by_key  # it builds on this module's audit log

    return images_by_key(db.session)


def check(document: Document, version: int = 0) -> Checked:
    """Check a document against the published posts and the uploaded images."""
    return validate_document(document, posts(), version, images())


def record_audit(session: Session, actor: str | None, action: str, subject: str, detail: Any = None) -> None:
    """Add one line to the audit log (in the caller's transaction)."""
    text = detail if isinstance(detail, str) or detail is None else json.dumps(detail, sort_keys=True)
    session.add(AuditEntry(at=now(), actor=actor, action=action, subject=subject[:120], detail=text))


def bump_revision(session: Session) -> None:
    """Tell every process that published content changed (they compare this number with theirs)."""
    done = session.execute(
        update(ContentRevision).where(ContentRevision.id == 1).values(revision=ContentRevision.revision + 1)
    )
    if not done.rowcount:
        session.add(ContentRevision(id=1, revision=1))


def content_revision(session: Session) -> int:
    """The current content revision (0 before anything was published)."""
    return session.scalar(select(ContentRevision.revision).where(ContentRevision.id == 1)) or 0


def get_record(session: Session, slug: str) -> CampaignRecord | None:
    """The stored campaign with this slug."""
    return session.scalar(select(CampaignRecord).where(CampaignRecord.slug == slug))


def records(session: Session, archived: bool = False) -> list[CampaignRecord]:
    """Every stored campaign, archived or not, by slug."""
    query = select(CampaignRecord).order_by(CampaignRecord.slug)
    query = query.where(CampaignRecord.archived_at.is_not(None) if archived else CampaignRecord.archived_at.is_(None))
    return list(session.scalars(query))


def live_document(session: Session, record: CampaignRecord) -> Document | None:
    """The document of the live published version, if any."""
    if record.live_version is None:
        return None
    return session.scalar(
        select(CampaignVersion.document).where(
            CampaignVersion.campaign_id == record.id, CampaignVersion.number == record.live_version
        )
    )


def versions(session: Session, record: CampaignRecord) -> list[CampaignVersion]:
    """Every published version, newest first."""
    return list(
        session.scalars(
            select(CampaignVersion)
            .where(CampaignVersion.campaign_id == record.id)
            .order_by(CampaignVersion.number.desc())
        )
    )


def version(session: Session, record: CampaignRecord, number: int) -> CampaignVersion | None:
    """One published version."""
    return session.scalar(
        select(CampaignVersion).where(CampaignVersion.campaign_id == record.id, CampaignVersion.number == number)
    )


def audit(session: Session, subject: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """The newest audit entries (of one campaign when subject is given)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    return list(session.scalars(query))


def slug_problem(session: Session, slug: str) -> str | None:
    """Why a new campaign cannot take this slug, if it cannot."""
    if not SLUG_RE.match(slug or "") or len(slug) > 80:
        return f"{slug!r} must be lowercase letters, digits and dashes"
    if slug in RESERVED_SLUGS:
        return f"{slug!r} is reserved by the site (pick another slug)"
    if get_record(session, slug) is not None:
        return f"{slug!r} is taken by another campaign (pick another slug)"
    return None


def create(session: Session, document: Document, actor: str | None, action: str = "create") -> CampaignRecord:
    """Store a new campaign with this document as its draft (nothing is live until it is published)."""
    doc = normalized(document)
    problem = slug_problem(session, doc["slug"])
    if problem:
        raise StudioError(f"slug: {problem}")
    moment = now()
    record = CampaignRecord(
        slug=doc["slug"],
        draft=doc,
        draft_revision=1,
        draft_saved_by=actor,
        draft_saved_at=moment,
        created_at=moment,
        created_by=actor,
    )
    session.add(record)
    session.flush()
    record_audit(session, actor, action, doc["slug"])
    return record


def create_new(session: Session, slug: str, name: str, actor: str | None) -> CampaignRecord:
    """A new campaign from the starting template."""
    return create(session, new_document(slug, name or slug), actor)


def duplicate(session: Session, source: CampaignRecord, slug: str, name: str, actor: str | None) -> CampaignRecord:
    """A new campaign starting as a copy of another's draft (not live, so it can be changed before launch)."""
    doc = copy.deepcopy(source.draft)
    doc["slug"], doc["name"] = slug, name or doc.get("name", slug)
    doc["active"] = False
    record = create(session, doc, actor, action="duplicate")
    record_audit(session, actor, "duplicate-from", source.slug, {"to": slug})
    return record


def save_draft(
    session: Session, record: CampaignRecord, document: Document, base_revision: int, actor: str | None
) -> SaveResult:
    """Save the draft if nobody saved since base_revision; otherwise return the conflict and change nothing.

    A draft with problems is saved anyway (work is never lost); only publishing needs it valid.
    """
    doc = normalized(document)
    doc["slug"] = record.slug  # the address of a campaign never changes (links in sent emails point to it)
    if record.archived_at is not None:
        raise ArchivedCampaign("this campaign is archived: bring it back before changing it")
    # One UPDATE decides: two saves from the same revision cannot both win, whatever the timing.
    moment = now()
    result = session.execute(
        update(CampaignRecord)
        .where(CampaignRecord.id == record.id, CampaignRecord.draft_revision == base_revision)
        .values(draft=doc, draft_revision=base_revision + 1, draft_saved_by=actor, draft_saved_at=moment)
        .execution_options(synchronize_session=False)
    )
    session.refresh(record)
    if not result.rowcount:
        conflict = Conflict(
            mine=doc,
            theirs=record.draft,
            theirs_by=record.draft_saved_by,
            theirs_at=record.draft_saved_at,
            revision=record.draft_revision,
        )
        return SaveResult(record, check(doc), conflict)
    record_audit(session, actor, "save", record.slug, {"revision": record.draft_revision})
    return SaveResult(record, check(doc))


def publish_problems(record: CampaignRecord) -> list[Problem]:
    """What stops the draft from being published (empty when it can be)."""
    return check(record.draft).problems


def publish(
    session: Session, record: CampaignRecord, actor: str | None, revision: int | None = None, note: str | None = None
) -> CampaignVersion:
    """Publish the draft as a new version, live everywhere within seconds; refuses an invalid or stale draft.

    revision: the draft revision the publisher looked at (a later save by someone else refuses the publish).
    """
    if record.archived_at is not None:
        raise ArchivedCampaign("this campaign is archived: bring it back before publishing it")
    if revision is not None and revision != record.draft_revision:
        raise StaleDraft("someone saved this draft since you opened it: review their changes, then publish")
    return _publish_document(session, record, record.draft, actor, note or None)


def _publish_document(
    session: Session, record: CampaignRecord, document: Document, actor: str | None, note: str | None
) -> CampaignVersion:
    doc = normalized(document)
    number = (
        session.scalar(select(func.max(CampaignVersion.number)).where(CampaignVersion.campaign_id == record.id)) or 0
    ) + 1
    checked = check(doc, number)
    if checked.problems:
        raise InvalidDraft(checked.problems)
    previous_doc = live_document(session, record)
    if previous_doc is not None and normalized(previous_doc) == doc:
        raise NothingToPublish("nothing changed since the live version")
    previous = check(previous_doc, record.live_version or 0).campaign if previous_doc is not None else None
    moment = now()
    published = CampaignVersion(
        campaign_id=record.id, number=number, document=doc, published_by=actor, published_at=moment, note=note
    )
    session.add(published)
    record.live_version = number
    if record.draft != doc:
        record.draft = doc
        record.draft_revision += 1
    session.flush()
    bump_revision(session)
    session.info["content_changed"] = True
    record_audit(
        session, actor, "publish", record.slug, {"version": number, "note": note} if note else {"version": number}
    )
    campaign_published.send(
        current_app._get_current_object(), session=session, old=previous, new=checked.campaign, moment=moment
    )
    return published


def rollback(session: Session, record: CampaignRecord, number: int, actor: str | None) -> CampaignVersion:
    """Publish an old version again (as a new version, so the history keeps every step); the draft follows."""
    old = version(session, record, number)
    if old is None:
        raise StudioError(f"version {number} does not exist")
    if record.archived_at is not None:
        raise ArchivedCampaign("this campaign is archived: bring it back before publishing it")
    published = _publish_document(session, record, old.document, actor, f"roll back to version {number}")
    record_audit(session, actor, "rollback", record.slug, {"to": number, "version": published.number})
    return published


def promote(session: Session, record: CampaignRecord, where: str, name: str, actor: str | None) -> CampaignVersion:
    """End an A/B test: publish a new version with variant `name` alone ('page' or a step id).

    The draft gets the same change, so edits in progress are kept.
    """
    draft = normalized(record.draft)
    document = _promoted(normalized(live_document(session, record) or record.draft), where, name)
    published = _publish_document(session, record, document, actor, f"promote variant {name.upper()} of {where}")
    try:
        record.draft = _promoted(draft, where, name)
    except StudioError:
        record.draft = document  # the draft no longer has that test: it follows the live version
    record_audit(session, actor, "promote", record.slug, {"where": where, "variant": name})
    return published


def _promoted(document: Document, where: str, name: str) -> Document:
    names = "abcd"
    if where == "page":
        target, fields = document["page"], ("headline", "intro")
    else:
        target = next((step for step in document["steps"] if step["id"] == where), None)
        fields = ("subject", "preheader")
        if target is None:
            raise StudioError(f"the live version has no step {where!r}")
    if not target["variants"] or name not in names[: len(target["variants"]) + 1]:
        raise StudioError(f"no variant {name.upper()} in this test")
    if name != "a":
        chosen = target["variants"][names.index(name) - 1]
        for key in fields:
            target[key] = chosen[key]
    target["variants"], target["weight"] = [], 1
    return document


def archive(session: Session, record: CampaignRecord, actor: str | None) -> None:
    """Take the campaign off the site: its page answers 404 and its sequences stop (like a pause) until restored."""
    if record.archived_at is None:
        record.archived_at = now()
        bump_revision(session)
        session.info["content_changed"] = True
        record_audit(session, actor, "archive", record.slug)


def unarchive(session: Session, record: CampaignRecord, actor: str | None) -> None:
    """Bring an archived campaign back as it was (its live version serves again)."""
    if record.archived_at is not None:
        record.archived_at = None
        bump_revision(session)
        session.info["content_changed"] = True
        record_audit(session, actor, "unarchive", record.slug)


def diff(before: Document | None, after: Document, before_name: str = "before", after_name: str = "after") -> str:
    """A readable line diff between two versions (settings, page and each email as plain text)."""
    return "".join(
        difflib.unified_diff(
            readable(before).splitlines(keepends=True),
            readable(after).splitlines(keepends=True),
            fromfile=before_name,
            tofile=after_name,
        )
    )


def readable(document: Document | None) -> str:
    """A document as text a marketer can read line by line (what the diff compares)."""
    if document is None:
        return ""
    doc = normalized(document)
    window = doc["send_window"]
    lines = [
        f"Name: {doc['name']}",
        f"Active: {'yes' if doc['active'] else 'no'}",
        f"Double opt-in: {'yes' if doc['double_opt_in'] else 'no'}",
        f"Send window: {', '.join(window['days'])} {window['start']}-{window['end']} {window['timezone']}",
        f"Stops when the lead is: {', '.join(doc['exit_statuses'])}",
        "",
        "== Landing page ==",
        f"Title: {doc['page']['title']}",
        f"Description: {doc['page']['description']}",
        f"Headline: {doc['page']['headline']}",
        f"Intro: {doc['page']['intro']}",
        "Form's areas of interest: " + ", ".join(f"{i['label']} ({i['value']})" for i in doc["page"]["interests"]),
        *doc["page"]["body"].splitlines(),
    ]
    for number, step in enumerate(doc["steps"], start=1):
        when = "any time" if step["any_time"] else "in the send window"
        only = f", only for {', '.join(step['interests'])}" if step["interests"] else ""
        lines += [
            "",
            f"== Email {number}: {step['id']} ==",
            f"Wait: {step['delay']} ({when}{only})",
            f"Subject: {step['subject']}",
            f"Preheader: {step['preheader']}",
            *str(step["body"]).splitlines(),
        ]
    return "\n".join(lines) + "\n"


# -- files -------------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    """What `flask campaigns import` did to each folder."""

    created: list[str]
    updated: list[str]
    published: list[str]
    unchanged: list[str]
    skipped: list[str]
    problems: list[str]


def import_folders(
    session: Session, root: Path, actor: str | None, publish_them: bool = False, only_new: bool = False
) -> ImportResult:
    """Read campaign folders into drafts (and publish them); nothing is stored when any folder has a problem.

    only_new: leave campaigns that already exist alone (how `make run` imports the shipped ones once).
    """
    result = ImportResult([], [], [], [], [], [])
    found: list[Document] = []
    for directory in campaign_folders(root):
        document, _, problems, _ = check_folder(directory, current_app.config.get("BLOG_DIR"))
        if document is not None and not problems and publish_them:
            # Published links must name posts live in the store (not just files next to the campaigns).
            label = shown_path(directory)
            links = [p for p in check(document).problems if "blog:" in p.message]
            problems += [f"{label}: {p} (publish the post first)" for p in links]
        result.problems += problems
        if document is not None and not problems:
            found.append(normalized(document))
    if not Path(root).is_dir():
        result.problems.append(f"{root}: campaigns folder not found")
    if result.problems:
        return result
    for doc in found:
        record = get_record(session, doc["slug"])
        if record is not None and only_new:
            result.skipped.append(doc["slug"])
            continue
        if record is None:
            record = create(session, doc, actor, action="import")
            result.created.append(doc["slug"])
        elif record.draft != doc:
            save_draft(session, record, doc, record.draft_revision, actor)
            record_audit(session, actor, "import", doc["slug"])
            result.updated.append(doc["slug"])
        if publish_them:
            try:
                _publish_document(session, record, doc, actor, "imported from files")
                result.published.append(doc["slug"])
            except NothingToPublish:
                result.unchanged.append(doc["slug"])
        elif doc["slug"] not in result.created and doc["slug"] not in result.updated:
            result.unchanged.append(doc["slug"])
    return result


def export_folders(session: Session, root: Path, drafts: bool = False) -> list[str]:
    """Write each campaign's live version (or its draft) as a folder under root; returns the slugs written."""
    written = []
    for record in records(session):
        document = record.draft if drafts else live_document(session, record)
        if document is None:
            continue
        write_folder(normalized(document), Path(root) / record.slug)
        written.append(record.slug)
    return written


def live_campaigns(session: Session) -> dict[str, Campaign]:
    """Every campaign's live version, built and checked (archived ones marked), by slug."""
    rows = session.execute(
        select(CampaignRecord.slug, CampaignRecord.archived_at, CampaignVersion.number, CampaignVersion.document).join(
            CampaignVersion,
            (CampaignVersion.campaign_id == CampaignRecord.id)
            & (CampaignVersion.number == CampaignRecord.live_version),
        )
    )
    out: dict[str, Campaign] = {}
    for slug, archived_at, number, document in rows:
        # Published versions were valid when published; posts are not checked again here so that unpublishing a
        # post later can never take a live campaign down.
        campaign = validate_document(document, None, number).campaign
        if campaign is None:
            current_app.logger.error("campaign %s version %s no longer validates; not served", slug, number)
            continue
        if archived_at is not None:
            campaign = _archived(campaign)
        out[slug] = campaign
    return out


def _archived(campaign: Campaign) -> Campaign:
    return replace(campaign, archived=True, active=False)
