"""A campaign as the editor and the store hold it: one JSON-like document, checked field by field.

Every problem is reported at once and names its field (`steps[2].delay`), so the admin shows it beside the field
and `flask campaigns validate` prefixes the file it came from; the words are the same in both.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import time
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.markdown import MEDIA_PREFIX, POST_SLUG_RE, blog_links, media_images
from core.vocabulary import DEFAULT_EXIT_STATUSES, INTERESTS, STATUSES
from studio.definitions import (
    RESERVED_SLUGS,
    SLUG_RE,
    WEEKDAYS,
    Campaign,
    LandingPage,
    PageVariant,
    SendWindow,
    Step,
    Variant,
    _parse_clock,
    parse_duration,
    render_problems,
)
from studio.experiments import NAMES

Document = dict[str, Any]
VALUE_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
MAX_STEPS = 30
MAX_INTERESTS = 12
MAX_VARIANTS = 4


class Problem(NamedTuple):
    """One thing wrong (or a warning) about one field of a campaign."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class Checked:
    """The outcome of checking a document: the campaign when nothing is wrong, and every problem and warning."""

    campaign: Campaign | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def by_field(self) -> dict[str, list[str]]:
        """Problems grouped by field, for showing beside each input."""
        out: dict[str, list[str]] = {}
        for problem in self.problems:
            out.setdefault(problem.field, []).append(problem.message)
        return out


def default_interests() -> list[dict[str, str]]:
    """The form's options when a campaign names none: the clinic's joints and 'Other'."""
    return [{"value": value, "label": label} for value, label in INTERESTS.items()]


def new_document(slug: str, name: str) -> Document:
    """A campaign to start from: a page to fill in and a welcome that answers at once."""
    return {
        "slug": slug,
        "name": name,
        "active": False,
        "double_opt_in": False,
        "send_window": {"days": list(WEEKDAYS[:5]), "start": "09:00", "end": "17:00", "timezone": "America/Denver"},
        "exit_statuses": list(DEFAULT_EXIT_STATUSES),
        "page": {
            "title": name,
            "description": "",
            "headline": name,
            "intro": "",
            "body": "",
            "interests": default_interests(),
        },
        "steps": [
            {
                "id": "welcome",
                "delay": "0",
                "any_time": True,
                "interests": [],
                "subject": "Your free consultation request",
                "preheader": "",
                "body": "Hi {{ first_name }},\n\nThank you for your request. We will be in touch soon.\n",
            }
        ],
    }


def normalized(document: Document) -> Document:
    """A copy with every key present in a fixed order, so equal campaigns compare and diff equal."""
    doc = copy.deepcopy(document) if isinstance(document, dict) else {}
    window = doc.get("send_window") if isinstance(doc.get("send_window"), dict) else {}
    page = doc.get("page") if isinstance(doc.get("page"), dict) else {}
    steps = doc.get("steps") if isinstance(doc.get("steps"), list) else []
    return {
        "slug": doc.get("slug", ""),
        "name": doc.get("name", ""),
        "active": doc.get("active", True),
        "double_opt_in": doc.get("double_opt_in", False),
        "send_window": {
            "days": window.get("days", list(WEEKDAYS[:5])),
            "start": window.get("start", "09:00"),
            "end": window.get("end", "17:00"),
            "timezone": window.get("timezone", "America/Denver"),
        },
        "exit_statuses": doc.get("exit_statuses", list(DEFAULT_EXIT_STATUSES)),
        "page": {
            "title": page.get("title", ""),
            "description": page.get("description", ""),
            "headline": page.get("headline", ""),
            "intro": page.get("intro", ""),
            "body": page.get("body", ""),
            "interests": page.get("interests") or default_interests(),
            # An A/B test of the headline and intro: the page's own is variant A (its weight here), others B-D.
            "weight": page.get("weight", 1) if page.get("variants") else 1,
            "variants": [
                {
                    "headline": v.get("headline", "") if isinstance(v, dict) else "",
                    "intro": v.get("intro", "") if isinstance(v, dict) else "",
                    "weight": v.get("weight", 1) if isinstance(v, dict) else 1,
                }
                for v in (page.get("variants") or [])
            ],
        },
        "steps": [
            {
                "id": (step or {}).get("id", ""),
                "delay": (step or {}).get("delay", "0"),
                "any_time": (step or {}).get("any_time", False),
                "interests": (step or {}).get("interests", []) or [],
                "subject": (step or {}).get("subject", ""),
                "preheader": (step or {}).get("preheader", ""),
                "body": (step or {}).get("body", ""),
                # An A/B test of the subject: the step's own is variant A (its weight here), the others B, C, D.
                "weight": (step or {}).get("weight", 1) if (step or {}).get("variants") else 1,
                "variants": [
                    {
                        "subject": (v or {}).get("subject", "") if isinstance(v, dict) else "",
                        "preheader": (v or {}).get("preheader", "") if isinstance(v, dict) else "",
                        "weight": (v or {}).get("weight", 1) if isinstance(v, dict) else 1,
                    }
                    for v in ((step or {}).get("variants") or [])
                ],
            }
            for step in steps
            if isinstance(step, dict) or step is None
        ],
    }


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value).strip())


def _bool(doc: dict[str, Any], key: str, where: str, problems: list[Problem]) -> bool:
    value = doc.get(key)
    if isinstance(value, bool):
        return value
    problems.append(Problem(where, f"{value!r} must be true or false"))
    return False


def _window(raw: dict[str, Any], problems: list[Problem]) -> SendWindow | None:
    found: dict[str, Any] = {}
    before = len(problems)
    days_raw = raw.get("days")
    days_raw = [days_raw] if isinstance(days_raw, str) else (days_raw if isinstance(days_raw, list) else [])
    days = []
    for item in days_raw:
        day = str(item).strip().lower()[:3]
        if day not in WEEKDAYS:
            problems.append(
                Problem("send_window.days", f"{item!r} is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
            )
        elif day not in days:
            days.append(day)
    if not days_raw:
        problems.append(Problem("send_window.days", "name at least one weekday"))
    found["days"] = tuple(days)
    for key in ("start", "end"):
        try:
            found[key] = _parse_clock(raw.get(key))
        except ValueError as exc:
            problems.append(Problem(f"send_window.{key}", str(exc)))
    zone = _text(raw.get("timezone"))
    try:
        ZoneInfo(zone)
        found["timezone"] = zone
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem("send_window.timezone", f"{zone!r} is not a time zone (use a name like America/Denver)")
        )
    if isinstance(found.get("start"), time) and isinstance(found.get("end"), time) and found["end"] <= found["start"]:
        problems.append(Problem("send_window.end", "end must be later than start"))
    if len(problems) > before:
        return None
    return SendWindow.model_validate(found)


def _interests(raw: Any, problems: list[Problem]) -> tuple[tuple[str, str], ...]:
    items = raw if isinstance(raw, list) and raw else default_interests()
    if len(items) > MAX_INTERESTS:
        problems.append(
            Problem("page.interests", f"offer at most {MAX_INTERESTS} options (a long list is hard to read)")
        )
    out: list[tuple[str, str]] = []
    for index, item in enumerate(items):
        item = item if isinstance(item, dict) else {"value": item, "label": INTERESTS.get(str(item), str(item))}
        value, label = _text(item.get("value")).lower(), _text(item.get("label"))
        where = f"page.interests[{index}]"
        if not VALUE_RE.match(value) or len(value) > 16:
            problems.append(
                Problem(f"{where}.value", f"{value!r} must be lowercase letters, digits and dashes (at most 16)")
            )
        elif value in dict(out):
            problems.append(Problem(f"{where}.value", f"{value!r} is offered twice (each option needs its own value)"))
        if not label:
            problems.append(Problem(f"{where}.label", "is required (the words the visitor sees)"))
        elif len(label) > 60:
            problems.append(Problem(f"{where}.label", "keep it under 60 characters"))
        out.append((value, label))
    return tuple(out)


def _weight(value: Any, where: str, problems: list[Problem]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        problems.append(Problem(where, f"{value!r} must be a whole number from 1 to 100"))
        return 1
    weight = int(value)
    if not 1 <= weight <= 100:
        problems.append(Problem(where, f"{weight} must be a whole number from 1 to 100"))
    return weight


def _variants(raw: dict[str, Any], where: str, subject: str, preheader: str, problems: list[Problem]) -> tuple:
    """The step's A/B variants ('a' is its own subject), checked like the subject itself."""
    extra = raw["variants"] if isinstance(raw["variants"], list) else []
    if not extra:
        return ()
    if len(extra) > MAX_VARIANTS - 1:
        problems.append(Problem(f"{where}.variants", f"test at most {MAX_VARIANTS} subjects at once"))
    found = [Variant("a", subject, preheader, _weight(raw["weight"], f"{where}.weight", problems))]
    for index, item in enumerate(extra[: MAX_VARIANTS - 1]):
        at = f"{where}.variants[{index}]"
        text, pre = _text(item["subject"]), _text(item["preheader"])
        if not text:
            problems.append(Problem(f"{at}.subject", "is required"))
        elif len(text) > 150:
            problems.append(Problem(f"{at}.subject", "keep it under 150 characters (inboxes cut it anyway)"))
        elif text == subject and pre == preheader:
            problems.append(Problem(f"{at}.subject", "is the same as the step's own subject (test something else)"))
        problems.extend(_render(f"{at}.subject", text))
        problems.extend(_render(f"{at}.preheader", pre))
        found.append(Variant(NAMES[index + 1], text, pre, _weight(item["weight"], f"{at}.weight", problems)))
    return tuple(found)


def _page_variants(page: dict[str, Any], problems: list[Problem]) -> tuple:
    """The page's A/B variants of headline and intro ('a' is its own)."""
    extra = page["variants"] if isinstance(page["variants"], list) else []
    if not extra:
        return ()
    if len(extra) > MAX_VARIANTS - 1:
        problems.append(Problem("page.variants", f"test at most {MAX_VARIANTS} headlines at once"))
    own = (_text(page["headline"]), _text(page["intro"]))
    found = [PageVariant("a", *own, _weight(page["weight"], "page.weight", problems))]
    for index, item in enumerate(extra[: MAX_VARIANTS - 1]):
        at = f"page.variants[{index}]"
        headline, intro = _text(item["headline"]), _text(item["intro"])
        if not headline:
            problems.append(Problem(f"{at}.headline", "is required"))
        elif len(headline) > 160:
            problems.append(Problem(f"{at}.headline", "keep it under 160 characters"))
        elif (headline, intro) == own:
            problems.append(Problem(f"{at}.headline", "is the same as the page's own headline (test something else)"))
        if len(intro) > 600:
            problems.append(Problem(f"{at}.intro", "keep it under 600 characters"))
        found.append(PageVariant(NAMES[index + 1], headline, intro, _weight(item["weight"], f"{at}.weight", problems)))
    return tuple(found)


def _blog_problems(where: str, markdown: str, posts: set[str] | None) -> list[Problem]:
    if posts is None:
        return []
    problems = []
    for slug in blog_links(markdown):
        if not POST_SLUG_RE.match(slug):
            problems.append(Problem(where, f"blog:{slug}: is not a blog post name (lowercase letters, digits, dashes)"))
        elif slug not in posts:
            problems.append(Problem(where, f"blog:{slug}: no such blog post"))
    return problems


def _media_problems(where: str, markdown: str, media: Any, in_email: bool = False) -> list[Problem]:
    keys = media_images(markdown)
    if in_email and keys:
        # An email's pictures would need the site's address and often stay blocked: a post shows them instead.
        return [Problem(where, "uploaded images show on landing pages and posts, not in emails (link a post)")]
    if media is None:
        return []
    return [
        Problem(where, f"no uploaded image {MEDIA_PREFIX + key!r} (upload it under Images)")
        for key in keys
        if key not in media
    ]


def _render(where: str, markdown: str) -> list[Problem]:
    return [Problem(where, line.split(": ", 1)[1]) for line in render_problems("x", markdown)]


def validate_document(
    document: Document, posts: set[str] | None = None, version: int = 0, media: Any = None
) -> Checked:
    """Check every field of a campaign document; the campaign is built only when nothing is wrong.

    With posts (the published post slugs), every `blog:` link must name one of them; with media (the uploaded
    images by key), every `media:` image of the page must be one of them.
    """
    problems: list[Problem] = []
    if not isinstance(document, dict):
        return Checked(None, [Problem("", "a campaign must be a set of settings")])
    doc = normalized(document)

    slug = _text(doc["slug"])
    if not SLUG_RE.match(slug) or len(slug) > 80:
        problems.append(Problem("slug", f"{slug!r} must be lowercase letters, digits and dashes"))
    elif slug in RESERVED_SLUGS:
        problems.append(Problem("slug", f"{slug!r} is reserved by the site (pick another slug)"))
    name = _text(doc["name"])
    if not name:
        problems.append(Problem("name", "is required"))
    elif len(name) > 120:
        problems.append(Problem("name", "keep it under 120 characters"))
    active = _bool(doc, "active", "active", problems)
    double_opt_in = _bool(doc, "double_opt_in", "double_opt_in", problems)
    window = _window(doc["send_window"], problems)
    exits = doc["exit_statuses"] if isinstance(doc["exit_statuses"], list) else []
    for item in exits:
        if item not in STATUSES:
            problems.append(Problem("exit_statuses", f"{item!r} is not a lead status (use {', '.join(STATUSES)})"))

    page_raw = doc["page"]
    for key in ("title", "description", "headline"):
        if not _text(page_raw[key]):
            problems.append(Problem(f"page.{key}", "is required"))
    for key, limit in (("title", 120), ("description", 300), ("headline", 160), ("intro", 600)):
        if len(_text(page_raw[key])) > limit:
            problems.append(Problem(f"page.{key}", f"keep it under {limit} characters"))
    interests = _interests(page_raw["interests"], problems)
    page_variants = _page_variants(page_raw, problems)
    page_body = str(page_raw["body"] or "")
    problems.extend(_blog_problems("page.body", page_body, posts))
    problems.extend(_media_problems("page.body", page_body, media))

    steps: list[Step] = []
    seen: set[str] = set()
    if len(doc["steps"]) > MAX_STEPS:
        problems.append(Problem("steps", f"a sequence has at most {MAX_STEPS} emails"))
    for index, raw in enumerate(doc["steps"]):
        where = f"steps[{index}]"
        before = len(problems)
        step_id = _text(raw["id"])
        if not SLUG_RE.match(step_id) or len(step_id) > 60:
            problems.append(Problem(f"{where}.id", f"{step_id!r} must be lowercase letters, digits and dashes"))
        elif step_id in seen:
            problems.append(Problem(f"{where}.id", f"step id {step_id!r} is used twice (each step needs its own id)"))
        seen.add(step_id)
        try:
            delay = parse_duration(raw["delay"])
        except ValueError as exc:
            problems.append(Problem(f"{where}.delay", str(exc)))
            delay = None
        any_time = _bool(raw, "any_time", f"{where}.any_time", problems)
        step_interests = raw["interests"] if isinstance(raw["interests"], list) else [raw["interests"]]
        for item in step_interests:
            if item not in dict(interests):
                options = ", ".join(value for value, _ in interests)
                problems.append(
                    Problem(f"{where}.interests", f"{item!r} is not an area of interest (use one of {options})")
                )
        subject, preheader, body = _text(raw["subject"]), _text(raw["preheader"]), str(raw["body"] or "")
        if not subject:
            problems.append(Problem(f"{where}.subject", "is required"))
        elif len(subject) > 150:
            problems.append(Problem(f"{where}.subject", "keep it under 150 characters (inboxes cut it anyway)"))
        if len(preheader) > 200:
            problems.append(Problem(f"{where}.preheader", "keep it under 200 characters"))
        if not body.strip():
            problems.append(Problem(f"{where}.body", "the email has no text"))
        problems.extend(_render(f"{where}.subject", subject))
        problems.extend(_render(f"{where}.preheader", preheader))
        variants = _variants(raw, where, subject, preheader, problems)
        problems.extend(_render(f"{where}.body", body))
        problems.extend(_blog_problems(f"{where}.body", body, posts))
        problems.extend(_media_problems(f"{where}.body", body, media, in_email=True))
        if len(problems) == before and delay is not None:
            steps.append(
                Step(
                    id=step_id,
                    index=index,
                    delay=delay,
                    body_path=None,
                    subject=subject,
                    preheader=preheader,
                    markdown=body,
                    interests=tuple(step_interests),
                    any_time=any_time,
                    variants=variants,
                )
            )
    if problems or window is None:
        return Checked(None, problems)
    page = LandingPage(
        path=None,
        title=_text(page_raw["title"]),
        description=_text(page_raw["description"]),
        headline=_text(page_raw["headline"]),
        intro=_text(page_raw["intro"]),
        markdown=page_body,
        meta={},
        interests=interests,
        variants=page_variants,
    )
    campaign = Campaign(
        slug=slug,
        name=name,
        active=active,
        double_opt_in=double_opt_in,
        window=window,
        exit_statuses=tuple(exits),
        page=page,
        steps=tuple(steps),
        version=version,
    )
    return Checked(campaign, [], warnings_for(campaign))


def warnings_for(campaign: Campaign) -> list[Problem]:
    """What is allowed but probably unintended: a first email that waits for the send window, and steps only
    some areas of interest receive (the email's content then tells the provider each reader's interest)."""
    warnings = []
    if campaign.steps and not campaign.steps[0].any_time:
        window = campaign.window
        hours = f"{', '.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M}"
        warnings.append(
            Problem(
                "steps[0].any_time",
                f"warning: the first email waits for the send window ({hours}), so a visitor who signs up on a "
                "Friday evening hears nothing until Monday; tick 'any time' (any_time: true) to answer at once",
            )
        )
    for step in campaign.steps:
        if step.interests:
            labels = dict(campaign.page.interests)
            areas = ", ".join(labels.get(value, value) for value in step.interests)
            warnings.append(
                Problem(
                    f"steps[{step.index}].interests",
                    f"warning: only leads interested in {areas} get this email, so its content tells the email "
                    f"provider (which reads every email it sends) that each reader chose {areas}; write it so any "
                    "reader could receive it, or accept that the provider learns this",
                )
            )
    return warnings
