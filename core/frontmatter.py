"""Split a Markdown file into its YAML front matter and its body."""

from __future__ import annotations

from typing import Any

import yaml


class FrontMatterError(ValueError):
    """The front matter is missing its closing line or is not a YAML mapping."""


class _TextDatesLoader(yaml.SafeLoader):
    """A SafeLoader that leaves dates as text, so a bad one is reported against its field, not as a crash."""


_TextDatesLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def split(text: str) -> tuple[dict[str, Any], str]:
    """Return (metadata, body); a file without a leading '---' line has empty metadata. Dates stay strings."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return {}, text
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            try:
                meta = yaml.load("".join(lines[1:index]), Loader=_TextDatesLoader) or {}  # noqa: S506 - a SafeLoader
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" (line {mark.line + 2})" if mark is not None else ""
                raise FrontMatterError(f"front matter is not valid YAML{where}") from None
            if not isinstance(meta, dict):
                raise FrontMatterError("front matter must be 'key: value' lines")
            return meta, "".join(lines[index + 1 :])
    raise FrontMatterError("front matter has no closing '---' line")
