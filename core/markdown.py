"""Markdown written by marketing, rendered safely: raw HTML is shown as text, never executed.

Also the one definition of the `blog:<slug>` link syntax that emails (and, later, pages) use to link to a post:
validation lists the links with blog_links() and composing replaces them with rewrite_blog_links().
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markupsafe import Markup

# A blog post's name: its file name without .md.
POST_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The target of `[text](blog:slug)` or of a reference definition `[ref]: blog:slug`. The target is taken
# whole (up to a space, a bracket, '#' or '?') so that a malformed name is found and reported, not ignored;
# an anchor or query after the name stays after the post's URL.
BLOG_LINK_RE = re.compile(r"(?P<lead>\]\(\s*<?|^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?)blog:(?P<slug>[^\s()<>#?]*)", re.M)


def _label_table_cells(state: StateCore) -> None:
    """Give each body cell its column's heading as data-label, so a table can become cards on a phone."""
    headings: list[str] = []
    column = 0
    in_head = False
    for index, token in enumerate(state.tokens):
        if token.type == "thead_open":
            headings, in_head = [], True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            column = 0
        elif token.type == "th_open" and in_head:
            inline = state.tokens[index + 1]
            headings.append("".join(child.content for child in inline.children or [] if child.type == "text"))
        elif token.type == "td_open":
            if column < len(headings) and headings[column]:
                token.attrSet("data-label", headings[column])
            column += 1


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    """The one Markdown dialect: CommonMark with tables and strikethrough, raw HTML off; table cells labelled."""
    md = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(["table", "strikethrough"])
    md.core.ruler.push("label_table_cells", _label_table_cells)
    return md


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
