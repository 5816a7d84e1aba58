"""Campaign files: load campaigns/<slug>/campaign.yaml and its Markdown, report errors a marketer can act on."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.frontmatter import FrontMatterError, split
from leads.models import INTERESTS, STATUSES

# First path segments owned by the app; a campaign slug can never take one.
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "blog",
        "confirm",
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
DURATION_RE = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_EXIT_STATUSES = ("booked", "patient", "not_a_fit")
# The only names an email body may use, with the sample values validation renders them with.
# The mailer fills the same names for a real lead (see mailer.compose).
SAMPLE_CONTEXT: dict[str, str] = {
    "first_name": "Alex",
    "clinic_name": "NexGenEsis Healthcare",
    "clinic_phone": "(303) 555-0100",
    "site_url": "https://www.example.org",
    "campaign_name": "Stem cell therapy",
    "booking_url": "https://www.example.org/stem-cell-therapy#consultation",
}
TEMPLATE_VARIABLES = tuple(SAMPLE_CONTEXT)
BLOG_LINK_RE = re.compile(r"\bblog:([A-Za-z0-9_./-]*[A-Za-z0-9_-])")


def parse_duration(value: str) -> timedelta:
    """'30m', '36h', '2d' -> timedelta; anything else raises ValueError with a hint."""
    match = DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (use 30m, 36h or 2d)")
    amount, unit = int(match.group(1)), match.group(2)
    return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]


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
class Step:
    """A step with its email loaded."""

    id: str
    index: int
    delay: timedelta
    body_path: Path
    subject: str
    preheader: str
    markdown: str
    interests: tuple[str, ...] = ()
    any_time: bool = False

    def applies_to(self, interest: str | None) -> bool:
        """Whether a lead with this area of interest gets this step."""
        return not self.interests or interest in self.interests


@dataclass(frozen=True)
class LandingPage:
    """The landing page of a campaign."""

    path: Path
    title: str
    description: str
    headline: str
    intro: str
    markdown: str
    meta: dict[str, Any] = field(default_factory=dict)


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
    directory: Path

    def step(self, step_id: str) -> Step | None:
        """The step with this id, if any."""
        return next((s for s in self.steps if s.id == step_id), None)


class CampaignErrors(Exception):
    """One or more campaign files are invalid; str() lists one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(file)"


def _pydantic_problems(label: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "is not a setting campaigns know (check the spelling)"
        elif err["type"] == "missing":
            message = "is required"
        where = _loc(tuple(p for p in err["loc"] if p != "function-after"))
        # A list check may point inside the list itself: "[2].id: ..." extends the location.
        inner = re.match(r"^(\[\d+\](?:\.\w+)?): (.*)$", message, re.S)
        if inner:
            where, message = where + inner.group(1), inner.group(2)
        problems.append(f"{label}: {where}: {message}")
    return problems


def _read_markdown(path: Path, label: str, field_name: str, problems: list[str]) -> tuple[dict[str, Any], str] | None:
    if not path.is_file():
        problems.append(f"{label}: {field_name}: file {path.name!r} not found next to campaign.yaml")
        return None
    try:
        return split(path.read_text(encoding="utf-8"))
    except (FrontMatterError, UnicodeDecodeError) as exc:
        problems.append(f"{_rel(path)}: {exc}")
        return None


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_sandbox = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def render_body(markdown: str, context: dict[str, Any]) -> str:
    """Fill an email body's {{ variables }} in a sandbox; an unknown name raises UndefinedError."""
    return _sandbox.from_string(markdown).render(**context)


def _render_problems(label: str, markdown: str) -> list[str]:
    try:
        render_body(markdown, SAMPLE_CONTEXT)
    except UndefinedError as exc:
        return [f"{label}: {exc.message} (an email may use {', '.join(TEMPLATE_VARIABLES)})"]
    except TemplateSyntaxError as exc:
        return [f"{label}: line {exc.lineno}: {exc.message} (write variables as {{{{ first_name }}}})"]
    except Exception as exc:  # noqa: BLE001 - the sandbox refuses unsafe templates with several error types
        return [f"{label}: the email cannot be filled in: {type(exc).__name__}"]
    return []


def _links(markdown: str) -> list[str]:
    try:
        from mailer.compose import blog_links
    except ImportError:  # the mailer package is not there (a stand-alone check of the files)
        return BLOG_LINK_RE.findall(markdown)
    return blog_links(markdown)


def _blog_problems(label: str, markdown: str, blog_dir: Path | None) -> list[str]:
    if blog_dir is None:
        return []
    problems = []
    for slug in _links(markdown):
        if not SLUG_RE.match(slug):
            problems.append(f"{label}: blog:{slug}: is not a blog post name (lowercase letters, digits, dashes)")
        elif not (blog_dir / f"{slug}.md").is_file():
            problems.append(f"{label}: blog:{slug}: no such blog post ({_rel(blog_dir / (slug + '.md'))} not found)")
    return problems


def load_campaign(directory: Path, blog_dir: Path | str | None = None) -> tuple[Campaign | None, list[str]]:
    """Load one campaign folder; returns the campaign (or None) and the problems found.

    With blog_dir, every `blog:<slug>` link in an email must name a post there.
    """
    blog_dir = Path(blog_dir) if blog_dir is not None else None
    yaml_path = directory / "campaign.yaml"
    label = _rel(yaml_path)
    problems: list[str] = []
    try:
        raw = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, [f"{label}: file not found"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return None, [f"{label}: not valid YAML{where}"]
    if not isinstance(raw, dict):
        return None, [f"{label}: must be 'key: value' settings"]
    try:
        spec = CampaignFile.model_validate(raw)
    except ValidationError as exc:
        return None, _pydantic_problems(label, exc)
    if spec.slug != directory.name:
        problems.append(f"{label}: slug: {spec.slug!r} must match its folder name {directory.name!r}")

    page = None
    loaded = _read_markdown(directory / spec.landing_page, label, "landing_page", problems)
    if loaded is not None:
        meta, body = loaded
        page_label = _rel(directory / spec.landing_page)
        for key in ("title", "description", "headline"):
            if not str(meta.get(key) or "").strip():
                problems.append(f"{page_label}: {key}: is required in the front matter")
        page = LandingPage(
            path=directory / spec.landing_page,
            title=str(meta.get("title", "")),
            description=str(meta.get("description", "")),
            headline=str(meta.get("headline", "")),
            intro=str(meta.get("intro", "")),
            markdown=body,
            meta=meta,
        )

    steps = []
    for index, step in enumerate(spec.steps):
        loaded = _read_markdown(directory / step.body, label, f"steps[{index}].body", problems)
        if loaded is None:
            continue
        meta, body = loaded
        step_label = _rel(directory / step.body)
        subject = str(meta.get("subject") or "").strip()
        if not subject:
            problems.append(f"{step_label}: subject: is required in the front matter")
        elif len(subject) > 150:
            problems.append(f"{step_label}: subject: keep it under 150 characters (inboxes cut it anyway)")
        if not body.strip():
            problems.append(f"{step_label}: the email has no text")
        problems.extend(_render_problems(step_label, subject + "\n" + str(meta.get("preheader") or "") + "\n" + body))
        problems.extend(_blog_problems(step_label, body, blog_dir))
        steps.append(
            Step(
                id=step.id,
                index=index,
                delay=step.delay,
                body_path=directory / step.body,
                subject=subject,
                preheader=str(meta.get("preheader") or "").strip(),
                markdown=body,
                interests=step.when.interest if step.when else (),
                any_time=step.any_time,
            )
        )
    if problems or page is None:
        return None, problems
    return (
        Campaign(
            slug=spec.slug,
            name=spec.name,
            active=spec.active,
            double_opt_in=spec.double_opt_in,
            window=spec.send_window,
            exit_statuses=spec.exit_statuses,
            page=page,
            steps=tuple(steps),
            directory=directory,
        ),
        [],
    )


def load_campaigns(root: Path | str, blog_dir: Path | str | None = None) -> tuple[dict[str, Campaign], list[str]]:
    """Load every campaigns/<slug>/campaign.yaml under root; returns campaigns by slug and all problems."""
    root = Path(root)
    campaigns: dict[str, Campaign] = {}
    problems: list[str] = []
    if not root.is_dir():
        return {}, [f"{root}: campaigns folder not found"]
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        campaign, found = load_campaign(directory, blog_dir)
        problems.extend(found)
        if campaign is not None:
            campaigns[campaign.slug] = campaign
    return campaigns, problems


def campaign_warnings(campaign: Campaign) -> list[str]:
    """What is allowed but probably unintended: a first email that waits for the send window, and steps only
    some areas of interest receive (the email's content tells the provider each reader's interest; the provider
    only sees opaque ids for campaigns and steps, but it reads every email it sends)."""
    label = _rel(campaign.directory / "campaign.yaml")
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


class CampaignRegistry:
    """The campaigns the app serves, loaded once at start-up."""

    def __init__(self, campaigns: dict[str, Campaign]) -> None:
        self._campaigns = campaigns

    def get(self, slug: str) -> Campaign | None:
        """The campaign with this slug, active or not."""
        return self._campaigns.get(slug)

    def active(self) -> list[Campaign]:
        """Campaigns whose landing pages are live."""
        return [c for c in self._campaigns.values() if c.active]

    def all(self) -> list[Campaign]:
        """Every loaded campaign."""
        return list(self._campaigns.values())


def _running_campaigns_command(argv: list[str] | None = None) -> bool:
    """True in a `flask campaigns ...` process, which reports bad files itself instead of refusing to start."""
    argv = sys.argv if argv is None else argv
    if not argv or Path(argv[0]).name not in {"flask", "__main__.py"}:
        return False
    args = iter(argv[1:])
    for arg in args:
        if arg in {"--app", "-A", "--env-file", "-e"}:
            next(args, None)
        elif not arg.startswith("-"):
            return arg == "campaigns"
    return False


def init_app(app) -> None:  # noqa: ANN001
    """Load campaigns from CAMPAIGNS_DIR; refuse to start when any file is invalid.

    Only `flask campaigns ...` starts anyway (with the valid campaigns), so that it can list the problems.
    """
    campaigns, problems = load_campaigns(app.config["CAMPAIGNS_DIR"], app.config.get("BLOG_DIR"))
    if problems and not _running_campaigns_command():
        raise CampaignErrors(problems)
    app.extensions["campaigns"] = CampaignRegistry(campaigns)
    app.extensions["campaign_problems"] = problems


def registry() -> CampaignRegistry:
    """The current app's campaigns."""
    from flask import current_app

    return current_app.extensions["campaigns"]
