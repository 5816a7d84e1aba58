"""Build emails from marketing's Markdown: HTML with inlined CSS, a plain-text twin, footer and list headers.

Health details (a lead's area of interest, their message) never reach this module: the context offers
names and clinic facts only, and custom_args, categories and headers carry opaque ids only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import css_inline
from flask import current_app
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt

from core import markdown as core_markdown
from core.formatting import phone_text
from core.text import strip_bidi
from mailer import brand
from mailer.base import Message, PermanentError, SettingError
from mailer.tokens import unsubscribe_url

# Gmail clips messages above ~102 KB, hiding the footer with the unsubscribe link.
MAX_MESSAGE_BYTES = 100_000
# Keys SendGrid may echo back in events; values are opaque ids, never names, slugs or health details.
ALLOWED_CUSTOM_ARGS = frozenset({"delivery_id", "campaign", "step", "kind", "lead_id"})
_ID_VALUE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# `[text](blog:slug)` and reference definitions `[ref]: blog:slug`.
_BLOG_LINK = re.compile(
    r"(?P<lead>\]\(\s*<?|^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?)blog:(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)", re.M
)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")
# Variables marketing may use in emails; see email_context().
CONTEXT_VARIABLES = ("first_name", "clinic_name", "clinic_phone", "site_url", "campaign_name", "booking_url")


class ComposeError(PermanentError):
    """The message cannot be built (missing config, a broken template): sending again will not help."""


@lru_cache(maxsize=1)
def _sandbox() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=256)
def _compile(source: str):  # noqa: ANN202
    return _sandbox().from_string(source)


@lru_cache(maxsize=1)
def _text_parser() -> MarkdownIt:
    # The same dialect as core.markdown, so the text and HTML parts say the same thing.
    return MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(["table", "strikethrough"])


def _escape_markdown(value: Any) -> Any:
    """Make a variable's value plain text inside Markdown: a name like '[x](http://..)' stays text."""
    if isinstance(value, str):
        return _MD_SPECIAL.sub(r"\\\1", " ".join(value.split()))
    return value


def render_template_text(source: str, context: Mapping[str, Any], *, markdown: bool = True, where: str = "") -> str:
    """Fill {{ variables }} in a sandbox; an unknown variable is an error, not a blank."""
    values = {key: _escape_markdown(value) if markdown else value for key, value in context.items()}
    label = f"{where}: " if where else ""
    try:
        return _compile(source).render(values)
    except UndefinedError as exc:
        raise ComposeError(f"{label}{exc.message} (variables you can use: {', '.join(sorted(context))})") from None
    except TemplateSyntaxError as exc:
        raise ComposeError(f"{label}line {exc.lineno}: {exc.message}") from None
    except TemplateError as exc:
        raise ComposeError(f"{label}{exc}") from None


def blog_links(markdown: str) -> list[str]:
    """The blog slugs an email links to with `blog:<slug>`, in order, without repeats."""
    seen: list[str] = []
    for match in _BLOG_LINK.finditer(markdown):
        if match.group("slug") not in seen:
            seen.append(match.group("slug"))
    return seen


def provider_campaign_id(slug: str) -> str:
    """A campaign as the email provider sees it: a hash keyed by SECRET_KEY, since a slug can name a condition.

    Slugs are public page addresses, so an unkeyed hash of one could be matched by anyone who guesses it.
    """
    key = str(current_app.config["SECRET_KEY"]).encode()
    return "c" + hmac.new(key, b"campaign:" + slug.encode(), hashlib.sha256).hexdigest()[:12]


def provider_step_id(campaign_slug: str | None, step_id: str) -> str:
    """A step as the provider and link tags see it: its position (1 = first email), as the admin numbers steps.

    A step id like "knee" names the interest of every reader who gets that step. A step the loaded campaigns
    do not know gets a keyed hash instead.
    """
    from nurture.definitions import registry

    campaign = registry().get(campaign_slug or "")
    step = campaign.step(step_id) if campaign is not None else None
    if step is not None:
        return str(step.index + 1)
    key = str(current_app.config["SECRET_KEY"]).encode()
    return "s" + hmac.new(key, f"step:{campaign_slug}:{step_id}".encode(), hashlib.sha256).hexdigest()[:12]


def blog_url(slug: str, campaign_slug: str | None, step_id: str | None) -> str:
    """The public URL of a blog post, tagged so analytics credit the email that sent the reader."""
    query = {"utm_source": "nurture", "utm_medium": "email"}
    if campaign_slug:
        # The slug, not an opaque id: the dashboard counts blog visits per campaign by it, and the email's
        # own text, which the provider reads, already says what the campaign is about.
        query["utm_campaign"] = campaign_slug
    if step_id:
        query["utm_content"] = provider_step_id(campaign_slug, step_id)
    return f"{current_app.config['SITE_URL']}/blog/{slug}?{urlencode(query)}"


def rewrite_blog_links(markdown: str, campaign_slug: str | None, step_id: str | None) -> str:
    """Replace every `blog:<slug>` link target with the tagged public URL."""
    return _BLOG_LINK.sub(lambda m: m.group("lead") + blog_url(m.group("slug"), campaign_slug, step_id), markdown)


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
    for tok in _text_parser().parse(markdown):
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


def _domain() -> str:
    address = parseaddr(current_app.config["MAIL_FROM"])[1]
    return address.rpartition("@")[2].lower() or "localhost"


def _clean_custom_args(
    delivery_id: int | str | None,
    campaign_slug: str | None,
    step_id: str | None,
    extra: Mapping[str, Any] | None,
) -> dict[str, str]:
    args: dict[str, str] = {}
    if delivery_id is not None:
        args["delivery_id"] = str(delivery_id)
    if campaign_slug:
        args["campaign"] = provider_campaign_id(campaign_slug)
    if step_id:
        args["step"] = provider_step_id(campaign_slug, step_id)
    for key, value in (extra or {}).items():
        if key not in ALLOWED_CUSTOM_ARGS:
            raise ValueError(
                f"custom_args: {key!r} is not allowed (ids only: {', '.join(sorted(ALLOWED_CUSTOM_ARGS))})"
            )
        if value is None:
            continue
        value = str(value)
        if not _ID_VALUE.match(value):
            raise ValueError(f"custom_args: {key} must be an id (letters, digits, '.', '_', ':', '-')")
        args[key] = value
    return args


def build_message(
    *,
    to: str,
    subject: str,
    preheader: str,
    markdown: str,
    context: Mapping[str, Any],
    lead: Any = None,
    campaign_slug: str | None = None,
    step_id: str | None = None,
    delivery_id: int | str | None = None,
    reason: str,
    list_unsubscribe: bool = True,
    categories: Iterable[str] = (),
    custom_args: Mapping[str, Any] | None = None,
) -> Message:
    """Render one email from Markdown; marketing emails (list_unsubscribe) need a lead and the postal address."""
    address = _check_recipient(to, lead, list_unsubscribe)
    where = f"{campaign_slug}/{step_id}" if campaign_slug and step_id else ""
    rendered = _render(
        subject=subject,
        preheader=preheader,
        markdown=markdown,
        context=context,
        campaign_slug=campaign_slug,
        step_id=step_id,
        reason=reason,
        unsubscribe=(lambda: unsubscribe_url(lead.id)) if list_unsubscribe else None,
        address=address,
        where=where,
    )
    return _message(
        to=to,
        rendered=rendered,
        campaign_slug=campaign_slug,
        step_id=step_id,
        delivery_id=delivery_id,
        categories=categories,
        custom_args=custom_args,
        where=where,
    )


def _check_recipient(to: str, lead: Any, list_unsubscribe: bool) -> str:
    """The postal address, after refusing what can never be sent (no address, no lead, no recipient)."""
    address = (current_app.config.get("CLINIC_POSTAL_ADDRESS") or "").strip()
    if list_unsubscribe:
        if not address:
            # A setting, not this email, is wrong: sending pauses instead of failing every delivery.
            raise SettingError(
                "CLINIC_POSTAL_ADDRESS", "is not set: every marketing email must show the clinic's postal address"
            )
        if lead is None or getattr(lead, "id", None) is None:
            raise ComposeError("a marketing email needs the lead, for its unsubscribe link")
    if not to or "@" not in to:
        raise ComposeError("the recipient has no email address")
    return address


@dataclass(frozen=True)
class Rendered:
    """The parts of one email: subject, preheader, HTML (CSS inlined), text, and the unsubscribe URL if any."""

    subject: str
    preheader: str
    html: str
    text: str
    unsubscribe: str | None
    body_markdown: str = ""


def _render(
    *,
    subject: str,
    preheader: str,
    markdown: str,
    context: Mapping[str, Any],
    campaign_slug: str | None,
    step_id: str | None,
    reason: str,
    unsubscribe: Callable[[], str] | None,
    address: str,
    where: str,
) -> Rendered:
    """Fill the templates, convert the Markdown, lay it out and inline the CSS; `unsubscribe` is called when due."""
    config = current_app.config
    position = provider_step_id(campaign_slug, step_id) if step_id else None
    context = brand.with_booking_url(context, campaign_slug, position)
    body_md = render_template_text(markdown, context, where=where)
    body_md = rewrite_blog_links(body_md, campaign_slug, step_id)
    subject_text = " ".join(render_template_text(subject, context, markdown=False, where=where).split())
    preheader_text = " ".join(render_template_text(preheader or "", context, markdown=False, where=where).split())
    if not subject_text:
        raise ComposeError(f"{where or 'email'}: the subject is empty")

    link = unsubscribe() if unsubscribe is not None else None
    layout = {
        "subject": subject_text,
        "preheader": preheader_text,
        "body": brand.buttons(core_markdown.render(body_md), context.get("booking_url")),
        "body_text": markdown_to_text(body_md),
        "reason": reason,
        "unsubscribe_url": link,
        "clinic_name": config["CLINIC_NAME"],
        "clinic_address": address,
        "clinic_phone": phone_text(config.get("CLINIC_PHONE")),
        "site_url": config["SITE_URL"],
        **brand.brand(),
    }
    env = current_app.jinja_env
    html = env.get_template("email/layout.html").render(**layout)
    html = _inliner().inline(html)
    text = env.get_template("email/layout.txt").render(**layout).strip() + "\n"
    return Rendered(subject_text, preheader_text, html, text, link, body_md)


def _message(
    *,
    to: str,
    rendered: Rendered,
    campaign_slug: str | None,
    step_id: str | None,
    delivery_id: int | str | None,
    categories: Iterable[str],
    custom_args: Mapping[str, Any] | None,
    where: str,
) -> Message:
    """The Message around rendered parts: sender, list headers, categories, ids; refused when too big."""
    config = current_app.config
    headers: dict[str, str] = {}
    if rendered.unsubscribe:
        headers["List-Unsubscribe"] = f"<{rendered.unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    campaign_id = provider_campaign_id(campaign_slug) if campaign_slug else None
    if campaign_id:
        headers["List-Id"] = f"{config['CLINIC_NAME']} emails <{campaign_id}.{_domain()}>"

    cats = [c for c in dict.fromkeys([*([campaign_id] if campaign_id else []), *categories]) if c][:10]
    message = Message(
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        from_email=config["MAIL_FROM"],
        from_name=config.get("MAIL_FROM_NAME") or config["CLINIC_NAME"],
        reply_to=config.get("MAIL_REPLY_TO") or None,
        headers=headers,
        categories=cats,
        custom_args=_clean_custom_args(delivery_id, campaign_slug, step_id, custom_args),
    )
    size = len(message.html.encode("utf-8")) + len(message.text.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise ComposeError(f"{where or 'email'}: the email is {size // 1000} KB; keep it under 100 KB (Gmail clips it)")
    return message


# A campaign step's email is the same for every lead but for the first name and the unsubscribe link, so it
# is rendered once (per step, settings and layout) with markers in their place, and each message only puts the
# lead's values where the markers are, escaped as the full render would have escaped them.
NAME_VARIABLE = "first_name"


@dataclass(frozen=True)
class StepTemplate:
    """A step's email rendered with a name marker and a link marker, ready to fill for one lead."""

    step: Any
    rendered: Rendered
    name_marker: str
    link_marker: str

    def fill(self, first_name: str, unsubscribe: str) -> Rendered:
        """The email for a lead called `first_name` (already whitespace-normalized and printable)."""
        r, name, link = self.rendered, self.name_marker, self.link_marker
        # HTML after the inliner: text escapes & < > (quotes stay), attributes escape & and ".
        html_name = first_name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        html_link = unsubscribe.replace("&", "&amp;").replace('"', "&quot;")
        # The link first, then the name: a name is never scanned for markers again.
        return Rendered(
            subject=r.subject.replace(name, first_name),
            preheader=r.preheader.replace(name, first_name),
            html=r.html.replace(link, html_link).replace(name, html_name),
            text=r.text.replace(link, unsubscribe).replace(name, first_name),
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
    tree = _sandbox().parse(source)
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
    for block in _text_parser().parse(markdown):
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


def step_template(campaign: Any, step: Any, context: Mapping[str, Any], reason: str) -> StepTemplate | None:
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
    )
    key = (campaign.slug, step.id, fixed, reason, settings)
    cache: dict[tuple[Any, ...], tuple[Any, StepTemplate | None]] = current_app.extensions.setdefault(
        "mailer.step_templates", {}
    )
    entry = cache.get(key)
    # Identity, not equality: a reloaded campaign brings new Step objects and so a fresh rendering.
    if entry is not None and entry[0] is step:
        return entry[1]
    template = _build_step_template(campaign, step, context, reason)
    cache[key] = (step, template)
    return template


def _build_step_template(campaign: Any, step: Any, context: Mapping[str, Any], reason: str) -> StepTemplate | None:
    sources = (step.subject, step.preheader or "", step.markdown)
    if NAME_VARIABLE not in context or not all(_only_plain_uses(src, NAME_VARIABLE) for src in sources):
        return None
    # Letters and digits only: Markdown, Jinja and the CSS inliner leave them as they are; nobody can guess them.
    name_marker, link_marker = f"nm{secrets.token_hex(12)}", f"ul{secrets.token_hex(12)}"
    rendered = _render(
        subject=step.subject,
        preheader=step.preheader,
        markdown=step.markdown,
        context={**context, NAME_VARIABLE: name_marker},
        campaign_slug=campaign.slug,
        step_id=step.id,
        reason=reason,
        unsubscribe=lambda: link_marker,
        address=(current_app.config.get("CLINIC_POSTAL_ADDRESS") or "").strip(),
        where=step_where(campaign, step),
    )
    if not (
        # "&co{{ first_name }};" would make an entity of some names: such a step renders per lead.
        not re.search(f"&[#A-Za-z0-9]*{name_marker}", rendered.body_markdown)
        and _markers_in_text_only(rendered.body_markdown, name_marker)
        and _outside_tags(rendered.html, name_marker)
        and _inside_attributes(rendered.html, link_marker)
    ):
        return None
    return StepTemplate(step=step, rendered=rendered, name_marker=name_marker, link_marker=link_marker)


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # Media queries stay in a <style> block for phones; everything else moves into style="" attributes.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def email_context(lead: Any = None, campaign: Any = None) -> dict[str, Any]:
    """The variables an email may use: names and clinic facts only, never health details."""
    config = current_app.config
    # Names are cleaned at capture; rows stored before that may still hold bidirectional overrides.
    first_name = strip_bidi(getattr(lead, "first_name", None) or "").strip() if lead is not None else ""
    landing = f"{config['SITE_URL']}/{campaign.slug}" if campaign is not None else config["SITE_URL"]
    return {
        "first_name": first_name or "there",
        "clinic_name": config["CLINIC_NAME"],
        "clinic_phone": phone_text(config.get("CLINIC_PHONE")),
        "site_url": config["SITE_URL"],
        "campaign_name": getattr(campaign, "name", "") if campaign is not None else "",
        "booking_url": landing,
    }


def sample_context(campaign: Any = None) -> dict[str, Any]:
    """Context for a made-up lead, used to check that campaign emails render."""
    context = email_context(None, campaign)
    context["first_name"] = "Alex"
    return context


def step_where(campaign: Any, step: Any) -> str:
    """How an error names a campaign step: its email file (as `flask campaigns validate` does) and its id."""
    path = getattr(step, "body_path", None)
    return f"{_shown_path(path) if path is not None else campaign.slug}: step {step.id}"


@lru_cache(maxsize=512)
def _shown_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def marketing_reason() -> str:
    """Why a nurture reader gets the email, for the footer."""
    name = current_app.config["CLINIC_NAME"]
    return f"You are receiving this because you asked {name} about a consultation and agreed to hear from us by email."


def compose_step(campaign: Any, step: Any, lead: Any, delivery: Any) -> Message:
    """The email for one campaign step to one lead, recorded as `delivery`."""
    to = getattr(delivery, "recipient", None) or lead.email
    if not to:
        raise ComposeError(f"lead #{lead.id} has no email address (erased?)")
    context = email_context(lead, campaign)
    reason = marketing_reason()
    # What Markdown-escaping and the subject's whitespace clean-up make of any name.
    first_name = " ".join(str(context[NAME_VARIABLE]).split())
    template = None
    if fillable_name(first_name):
        # Same refusals, in the same order, as build_message.
        _check_recipient(to, lead, list_unsubscribe=True)
        template = step_template(campaign, step, context, reason)
    if template is None:
        return build_message(
            to=to,
            subject=step.subject,
            preheader=step.preheader,
            markdown=step.markdown,
            context=context,
            lead=lead,
            campaign_slug=campaign.slug,
            step_id=step.id,
            delivery_id=delivery.id,
            reason=reason,
            list_unsubscribe=True,
        )
    return _message(
        to=to,
        rendered=template.fill(first_name, unsubscribe_url(lead.id)),
        campaign_slug=campaign.slug,
        step_id=step.id,
        delivery_id=delivery.id,
        categories=(),
        custom_args=None,
        where=step_where(campaign, step),
    )


def compose_nurture_delivery(delivery: Any) -> Message:
    """Composer for kind 'nurture': reload the campaign, step and lead of a recorded delivery (retries use it)."""
    from core.db import db
    from leads.models import Lead
    from mailer.suppression import SuppressedError, is_suppressed
    from nurture.definitions import registry

    campaign = registry().get(delivery.campaign_slug or "")
    if campaign is None:
        raise ComposeError(f"campaign {delivery.campaign_slug!r} no longer exists")
    step = campaign.step(delivery.step_id or "")
    if step is None:
        raise ComposeError(f"campaign {campaign.slug!r} has no step {delivery.step_id!r}")
    lead = db.session.get(Lead, delivery.lead_id) if delivery.lead_id is not None else None
    if lead is None:
        raise ComposeError(f"delivery #{delivery.id} has no lead")
    to = delivery.recipient or lead.email
    if to and is_suppressed(db.session, to):
        raise SuppressedError("the address is on the suppression list")
    return compose_step(campaign, step, lead, delivery)
