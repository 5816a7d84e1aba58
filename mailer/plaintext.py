"""The plain-text part of an email: Markdown read by the same parser as the HTML part, written as text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from core.markdown import parser


def _inline_text(children: Iterable[Any]) -> str:
    parts: list[str] = []
    links: list[tuple[str, int]] = []
    for tok in children:
        if tok.type in ("text", "code_inline"):
            parts.append(tok.content)
        elif tok.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif tok.type == "image":
            parts.append(tok.content or "")
        elif tok.type == "link_open":
            links.append((str(tok.attrGet("href") or ""), len(parts)))
        elif tok.type == "link_close" and links:
            href, start = links.pop()
            label = "".join(parts[start:]).strip()
            if href and href not in (label, f"mailto:{label}"):
                parts.append(f" ({href})")
    return "".join(parts)


def markdown_to_text(markdown: str) -> str:
    """A readable plain-text version of Markdown: paragraphs, lists, headings, links as 'text (url)'."""
    blocks: list[str] = []
    lists: list[list[Any]] = []  # [marker, counter] per open list
    item_marker: str | None = None
    quote = 0
    for tok in parser().parse(markdown):
        kind = tok.type
        if kind == "bullet_list_open":
            lists.append(["-", 0])
        elif kind == "ordered_list_open":
            lists.append([".", int(tok.attrGet("start") or 1) - 1])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            if not lists:
                blocks.append("")
        elif kind == "list_item_open":
            current = lists[-1]
            if current[0] == "-":
                item_marker = "- "
            else:
                current[1] += 1
                item_marker = f"{current[1]}. "
        elif kind == "blockquote_open":
            quote += 1
        elif kind == "blockquote_close":
            quote -= 1
        elif kind == "inline":
            text = _inline_text(tok.children or [])
            indent = "   " * max(len(lists) - 1, 0)
            lines = text.split("\n")
            out = []
            for number, line in enumerate(lines):
                if item_marker is not None and number == 0:
                    out.append(indent + item_marker + line)
                elif lists:
                    out.append(indent + " " * len(item_marker or "- ") + line)
                else:
                    out.append(line)
            item_marker = None
            prefix = "> " * quote
            blocks.append("\n".join(prefix + line for line in out))
        elif kind in ("paragraph_close", "heading_close") and not lists:
            blocks.append("")
        elif kind in ("fence", "code_block"):
            blocks.append("\n".join("    " + line for line in tok.content.rstrip("\n").split("\n")))
            blocks.append("")
        elif kind == "hr":
            blocks.extend(["----------", ""])
    text = "\n".join(blocks)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
