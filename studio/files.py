"""The marketing team's campaign folders: campaigns/<slug>/campaign.yaml with its page and emails in Markdown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.frontmatter import FrontMatterError, split
from studio.definitions import (
    Campaign,
    CampaignFile,
    LandingPage,
    Step,
    blog_problems,
    render_problems,
    shown_path,
)


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
        problems.append(f"{shown_path(path)}: {exc}")
        return None


def load_campaign(directory: Path, blog_dir: Path | str | None = None) -> tuple[Campaign | None, list[str]]:
    """Load one campaign folder; returns the campaign (or None) and the problems found.

    With blog_dir, every `blog:<slug>` link in an email must name a post there.
    """
    blog_dir = Path(blog_dir) if blog_dir is not None else None
    yaml_path = directory / "campaign.yaml"
    label = shown_path(yaml_path)
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
        page_label = shown_path(directory / spec.landing_page)
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
        step_label = shown_path(directory / step.body)
        subject = str(meta.get("subject") or "").strip()
        if not subject:
            problems.append(f"{step_label}: subject: is required in the front matter")
        elif len(subject) > 150:
            problems.append(f"{step_label}: subject: keep it under 150 characters (inboxes cut it anyway)")
        if not body.strip():
            problems.append(f"{step_label}: the email has no text")
        problems.extend(render_problems(step_label, subject + "\n" + str(meta.get("preheader") or "") + "\n" + body))
        problems.extend(blog_problems(step_label, body, blog_dir))
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


