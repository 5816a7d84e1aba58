"""Markdown written by marketing, rendered safely: raw HTML is shown as text, never executed.

Also the one definition of the `blog:<slug>` link syntax that emails (and, later, pages) use to link to a post:
validation lists the links with blog_links() and composing replaces them with rewrite_blog_links().
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup

# A blog post's name: its file name without .md.
POST_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The target of `[text](blog:slug)` or of a reference definition `[ref]: blog:slug`. The target is taken
# whole (up to a space, a bracket, '#' or '?') so that a malformed name is found and reported, not ignored;
# an anchor or query after the name stays after the post's URL.
BLOG_LINK_RE = re.compile(r"(?P<lead>\]\(\s*<?|^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?)blog:(?P<slug>[^\s()<>#?]*)", re.M)


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    """The one Markdown dialect: CommonMark with tables and strikethrough, raw HTML off."""
    return MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(["table", "strikethrough"])


def render(text: str) -> Markup:
    """Markdown to HTML with raw HTML disabled."""
    return Markup(parser().render(text))  # noqa: S704 - raw HTML is off, so the output is safe


def blog_links(markdown: str) -> list[str]:
    """The post names linked with `blog:<name>`, in order, without repeats (malformed names included)."""
    seen: list[str] = []
    for match in BLOG_LINK_RE.finditer(markdown):
        if match.group("slug") not in seen:
            seen.append(match.group("slug"))
    return seen


def rewrite_blog_links(markdown: str, url_for_post: Callable[[str], str]) -> str:
    """Replace every well-formed `blog:<name>` link target with url_for_post(name)."""

    def replace(match: re.Match[str]) -> str:
        slug = match.group("slug")
        if not POST_SLUG_RE.match(slug):
            return match.group(0)  # validation reports it; never guess a post
        return match.group("lead") + url_for_post(slug)

    return BLOG_LINK_RE.sub(replace, markdown)
