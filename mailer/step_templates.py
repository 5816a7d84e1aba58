"""The step-template cache: a campaign step's email is the same for every lead but for the first name and the
unsubscribe link, so it is rendered once (per step, settings and layout) with markers in their place
(core.slots), and each message only puts the lead's values where the markers are, escaped as the full render
would have escaped them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from jinja2 import nodes

from core.markdown import parser
from core.slots import Markers, Slots
from core.templating import sandbox
from mailer.compose import Rendered, render_parts

NAME_VARIABLE = "first_name"
_NAME, _LINK = "name", "link"


@dataclass(frozen=True)
class StepTemplate:
    """A step's email rendered with a name marker and a link marker, cut at them, ready to fill for one lead."""

    step: Any
    subject: Slots
    preheader: Slots
    html: Slots
    text: Slots

    def fill(self, first_name: str, unsubscribe: str) -> Rendered:
        """The email for a lead called `first_name` (already whitespace-normalized and printable)."""
        plain = {_NAME: first_name, _LINK: unsubscribe}
        # HTML after the inliner: text escapes & < > (quotes stay), attributes escape & and ".
        html = {
            _NAME: first_name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
            _LINK: unsubscribe.replace("&", "&amp;").replace('"', "&quot;"),
        }
        return Rendered(
            subject=self.subject.fill(plain),
            preheader=self.preheader.fill(plain),
            html=self.html.fill(html),
            text=self.text.fill(plain),
            unsubscribe=unsubscribe,
        )


# Inside a name, besides letters and spaces: what names commonly hold and Markdown shows as typed once escaped.
_NAME_PUNCTUATION = frozenset("'\u2019-.,")


def _is_letter(char: str) -> bool:
    return unicodedata.category(char)[0] in "LM"


def fillable_name(name: str) -> bool:
    """True for names Markdown reads as plain words, like the marker: letters at both ends, no digits or syntax.

    Other names (digits, brackets, '&', control characters...) are rendered in full, which is always right.
    """
    if not name or not (_is_letter(name[0]) and _is_letter(name[-1])):
        return False
    return all(_is_letter(c) or c == " " or c in _NAME_PUNCTUATION for c in name)


def _only_plain_uses(source: str, variable: str) -> bool:
    """True when `variable` is only ever printed as is ({{ first_name }}): no filter, test, condition or assignment."""
    tree = sandbox().parse(source)
    uses = sum(1 for node in tree.find_all(nodes.Name) if node.name == variable)
    plain = sum(
        1
        for output in tree.find_all(nodes.Output)
        for child in output.nodes
        if isinstance(child, nodes.Name) and child.name == variable
    )
    return uses == plain


def _markers_in_text_only(markdown: str, marker: str) -> bool:
    """True when every marker in the Markdown is plain text: not code, not inside a link or an image."""
    allowed = 0
    for block in parser().parse(markdown):
        depth = 0
        for tok in block.children or []:
            if tok.type == "link_open":
                depth += 1
            elif tok.type == "link_close":
                depth -= 1
            elif tok.type == "text" and depth == 0:
                allowed += tok.content.count(marker)
    return allowed == markdown.count(marker)


def _outside_tags(html: str, marker: str) -> bool:
    """True when every marker in the HTML is in text, not inside a tag or a style or script block."""
    lowered = html.lower()
    position = html.find(marker)
    while position != -1:
        if html.rfind("<", 0, position) > html.rfind(">", 0, position):
            return False
        for raw in ("style", "script"):
            if lowered.rfind(f"<{raw}", 0, position) > lowered.rfind(f"</{raw}", 0, position):
                return False
        position = html.find(marker, position + 1)
    return True


def _inside_attributes(html: str, marker: str) -> bool:
    """True when every marker in the HTML sits inside a tag (an attribute value)."""
    position = html.find(marker)
    while position != -1:
        if html.rfind("<", 0, position) < html.rfind(">", 0, position):
            return False
        position = html.find(marker, position + 1)
    return True


def step_template(campaign: Any, step: Any, context: Mapping[str, Any], reason: str, where: str) -> StepTemplate | None:
    """The cached rendering of a step for this context (names aside); None when it must be rendered per lead."""
    if current_app.jinja_env.auto_reload:
        return None  # the layout may change on disk
    config = current_app.config
    fixed = tuple(sorted((key, value) for key, value in context.items() if key != NAME_VARIABLE))
    settings = (
        config.get("CLINIC_POSTAL_ADDRESS"),
        config["CLINIC_NAME"],
        config.get("CLINIC_PHONE"),
        config["SITE_URL"],
        config.get("BRAND_COLOR"),
        config.get("BRAND_LOGO_URL"),
        config.get("MEDICAL_DISCLAIMER"),
    )
    key = (campaign.slug, step.id, step.subject, step.preheader, fixed, reason, settings)
    cache: dict[tuple[Any, ...], tuple[Any, StepTemplate | None]] = current_app.extensions.setdefault(
        "mailer.step_templates", {}
    )
    entry = cache.get(key)
    # Identity, not equality: a reloaded campaign brings new Step objects and so a fresh rendering.
    if entry is not None and entry[0] is step:
        return entry[1]
    template = _build_step_template(campaign, step, context, reason, where)
    cache[key] = (step, template)
    return template


def _build_step_template(
    campaign: Any, step: Any, context: Mapping[str, Any], reason: str, where: str
) -> StepTemplate | None:
    sources = (step.subject, step.preheader or "", step.markdown)
    if NAME_VARIABLE not in context or not all(_only_plain_uses(src, NAME_VARIABLE) for src in sources):
        return None
    markers = Markers((_NAME, _LINK))
    name_marker, link_marker = markers[_NAME], markers[_LINK]
    rendered = render_parts(
        subject=step.subject,
        preheader=step.preheader,
        markdown=step.markdown,
        context={**context, NAME_VARIABLE: name_marker},
        campaign_slug=campaign.slug,
        step_id=step.id,
        reason=reason,
        unsubscribe=lambda: link_marker,
        address=(current_app.config.get("CLINIC_POSTAL_ADDRESS") or "").strip(),
        where=where,
    )
    if not (
        # "&co{{ first_name }};" would make an entity of some names: such a step renders per lead.
        not re.search(f"&[#A-Za-z0-9]*{name_marker}", rendered.body_markdown)
        and _markers_in_text_only(rendered.body_markdown, name_marker)
        and _outside_tags(rendered.html, name_marker)
        and _inside_attributes(rendered.html, link_marker)
    ):
        return None
    return StepTemplate(
        step=step,
        subject=markers.cut(rendered.subject),
        preheader=markers.cut(rendered.preheader),
        html=markers.cut(rendered.html),
        text=markers.cut(rendered.text),
    )
