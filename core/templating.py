"""The one Jinja sandbox for text marketing writes (email subjects and bodies), and the names it may use.

Campaign files are checked by rendering them here with SAMPLE_CONTEXT; the nurture composer fills the same
names for a real lead. Anything else a template tries (attributes, unknown names) is refused by the sandbox.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

# The only names a campaign email may use, with the sample values validation and previews render them with.
SAMPLE_CONTEXT: dict[str, str] = {
    "first_name": "Alex",
    "clinic_name": "NexGenEsis Healthcare",
    "clinic_phone": "(303) 555-0100",
    "site_url": "https://www.example.org",
    "campaign_name": "Stem cell therapy",
    "booking_url": "https://www.example.org/stem-cell-therapy#consultation",
}
TEMPLATE_VARIABLES = tuple(SAMPLE_CONTEXT)
# Characters Markdown gives a meaning to; escaped in values put into Markdown, so a name stays text.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


@lru_cache(maxsize=1)
def sandbox() -> SandboxedEnvironment:
    """The sandboxed environment: an unknown name is an error, never a blank; nothing is auto-escaped."""
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    """A template compiled once per distinct source."""
    return sandbox().from_string(source)


def escape_markdown(value: Any) -> Any:
    """A value made plain text inside Markdown (whitespace collapsed): '[x](http://..)' stays text."""
    if isinstance(value, str):
        return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(value.split()))
    return value
