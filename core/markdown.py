"""Markdown written by marketing, rendered safely: raw HTML is shown as text, never executed."""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markupsafe import Markup


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
def _parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(["table", "strikethrough"])
    parser.core.ruler.push("label_table_cells", _label_table_cells)
    return parser


def render(text: str) -> Markup:
    """Markdown to HTML with raw HTML disabled."""
    return Markup(_parser().render(text))  # noqa: S704 - raw HTML is off, so the output is safe
