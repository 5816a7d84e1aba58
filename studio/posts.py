"""Blog posts: what a post is (front matter and Markdown), its checks, and files as import and export.

A post is held as a document: its front matter fields plus `slug` and `body`. The admin and the files are checked
by the same code, so a problem reads the same in both: next to the field in the admin, and as
`file: field: problem` for a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from markupsafe import Markup

from core.frontmatter import FrontMatterError, split
from core.markdown import MEDIA_PREFIX, media_images, render
from studio.document import Problem

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
KNOWN_FIELDS = ("title", "description", "date", "author", "tags", "image", "treatment")
IMAGE_FIELDS = frozenset({"src", "alt", "width", "height"})
WORDS_PER_MINUTE = 220
DEFAULT_TREATMENT = "stem-cell-therapy"
PostDocument = dict[str, Any]


class BlogErrors(Exception):
    """One or more post files are invalid; str() lists one problem per line, each naming file and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PostImage:
    """An illustration with the size the page reserves for it; uploaded ones carry their sized variants."""

    src: str
    alt: str
    width: int
    height: int
    srcset: str = ""
    url: str = ""
    uploaded: bool = False


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
    treatment: str = DEFAULT_TREATMENT

    @property
    def path(self) -> str:
        """The post's URL path."""
        return f"/blog/{self.slug}"

    @property
    def reading_minutes(self) -> int:
        """Estimated reading time, at least one minute."""
        return max(1, round(self.words / WORDS_PER_MINUTE))

    @property
    def tag_slugs(self) -> list[tuple[str, str]]:
        """Each tag with the address of its page."""
        return [(tag, tag_slug(tag)) for tag in self.tags]


def tag_slug(tag: str) -> str:
    """A tag as a URL segment: 'stem cells' -> 'stem-cells'."""
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-") or "tag"


def _text(doc: PostDocument, key: str, problems: list[Problem], limit: int) -> str:
    value = doc.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(Problem(key, "is required in the front matter"))
        return ""
    if not isinstance(value, str):
        problems.append(Problem(key, "must be text"))
        return ""
    if len(value.strip()) > limit:
        problems.append(Problem(key, f"keep it under {limit} characters (it has {len(value.strip())})"))
    return value.strip()


def _date(doc: PostDocument, problems: list[Problem]) -> date | None:
    value = doc.get("date")
    if value is None or value == "":
        problems.append(Problem("date", "is required in the front matter (use YYYY-MM-DD)"))
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        problems.append(Problem("date", f"{value!r} is not a date (use YYYY-MM-DD)"))
        return None


def _tags(doc: PostDocument, problems: list[Problem]) -> tuple[str, ...]:
    value = doc.get("tags", [])
    if value is None:
        value = []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(tag, str) and tag.strip() for tag in value):
        problems.append(Problem("tags", "must be a list of words, like [knee, prp]"))
        return ()
    return tuple(tag.strip() for tag in value)


def _image(
    doc: PostDocument, static_dir: Path | None, media: dict[str, Any] | None, problems: list[Problem]
) -> PostImage | None:
    value = doc.get("image")
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem("image", "must have src, alt, width and height"))
        return None
    before = len(problems)
    for key in sorted(set(value) - IMAGE_FIELDS):
        problems.append(Problem(f"image.{key}", "is not a field images know (use src, alt, width, height)"))
    src = value.get("src")
    uploaded = None
    if not isinstance(src, str) or not src.strip():
        problems.append(Problem("image.src", "is required (a path under static/, like img/knee.svg)"))
    elif src.startswith(MEDIA_PREFIX):
        uploaded = (media or {}).get(src.removeprefix(MEDIA_PREFIX))
        if media is not None and uploaded is None:
            problems.append(Problem("image.src", f"no uploaded image {src!r} (upload it under Images)"))
    elif static_dir is not None and not (static_dir / src).is_file():
        problems.append(Problem("image.src", f"file {src!r} not found under static/"))
    alt = value.get("alt")
    if not isinstance(alt, str):
        problems.append(Problem("image.alt", "is required (describe the picture; empty quotes if decorative)"))
    if uploaded is not None:
        # An uploaded picture knows its own shape; a size given anyway must still be sensible.
        value = {"width": uploaded.width, "height": uploaded.height} | {k: v for k, v in value.items() if v is not None}
    for key in ("width", "height"):
        size = value.get(key)
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 4000:
            problems.append(Problem(f"image.{key}", "must be a whole number of pixels between 1 and 4000"))
    if len(problems) > before:
        return None
    if uploaded is not None:
        return PostImage(
            src=src.strip(),
            alt=alt.strip(),
            width=value["width"],
            height=value["height"],
            srcset=uploaded.srcset,
            url=uploaded.url,
            uploaded=True,
        )
    return PostImage(src=src.strip(), alt=alt.strip(), width=value["width"], height=value["height"])


def validate_post(
    doc: PostDocument, static_dir: Path | None = None, media: dict[str, Any] | None = None
) -> tuple[Post | None, list[Problem]]:
    """Check every field of a post document; the post is built only when nothing is wrong.

    media: the uploaded images by key (None: do not check `media:` images).
    """
    problems: list[Problem] = []
    slug = doc.get("slug")
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > 80:
        problems.append(Problem("slug", "must be lowercase letters, digits and dashes, like my-post"))
    for key in sorted(set(doc) - {*KNOWN_FIELDS, "slug", "body"}):
        problems.append(Problem(key, f"is not a field posts know (use {', '.join(sorted(KNOWN_FIELDS))})"))
    title = _text(doc, "title", problems, limit=70)
    description = _text(doc, "description", problems, limit=170)
    author = _text(doc, "author", problems, limit=100)
    published = _date(doc, problems)
    tags = _tags(doc, problems)
    image = _image(doc, static_dir, media, problems)
    treatment = doc.get("treatment", DEFAULT_TREATMENT)
    if not isinstance(treatment, str) or not SLUG_RE.match(treatment):
        problems.append(Problem("treatment", "must be a landing page slug, like stem-cell-therapy"))
    body = doc.get("body")
    if not isinstance(body, str) or not body.strip():
        problems.append(Problem("body", "the post has no text"))
        body = ""
    for key in media_images(body):
        if media is not None and key not in media:
            problems.append(Problem("body", f"no uploaded image {MEDIA_PREFIX + key!r} (upload it under Images)"))
    if problems or published is None:
        return None, problems
    return (
        Post(
            slug=str(slug),
            title=title,
            description=description,
            date=published,
            author=author,
            tags=tags,
            html=render(body, media),
            words=len(body.split()),
            image=image,
            treatment=str(treatment),
        ),
        [],
    )


def problem_line(label: str, problem: Problem) -> str:
    """A problem as `flask blog import` prints it for a file: `file: field: problem`."""
    if problem.field == "slug":
        return f"{label}: file name must be lowercase letters, digits and dashes, like my-post.md"
    if problem.field == "body":
        return f"{label}: the post has no text below the front matter"
    return f"{label}: {problem}"


# -- files -------------------------------------------------------------------------------------------------


def read_post_file(path: Path, label: str | None = None) -> tuple[PostDocument | None, list[str]]:
    """Read one post file into a document; returns it (None when unreadable) and the problems of reading."""
    label = label or shown(path)
    try:
        meta, body = split(path.read_text(encoding="utf-8"))
    except (FrontMatterError, UnicodeDecodeError) as exc:
        return None, [f"{label}: {exc}"]
    if not meta:
        return None, [f"{label}: front matter is missing (start the file with a '---' block)"]
    doc: PostDocument = {str(key): value for key, value in meta.items()}
    doc["slug"] = path.stem
    doc["body"] = body
    return doc, []


def load_post(path: Path, static_dir: Path | None = None, label: str | None = None) -> tuple[Post | None, list[str]]:
    """Load and check one post file; returns the post (or None) and the problems found."""
    label = label or shown(path)
    doc, problems = read_post_file(path, label)
    if doc is None:
        slug_problem = [] if SLUG_RE.match(path.stem) else [problem_line(label, Problem("slug", ""))]
        return None, slug_problem + problems
    post, found = validate_post(doc, static_dir)
    return post, [problem_line(label, p) for p in found]


def post_files(root: Path | str) -> list[Path]:
    """The post files under root (README and files starting with _ or . are not posts)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [
        path
        for path in sorted(root.glob("*.md"))
        if not path.name.startswith(("_", ".")) and path.name.lower() != "readme.md"
    ]


def load_posts(root: Path | str, static_dir: Path | None = None) -> tuple[list[Post], list[str]]:
    """Load every post file under root, newest first; returns the posts and all problems."""
    posts: list[Post] = []
    problems: list[str] = []
    for path in post_files(root):
        post, found = load_post(path, static_dir)
        problems.extend(found)
        if post is not None:
            posts.append(post)
    return newest_first(posts), problems


def newest_first(posts: list[Post]) -> list[Post]:
    """Posts by date, newest first (then by slug, so the order never wobbles)."""
    return sorted(posts, key=lambda p: (p.date, p.slug), reverse=True)


def post_text(doc: PostDocument) -> str:
    """A post document as the Markdown file it is exported to (reading it back gives the same document)."""
    meta = {key: doc[key] for key in KNOWN_FIELDS if key in doc}
    meta |= {key: value for key, value in doc.items() if key not in {*KNOWN_FIELDS, "slug", "body"}}
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{front}---\n{doc.get('body', '')}"


def write_post_file(doc: PostDocument, root: Path) -> Path:
    """Write a post document as root/<slug>.md."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{doc['slug']}.md"
    path.write_text(post_text(doc), encoding="utf-8")
    return path


def shown(path: Path) -> str:
    """A file as problems name it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
