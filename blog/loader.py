"""Blog posts from content/blog/<slug>.md: load, validate and render them once at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from flask import current_app
from markupsafe import Markup

from core.frontmatter import FrontMatterError, split
from core.markdown import render

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KNOWN_FIELDS = frozenset({"title", "description", "date", "author", "tags", "image", "treatment"})
IMAGE_FIELDS = frozenset({"src", "alt", "width", "height"})
WORDS_PER_MINUTE = 220


class BlogErrors(Exception):
    """One or more post files are invalid; str() lists one problem per line, each naming file and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PostImage:
    """An illustration under static/, with the size the page reserves for it."""

    src: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True)
class Post:
    """A validated post with its body already rendered to safe HTML."""

    slug: str
    title: str
    description: str
    date: date
    author: str
    tags: tuple[str, ...]
    html: Markup
    words: int
    image: PostImage | None = None
    treatment: str = "stem-cell-therapy"

    @property
    def path(self) -> str:
        """The post's URL path."""
        return f"/blog/{self.slug}"

    @property
    def reading_minutes(self) -> int:
        """Estimated reading time, at least one minute."""
        return max(1, round(self.words / WORDS_PER_MINUTE))


def _text(meta: dict[str, Any], key: str, label: str, problems: list[str], limit: int) -> str:
    value = meta.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(f"{label}: {key}: is required in the front matter")
        return ""
    if not isinstance(value, str):
        problems.append(f"{label}: {key}: must be text")
        return ""
    if len(value.strip()) > limit:
        problems.append(f"{label}: {key}: keep it under {limit} characters (it has {len(value.strip())})")
    return value.strip()


def _date(meta: dict[str, Any], label: str, problems: list[str]) -> date | None:
    value = meta.get("date")
    if value is None or value == "":
        problems.append(f"{label}: date: is required in the front matter (use YYYY-MM-DD)")
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        problems.append(f"{label}: date: {value!r} is not a date (use YYYY-MM-DD)")
        return None


def _tags(meta: dict[str, Any], label: str, problems: list[str]) -> tuple[str, ...]:
    value = meta.get("tags", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(tag, str) and tag.strip() for tag in value):
        problems.append(f"{label}: tags: must be a list of words, like [knee, prp]")
        return ()
    return tuple(tag.strip() for tag in value)


def _image(meta: dict[str, Any], label: str, static_dir: Path | None, problems: list[str]) -> PostImage | None:
    value = meta.get("image")
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(f"{label}: image: must have src, alt, width and height")
        return None
    before = len(problems)
    for key in sorted(set(value) - IMAGE_FIELDS):
        problems.append(f"{label}: image.{key}: is not a field images know (use src, alt, width, height)")
    src = value.get("src")
    if not isinstance(src, str) or not src.strip():
        problems.append(f"{label}: image.src: is required (a path under static/, like img/knee.svg)")
    elif static_dir is not None and not (static_dir / src).is_file():
        problems.append(f"{label}: image.src: file {src!r} not found under static/")
    alt = value.get("alt")
    if not isinstance(alt, str):
        problems.append(f"{label}: image.alt: is required (describe the picture; empty quotes if decorative)")
    for key in ("width", "height"):
        size = value.get(key)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 4000:
            problems.append(f"{label}: image.{key}: must be a whole number of pixels between 1 and 4000")
    if len(problems) > before:
        return None
    return PostImage(src=src.strip(), alt=alt.strip(), width=value["width"], height=value["height"])


def load_post(path: Path, static_dir: Path | None = None, label: str | None = None) -> tuple[Post | None, list[str]]:
    """Load one post file; returns the post (or None) and the problems found."""
    label = label or str(path)
    problems: list[str] = []
    slug = path.stem
    if not SLUG_RE.match(slug):
        problems.append(f"{label}: file name must be lowercase letters, digits and dashes, like my-post.md")
    try:
        meta, body = split(path.read_text(encoding="utf-8"))
    except (FrontMatterError, UnicodeDecodeError) as exc:
        return None, [*problems, f"{label}: {exc}"]
    if not meta:
        return None, [*problems, f"{label}: front matter is missing (start the file with a '---' block)"]
    for key in sorted(set(meta) - KNOWN_FIELDS):
        problems.append(f"{label}: {key}: is not a field posts know (use {', '.join(sorted(KNOWN_FIELDS))})")
    title = _text(meta, "title", label, problems, limit=70)
    description = _text(meta, "description", label, problems, limit=170)
    author = _text(meta, "author", label, problems, limit=100)
    published = _date(meta, label, problems)
    tags = _tags(meta, label, problems)
    image = _image(meta, label, static_dir, problems)
    treatment = meta.get("treatment", "stem-cell-therapy")
    if not isinstance(treatment, str) or not SLUG_RE.match(treatment):
        problems.append(f"{label}: treatment: must be a landing page slug, like stem-cell-therapy")
    if not body.strip():
        problems.append(f"{label}: the post has no text below the front matter")
    if problems or published is None:
        return None, problems
    return (
        Post(
            slug=slug,
            title=title,
            description=description,
            date=published,
            author=author,
            tags=tags,
            html=render(body),
            words=len(body.split()),
            image=image,
            treatment=treatment,
        ),
        [],
    )


def load_posts(root: Path | str, static_dir: Path | None = None) -> tuple[list[Post], list[str]]:
    """Load every *.md under root, newest first; returns the posts and all problems."""
    root = Path(root)
    if not root.is_dir():
        return [], []
    posts: list[Post] = []
    problems: list[str] = []
    for path in sorted(root.glob("*.md")):
        if path.name.startswith(("_", ".")) or path.name.lower() == "readme.md":
            continue
        post, found = load_post(path, static_dir, label=_label(path))
        problems.extend(found)
        if post is not None:
            posts.append(post)
    posts.sort(key=lambda p: (p.date, p.slug), reverse=True)
    return posts, problems


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Blog:
    """The posts the app serves, newest first."""

    def __init__(self, posts: list[Post]) -> None:
        self.posts = posts
        self._by_slug = {post.slug: post for post in posts}

    def get(self, slug: str) -> Post | None:
        """The post with this slug, if any."""
        return self._by_slug.get(slug)

    def latest(self, count: int) -> list[Post]:
        """The newest `count` posts."""
        return self.posts[:count]

    def page(self, number: int, per_page: int) -> tuple[list[Post], int]:
        """Posts on page `number` (from 1) and the number of pages (at least 1)."""
        pages = max(1, -(-len(self.posts) // per_page))
        if number < 1 or number > pages:
            raise IndexError(number)
        start = (number - 1) * per_page
        return self.posts[start : start + per_page], pages


def blog() -> Blog:
    """The current app's posts."""
    return current_app.extensions["blog"]
