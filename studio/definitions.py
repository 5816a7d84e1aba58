"""What a campaign is: its settings, landing page and steps, checked so a marketer can act on every problem."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import TemplateSyntaxError, UndefinedError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.markdown import POST_SLUG_RE, blog_links
from core.templating import SAMPLE_CONTEXT, TEMPLATE_VARIABLES, compile_template
from core.vocabulary import DEFAULT_EXIT_STATUSES, INTERESTS, STATUSES
from studio.experiments import assign, experiment_id, variant_name

# First path segments owned by the app; a campaign slug can never take one.
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "blog",
        "confirm",
        "media",
        "healthz",
        "privacy",
        "static",
        "unsubscribe",
        "webhooks",
        "sitemap.xml",
        "robots.txt",
    }
)
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*([mhdw]?)\s*$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value: str) -> timedelta:
    """'0', '30m', '36h', '2d', '1w' -> timedelta; anything else raises ValueError with a hint."""
    match = DURATION_RE.match(str(value))
    if not match or (not match.group(2) and int(match.group(1)) != 0):
        raise ValueError(f"{value!r} is not a duration (use 0, 30m, 36h, 2d or 1w)")
    amount, unit = int(match.group(1)), match.group(2) or "m"
    if amount > 5000:  # beyond any sequence; also keeps timedelta far from its limits
        raise ValueError(f"{value!r} is longer than a sequence can wait (at most 5000 of a unit)")
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    return timedelta(**{units[unit]: amount})


def format_duration(delay: timedelta) -> str:
    """The shortest way to write a delay back: '0', '30m', '36h', '2d', '1w'."""
    minutes = int(delay.total_seconds() // 60)
    if minutes == 0:
        return "0"
    for unit, size in (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _parse_clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML reads 09:00 unquoted as sexagesimal minutes
        return time(value // 60, value % 60)
    match = re.match(r"^\s*(\d{1,2}):(\d{2})\s*$", str(value))
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time of day (use 09:00 or 17:30)")
    return time(int(match.group(1)), int(match.group(2)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SendWindow(_Strict):
    """When emails may leave, in the lead's time zone where known, else `timezone`."""

    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    start: time = time(9, 0)
    end: time = time(17, 0)
    timezone: str = "America/Denver"

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        days = []
        for item in value or []:
            day = str(item).strip().lower()[:3]
            if day not in WEEKDAYS:
                raise ValueError(f"{item!r} is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
            days.append(day)
        if not days:
            raise ValueError("name at least one weekday")
        return tuple(days)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> time:
        return _parse_clock(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (use a name like America/Denver)") from None
        return value

    @model_validator(mode="after")
    def _order(self) -> SendWindow:
        if self.end <= self.start:
            raise ValueError("end must be later than start")
        return self


class StepCondition(_Strict):
    """Send the step only to leads whose area of interest is listed."""

    interest: tuple[str, ...]

    @field_validator("interest", mode="before")
    @classmethod
    def _interest(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        for item in value or []:
            if item not in INTERESTS:
                raise ValueError(f"{item!r} is not an area of interest (use one of {', '.join(INTERESTS)})")
        return tuple(value or ())


class StepFile(_Strict):
    """A step as written in campaign.yaml."""

    id: str
    delay: timedelta
    body: str
    when: StepCondition | None = None
    # True: leave as soon as due, ignoring the send window (a welcome that answers the visitor's request).
    any_time: bool = False

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and dashes")
        return value

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> timedelta:
        return parse_duration(value)


class CampaignFile(_Strict):
    """campaign.yaml as written by marketing."""

    slug: str
    name: str = Field(min_length=1, max_length=120)
    active: bool = True
    landing_page: str = "page.md"
    double_opt_in: bool = False
    send_window: SendWindow = SendWindow()
    exit_statuses: tuple[str, ...] = DEFAULT_EXIT_STATUSES
    steps: tuple[StepFile, ...] = ()

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG_RE.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and dashes")
        if value in RESERVED_SLUGS:
            raise ValueError(f"{value!r} is reserved by the site (pick another slug)")
        return value

    @field_validator("exit_statuses", mode="before")
    @classmethod
    def _exits(cls, value: Any) -> tuple[str, ...]:
        for item in value or []:
            if item not in STATUSES:
                raise ValueError(f"{item!r} is not a lead status (use {', '.join(STATUSES)})")
        return tuple(value or ())

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: tuple[StepFile, ...]) -> tuple[StepFile, ...]:
        seen: set[str] = set()
        for index, step in enumerate(steps):
            if step.id in seen:
                raise ValueError(f"[{index}].id: step id {step.id!r} is used twice (each step needs its own id)")
            seen.add(step.id)
        return steps


@dataclass(frozen=True)
class Variant:
    """One version of a step's subject and preheader in an A/B test ('a' is the step's own)."""

    name: str
    subject: str
    preheader: str
    weight: int = 1


@dataclass(frozen=True)
class Step:
    """A step with its email loaded."""

    id: str
    index: int
    delay: timedelta
    body_path: Path | None
    subject: str
    preheader: str
    markdown: str
    interests: tuple[str, ...] = ()
    any_time: bool = False
    # An A/B test of the subject: every variant, 'a' (the step's own subject) first; empty when there is none.
    variants: tuple[Variant, ...] = ()

    def applies_to(self, interest: str | None) -> bool:
        """Whether a lead with this area of interest gets this step."""
        return not self.interests or interest in self.interests

    @property
    def experiment(self) -> str:
        """An id of this test's variants: results count per experiment, so an edited variant starts afresh."""
        return experiment_id(*((v.subject, v.preheader, v.weight) for v in self.variants))

    def variant_for(self, enrollment_id: int) -> str | None:
        """The variant this enrollment gets ('<experiment>:b', always the same), or None when nothing is tested."""
        if not self.variants:
            return None
        index = assign(f"enr:{enrollment_id}:{self.id}", [v.weight for v in self.variants])
        return f"{self.experiment}:{variant_name(index)}"

    def as_variant(self, recorded: str | None) -> Step:
        """This step with the subject and preheader of a recorded variant (itself when there is no such variant)."""
        return _as_variant(self, recorded.rpartition(":")[2]) if recorded and self.variants else self


@functools.lru_cache(maxsize=512)
def _as_variant(step: Step, name: str) -> Step:
    # Cached so that one variant of one step is one object: per-step caches compare by identity.
    chosen = next((v for v in step.variants if v.name == name), None)
    if chosen is None:
        return step
    return replace(step, subject=chosen.subject, preheader=chosen.preheader)


@dataclass(frozen=True)
class PageVariant:
    """One version of a landing page's headline and intro in an A/B test ('a' is the page's own)."""

    name: str
    headline: str
    intro: str
    weight: int = 1


@dataclass(frozen=True)
class LandingPage:
    """The landing page of a campaign."""

    path: Path | None
    title: str
    description: str
    headline: str
    intro: str
    markdown: str
    meta: dict[str, Any] = field(default_factory=dict)
    # The form's area-of-interest options as (value, label): per campaign, so a hair page never asks about knees.
    interests: tuple[tuple[str, str], ...] = tuple(INTERESTS.items())
    # An A/B test of the headline and intro: every variant, 'a' (the page's own) first; empty when none.
    variants: tuple[PageVariant, ...] = ()

    @property
    def experiment(self) -> str:
        """An id of this test's variants (results count per experiment)."""
        return experiment_id(*((v.headline, v.intro, v.weight) for v in self.variants))

    def interest_label(self, value: str | None) -> str:
        """The label a visitor saw for an option value ('' when unknown)."""
        return dict(self.interests).get(value or "", INTERESTS.get(value or "", value or ""))


@dataclass(frozen=True)
class Campaign:
    """A validated campaign: its settings, landing page and steps."""

    slug: str
    name: str
    active: bool
    double_opt_in: bool
    window: SendWindow
    exit_statuses: tuple[str, ...]
    page: LandingPage
    steps: tuple[Step, ...]
    directory: Path | None = None
    # The published version it came from (0 when read straight from files).
    version: int = 0
    archived: bool = False

    def step(self, step_id: str) -> Step | None:
        """The step with this id, if any."""
        return next((s for s in self.steps if s.id == step_id), None)

    def with_page_variant(self, name: str) -> Campaign:
        """This campaign with the headline and intro of page variant `name` (one object per variant)."""
        key = (id(self), name)
        found = _PAGE_VARIANTS.get(key)
        if found is not None and found[0] is self:
            return found[1]
        chosen = next((v for v in self.page.variants if v.name == name), None)
        if chosen is None:
            return self
        variant = replace(self, page=replace(self.page, headline=chosen.headline, intro=chosen.intro))
        if len(_PAGE_VARIANTS) > 256:
            _PAGE_VARIANTS.clear()
        _PAGE_VARIANTS[key] = (self, variant)
        return variant


_PAGE_VARIANTS: dict[tuple[int, str], tuple[Campaign, Campaign]] = {}


class CampaignErrors(Exception):
    """One or more campaign files are invalid; str() lists one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def shown_path(path: Path) -> str:
    """A file as problems name it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def render_problems(label: str, markdown: str) -> list[str]:
    """What stops an email's text from being filled in (unknown names, syntax, what the sandbox refuses)."""
    try:
        compile_template(markdown).render(SAMPLE_CONTEXT)
    except UndefinedError as exc:
        return [f"{label}: {exc.message} (an email may use {', '.join(TEMPLATE_VARIABLES)})"]
    except TemplateSyntaxError as exc:
        return [f"{label}: line {exc.lineno}: {exc.message} (write variables as {{{{ first_name }}}})"]
    except Exception as exc:  # noqa: BLE001 - the sandbox refuses unsafe templates with several error types
        return [f"{label}: the email cannot be filled in: {type(exc).__name__}"]
    return []


def blog_problems(label: str, markdown: str, blog_dir: Path | None) -> list[str]:
    """Every `blog:` link that names no post in blog_dir (none checked without one)."""
    if blog_dir is None:
        return []
    problems = []
    for slug in blog_links(markdown):
        if not POST_SLUG_RE.match(slug):
            problems.append(f"{label}: blog:{slug}: is not a blog post name (lowercase letters, digits, dashes)")
        elif not (blog_dir / f"{slug}.md").is_file():
            missing = shown_path(blog_dir / f"{slug}.md")
            problems.append(f"{label}: blog:{slug}: no such blog post ({missing} not found)")
    return problems


def campaign_warnings(campaign: Campaign) -> list[str]:
    """What is allowed but probably unintended: a first email that waits for the send window, and steps only
    some areas of interest receive (the email's content tells the provider each reader's interest; the provider
    only sees opaque ids for campaigns and steps, but it reads every email it sends)."""
    label = shown_path(campaign.directory / "campaign.yaml") if campaign.directory else campaign.slug
    warnings = []
    if campaign.steps and not campaign.steps[0].any_time:
        window = campaign.window
        hours = f"{', '.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M}"
        warnings.append(
            f"{label}: steps[0].any_time: warning: the first email waits for the "
            f"send window ({hours}), so a visitor who signs up on a Friday evening hears nothing until Monday; "
            "add `any_time: true` to answer at once"
        )
    for step in campaign.steps:
        if step.interests:
            areas = ", ".join(step.interests)
            warnings.append(
                f"{label}: steps[{step.index}].when: warning: only leads interested in {areas} get this email, "
                f"so its content tells the email provider (which reads every email it sends) that each reader "
                f"chose {areas}; write it so any reader could receive it, or accept that the provider learns this"
            )
    return warnings
