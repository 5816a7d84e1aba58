"""Build emails from marketing's Markdown: HTML with inlined CSS, a plain-text twin, footer and list headers.

Health details (a lead's area of interest, their message) never reach this module: the context offers
names and clinic facts only, and custom_args, categories and headers carry opaque ids only. The pieces:
mailer.render (the sandbox), mailer.plaintext (the text part), mailer.links (ids, blog links, custom_args),
mailer.step_templates (a step rendered once for all its readers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

import css_inline
from flask import current_app

from core import frontmatter
from core import markdown as core_markdown
from core.formatting import phone_text
from mailer import brand
from mailer.base import ComposeError, Message, SettingError
from mailer.links import clean_custom_args, provider_campaign_id, provider_step_id, rewrite_blog_links
from mailer.plaintext import markdown_to_text
from mailer.render import render_template_text
from mailer.tokens import unsubscribe_url

# Gmail clips messages above ~102 KB, hiding the footer with the unsubscribe link.
MAX_MESSAGE_BYTES = 100_000


def _domain() -> str:
    address = parseaddr(current_app.config["MAIL_FROM"])[1]
    return address.rpartition("@")[2].lower() or "localhost"


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
    address = check_recipient(to, lead, list_unsubscribe)
    where = f"{campaign_slug}/{step_id}" if campaign_slug and step_id else ""
    rendered = render_parts(
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
    return assemble(
        to=to,
        rendered=rendered,
        campaign_slug=campaign_slug,
        step_id=step_id,
        delivery_id=delivery_id,
        categories=categories,
        custom_args=custom_args,
        where=where,
    )


def build_template_email(
    template: str,
    *,
    to: str,
    context: Mapping[str, Any],
    delivery: Any,
    reason: str,
    lead: Any = None,
    campaign_slug: str | None = None,
) -> Message:
    """A transactional email (no unsubscribe headers) from a template file such as `alerts/email/digest.md`: front
    matter holds the subject and preheader, the body is Markdown; categories and custom_args name the kind."""
    source, _, _ = current_app.jinja_loader.get_source(current_app.jinja_env, template)
    meta, body = frontmatter.split(source)
    return build_message(
        to=to,
        subject=str(meta.get("subject", "")),
        preheader=str(meta.get("preheader", "")),
        markdown=body,
        context=context,
        lead=lead,
        campaign_slug=campaign_slug,
        delivery_id=delivery.id,
        reason=reason,
        list_unsubscribe=False,
        categories=(delivery.kind,),
        custom_args={"kind": delivery.kind},
    )


def check_recipient(to: str, lead: Any, list_unsubscribe: bool) -> str:
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


def render_parts(
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


def assemble(
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
        custom_args=clean_custom_args(delivery_id, campaign_slug, step_id, custom_args),
    )
    size = len(message.html.encode("utf-8")) + len(message.text.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        raise ComposeError(f"{where or 'email'}: the email is {size // 1000} KB; keep it under 100 KB (Gmail clips it)")
    return message


@lru_cache(maxsize=1)
def _inliner() -> css_inline.CSSInliner:
    # Media queries stay in a <style> block for phones; everything else moves into style="" attributes.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
