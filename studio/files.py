"""The marketing team's campaign folders: campaigns/<slug>/campaign.yaml with its page and emails in Markdown.

Folders are import and export: `read_folder` turns one into a document (the store's form of a campaign) and
`write_folder` writes a document back, so export then import changes nothing. Problems name the file and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.frontmatter import FrontMatterError, split
from studio.definitions import Campaign, parse_duration, shown_path
from studio.document import Document, Problem, default_interests, validate_document

CAMPAIGN_KEYS = frozenset(
    {"slug", "name", "active", "landing_page", "double_opt_in", "send_window", "exit_statuses", "steps"}
)
WINDOW_KEYS = frozenset({"days", "start", "end", "timezone"})
STEP_KEYS = frozenset({"id", "delay", "body", "when", "any_time"})
PAGE_KEYS = frozenset({"title", "description", "headline", "intro", "interests", "weight", "variants"})
EMAIL_KEYS = frozenset({"subject", "preheader", "weight", "variants"})
EMAIL_FIELDS = frozenset({"subject", "preheader", "body", "weight", "variants"})
UNKNOWN = "is not a setting campaigns know (check the spelling)"


@dataclass
class FileMap:
    """Which file each field of a document came from, so a problem names the file a marketer edits."""

    settings: str
    page: str = ""
    emails: dict[int, str] = field(default_factory=dict)

    def unread(self, problem: Problem) -> bool:
        """A problem of a field whose file could not be read (that file's own problem already says why)."""
        step = re.match(r"^steps\[(\d+)\]\.(subject|preheader|body)$", problem.field)
        if step:
            return int(step.group(1)) not in self.emails
        return problem.field.startswith("page.") and not self.page

    def line(self, problem: Problem) -> str:
        """`file: field: problem`, the way `flask campaigns validate` prints it."""
        where, message = problem.field, problem.message
        step = re.match(r"^steps\[(\d+)\]\.(\w+)(.*)$", where)
        if where.startswith("page.") and self.page:
            rest = where.removeprefix("page.")
            return f"{self.page}: {message}" if rest == "body" else f"{self.page}: {rest}: {message}"
        if step and step.group(2) in EMAIL_FIELDS and int(step.group(1)) in self.emails:
            file = self.emails[int(step.group(1))]
            inside = step.group(2) + step.group(3)
            return f"{file}: {message}" if inside == "body" else f"{file}: {inside}: {message}"
        if step and step.group(2) == "interests":
            where = f"steps[{step.group(1)}].when"
        return f"{self.settings}: {where}: {message}" if where else f"{self.settings}: {message}"


def _unknown(raw: dict[str, Any], known: frozenset[str], prefix: str, label: str, problems: list[str]) -> None:
    for key in raw:
        if key not in known:
            problems.append(f"{label}: {prefix}{key}: {UNKNOWN}")


def _markdown(path: Path, label: str, where: str, problems: list[str]) -> tuple[dict[str, Any], str] | None:
    if not path.is_file():
        problems.append(f"{label}: {where}: file {path.name!r} not found next to campaign.yaml")
        return None
    try:
        return split(path.read_text(encoding="utf-8"))
    except (FrontMatterError, UnicodeDecodeError) as exc:
        problems.append(f"{shown_path(path)}: {exc}")
        return None


def _clock(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):  # YAML reads 09:00 unquoted as minutes
        return f"{value // 60:02d}:{value % 60:02d}"
    return value


def read_folder(directory: Path) -> tuple[Document | None, list[str], FileMap]:
    """Read one campaign folder into a document; problems of the files themselves (missing, not YAML) as lines."""
    yaml_path = directory / "campaign.yaml"
    label = shown_path(yaml_path)
    files = FileMap(settings=label)
    problems: list[str] = []
    try:
        raw = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, [f"{label}: file not found"], files
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return None, [f"{label}: not valid YAML{where}"], files
    if not isinstance(raw, dict):
        return None, [f"{label}: must be 'key: value' settings"], files
    _unknown(raw, CAMPAIGN_KEYS, "", label, problems)
    for key in ("slug", "name"):
        if key not in raw:
            problems.append(f"{label}: {key}: is required")
    slug = raw.get("slug")
    if isinstance(slug, str) and slug != directory.name:
        problems.append(f"{label}: slug: {slug!r} must match its folder name {directory.name!r}")
    window = raw.get("send_window") if raw.get("send_window") is not None else {}
    if not isinstance(window, dict):
        problems.append(f"{label}: send_window: must be settings (days, start, end, timezone)")
        window = {}
    _unknown(window, WINDOW_KEYS, "send_window.", label, problems)
    document: Document = {
        "slug": slug if slug is not None else "",
        "name": raw.get("name", ""),
        "active": raw.get("active", True),
        "double_opt_in": raw.get("double_opt_in", False),
        "send_window": {
            "days": window.get("days", ["mon", "tue", "wed", "thu", "fri"]),
            "start": _clock(window.get("start", "09:00")),
            "end": _clock(window.get("end", "17:00")),
            "timezone": window.get("timezone", "America/Denver"),
        },
        "exit_statuses": list(raw.get("exit_statuses") or []) if "exit_statuses" in raw else None,
        "page": {},
        "steps": [],
    }
    if document["exit_statuses"] is None:
        del document["exit_statuses"]

    page_file = str(raw.get("landing_page") or "page.md")
    loaded = _markdown(directory / page_file, label, "landing_page", problems)
    if loaded is not None:
        meta, body = loaded
        files.page = shown_path(directory / page_file)
        _unknown(meta, PAGE_KEYS, "", files.page, problems)
        document["page"] = {
            "title": str(meta.get("title") or ""),
            "description": str(meta.get("description") or ""),
            "headline": str(meta.get("headline") or ""),
            "intro": str(meta.get("intro") or ""),
            "body": body,
            "interests": meta.get("interests") or default_interests(),
        }
        if meta.get("variants"):
            document["page"]["weight"] = meta.get("weight", 1)
            document["page"]["variants"] = meta["variants"] if isinstance(meta["variants"], list) else []
    steps = raw.get("steps") if raw.get("steps") is not None else []
    if not isinstance(steps, list):
        problems.append(f"{label}: steps: must be a list of steps")
        steps = []
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            problems.append(f"{label}: steps[{index}]: must be settings (id, delay, body)")
            continue
        _unknown(step, STEP_KEYS, f"steps[{index}].", label, problems)
        for key in ("id", "delay", "body"):
            if key not in step:
                problems.append(f"{label}: steps[{index}].{key}: is required")
        when = step.get("when") or {}
        interests = when.get("interest", []) if isinstance(when, dict) else []
        entry: dict[str, Any] = {
            "id": str(step.get("id", "")),
            "delay": str(step.get("delay", "0")),
            "any_time": step.get("any_time", False),
            "interests": [interests] if isinstance(interests, str) else list(interests or []),
            "subject": "",
            "preheader": "",
            "body": "",
        }
        body_file = step.get("body")
        if isinstance(body_file, str):
            loaded = _markdown(directory / body_file, label, f"steps[{index}].body", problems)
            if loaded is not None:
                meta, body = loaded
                files.emails[index] = shown_path(directory / body_file)
                _unknown(meta, EMAIL_KEYS, "", files.emails[index], problems)
                entry.update(
                    subject=str(meta.get("subject") or ""), preheader=str(meta.get("preheader") or ""), body=body
                )
                if meta.get("variants"):
                    entry["weight"] = meta.get("weight", 1)
                    entry["variants"] = meta["variants"] if isinstance(meta["variants"], list) else [meta["variants"]]
        document["steps"].append(entry)
    return document, problems, files


def known_posts(blog_dir: Path | str | None) -> set[str] | None:
    """The post slugs a `blog:` link may name (None: do not check)."""
    if blog_dir is None:
        return None
    return {path.stem for path in Path(blog_dir).glob("*.md")}


def check_folder(
    directory: Path, blog_dir: Path | str | None = None
) -> tuple[Document | None, Campaign | None, list[str], list[str]]:
    """Read and check one folder: its document, its campaign when valid, problem lines and warning lines."""
    document, problems, files = read_folder(directory)
    if document is None:
        return None, None, problems, []
    checked = validate_document(document, known_posts(blog_dir))
    problems += [files.line(p) for p in checked.problems if not files.unread(p) and files.line(p) not in problems]
    if problems:
        return document, None, problems, []
    return document, checked.campaign, [], [files.line(w) for w in checked.warnings]


def load_campaign(directory: Path, blog_dir: Path | str | None = None) -> tuple[Campaign | None, list[str]]:
    """Load one campaign folder; returns the campaign (or None) and the problems found."""
    _, campaign, problems, _ = check_folder(directory, blog_dir)
    return campaign, problems


def campaign_folders(root: Path | str) -> list[Path]:
    """The campaign folders under root (hidden and underscore folders are not campaigns)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def load_campaigns(root: Path | str, blog_dir: Path | str | None = None) -> tuple[dict[str, Campaign], list[str]]:
    """Load every campaigns/<slug>/campaign.yaml under root; returns campaigns by slug and all problems."""
    if not Path(root).is_dir():
        return {}, [f"{root}: campaigns folder not found"]
    campaigns: dict[str, Campaign] = {}
    problems: list[str] = []
    for directory in campaign_folders(root):
        campaign, found = load_campaign(directory, blog_dir)
        problems.extend(found)
        if campaign is not None:
            campaigns[campaign.slug] = campaign
    return campaigns, problems


def _front(meta: dict[str, Any], body: str) -> str:
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000).strip()
    return f"---\n{head}\n---\n{body}"


def write_folder(document: Document, directory: Path) -> None:
    """Write a document as a campaign folder (campaign.yaml, page.md, emails/NN-<id>.md), replacing what is there."""
    directory.mkdir(parents=True, exist_ok=True)
    emails = directory / "emails"
    if emails.is_dir():
        for old in emails.glob("*.md"):
            old.unlink()
    emails.mkdir(exist_ok=True)
    page = document["page"]
    page_meta: dict[str, Any] = {
        key: page[key] for key in ("title", "description", "headline", "intro") if page.get(key)
    }
    if page.get("interests") and page["interests"] != default_interests():
        page_meta["interests"] = [{"value": i["value"], "label": i["label"]} for i in page["interests"]]
    if page.get("variants"):
        page_meta["weight"] = page.get("weight", 1)
        page_meta["variants"] = [dict(v) for v in page["variants"]]
    (directory / "page.md").write_text(_front(page_meta, page.get("body", "")), encoding="utf-8")
    steps = []
    for number, step in enumerate(document["steps"], start=1):
        name = f"emails/{number:02d}-{step['id']}.md"
        entry: dict[str, Any] = {"id": step["id"], "delay": _delay_text(step["delay"]), "body": name}
        if step.get("interests"):
            entry["when"] = {"interest": list(step["interests"])}
        if step.get("any_time"):
            entry["any_time"] = True
        steps.append(entry)
        meta: dict[str, Any] = {"subject": step["subject"]}
        if step.get("preheader"):
            meta["preheader"] = step["preheader"]
        if step.get("variants"):
            meta["weight"] = step.get("weight", 1)
            meta["variants"] = [dict(v) for v in step["variants"]]
        (directory / name).write_text(_front(meta, step.get("body", "")), encoding="utf-8")
    settings = {
        "slug": document["slug"],
        "name": document["name"],
        "active": document["active"],
        "landing_page": "page.md",
        "double_opt_in": document["double_opt_in"],
        "send_window": dict(document["send_window"]),
        "exit_statuses": list(document["exit_statuses"]),
        "steps": steps,
    }
    text = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True, width=10_000)
    (directory / "campaign.yaml").write_text(text, encoding="utf-8")


def _delay_text(delay: str) -> str:
    parse_duration(delay)  # only valid documents are exported
    return str(delay)
