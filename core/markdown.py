"""Markdown written by marketing, rendered safely: raw HTML is shown as text, never executed.

Also the one definition of the `blog:<slug>` link syntax that emails (and, later, pages) use to link to a post:
validation lists the links with blog_links() and composing replaces them with rewrite_blog_links(); and of
`![description](media:<key>)`, an image uploaded in the admin, shown at the width the reader's screen needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markupsafe import Markup

# A blog post's name: its file name without .md.
POST_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# The target of `[text](blog:slug)` or of a reference definition `[ref]: blog:slug`. The target is taken
# whole (up to a space, a bracket, '#' or '?') so that a malformed name is found and reported, not ignored;
# an anchor or query after the name stays after the post's URL.
BLOG_LINK_RE = re.compile(r"(?P<lead>\]\(\s*<?|^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?)blog:(?P<slug>[^\s()<>#?]*)", re.M)
# The target of `![description](media:key)`: an uploaded image's key, taken whole so a wrong one is reported.
MEDIA_IMAGE_RE = re.compile(r"!\[[^\]\n]*\]\(\s*<?media:(?P<key>[^\s()<>]*)")
# An image uploaded in the admin is named `media:<key>` (stored in the database); others are paths under static/.
MEDIA_PREFIX = "media:"
# How wide a body image is shown: the text column, never wider than the screen.
BODY_IMAGE_SIZES = "(max-width: 760px) 100vw, 720px"


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


def _image(self: Any, tokens: list, index: int, options: Any, env: dict) -> str:
    """An uploaded image (`media:<key>`) gets its stored widths as srcset, its shape and lazy loading."""
    token = tokens[index]
    src = str(token.attrGet("src") or "")
    if src.startswith(MEDIA_PREFIX):
        uploaded = (env.get("media") or {}).get(src.removeprefix(MEDIA_PREFIX))
        if uploaded is None:
            # Publishing refuses an unknown image; one deleted since shows its description, never a broken picture.
            return self.renderInline(token.children or [], options, env)
        token.attrSet("src", uploaded.url)
        token.attrSet("srcset", uploaded.srcset)
        token.attrSet("sizes", BODY_IMAGE_SIZES)
        token.attrSet("width", str(uploaded.width))
        token.attrSet("height", str(uploaded.height))
    token.attrSet("loading", "lazy")
    token.attrSet("decoding", "async")
    return self.image(tokens, index, options, env)


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    """The one Markdown dialect: CommonMark with tables and strikethrough, raw HTML off; table cells labelled."""
    md = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(["table", "strikethrough"])
    md.core.ruler.push("label_table_cells", _label_table_cells)
    md.add_render_rule("image", _image)
    return md


def render(text: str, media: Mapping[str, Any] | None = None) -> Markup:
    """Markdown to HTML with raw HTML disabled; `media` holds the uploaded images `media:<key>` may name."""
    return Markup(parser().render(text, {"media": media or {}}))  # noqa: S704 - raw HTML is off, so the output is safe


def media_images(markdown: str) -> list[str]:
    """The uploaded images shown with `![...](media:<key>)`, in order, without repeats."""
    return list(dict.fromkeys(match.group("key") for match in MEDIA_IMAGE_RE.finditer(markdown)))


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
