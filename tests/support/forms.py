"""Reading forms the way a browser sends them back."""

from __future__ import annotations

import re


def hidden_fields(html: str) -> dict[str, str]:
    """Every hidden input of a page, as a browser would send it back."""
    fields = {}
    for tag in re.findall(r"<input[^>]*type=\"hidden\"[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            fields[name.group(1)] = value.group(1).replace("&amp;", "&") if value else ""
    return fields
