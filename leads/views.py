"""Landing pages at /<slug>, the consultation form's post, and the thank-you page."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Blueprint, Flask, Response, abort, current_app, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape

from core.clock import now
from core.db import db
from core.extensions import limiter
from core.formatting import next_business_day
from core.markdown import media_images, rewrite_blog_links
from core.markdown import render as render_markdown
from core.query import first_values
from core.signing import csrf_token
from core.slots import Markers, Slots
from leads import experiments, services
from leads.forms import SignupForm, capped, looks_like_a_bot, plain_signup, seconds_since, sign_started
from leads.models import UTM_FIELDS
from studio.definitions import RESERVED_SLUGS, Campaign
from studio.media import images_by_key
from studio.registry import registry, served

log = logging.getLogger(__name__)

bp = Blueprint("leads", __name__)

_utm_value = capped(100)
_referrer_value = capped(1000)


def _campaign_or_404(slug: str) -> Campaign:
    """The active campaign at this slug; anything else is the 404 page."""
    if slug in RESERVED_SLUGS:
        abort(404)
    # Within a request: the settings were refreshed before it (studio.settings.refresh), registry() would again.
    campaign = served(current_app._get_current_object()).get(slug)  # type: ignore[attr-defined]
    if campaign is None or not campaign.active:
        abort(404)
    return campaign


def _page_html(campaign: Campaign) -> Markup:
    """The campaign's Markdown as HTML, rendered once per loaded campaign (campaigns never change after start-up)."""
    cache: dict[str, tuple[Campaign, Markup]] = current_app.extensions.setdefault("leads.page_html", {})
    entry = cache.get(campaign.slug)
    # Identity, not equality: a reloaded registry brings new Campaign objects and so a fresh render.
    if entry is None or entry[0] is not campaign:
        # `blog:<slug>` links work on pages as in emails: they become the post's address on this site.
        markdown = rewrite_blog_links(campaign.page.markdown, lambda post: f"/blog/{post}")
        # Uploaded images (`media:<key>`) in their stored sizes; looked up once per loaded campaign, not per view.
        images = images_by_key(db.session) if media_images(markdown) else None
        entry = (campaign, render_markdown(markdown, images))
        cache[campaign.slug] = entry
    return entry[1]


def _render(campaign: Campaign, form: SignupForm, status: int = 200, notice: str | None = None) -> Response:
    html = render_template(
        "leads/landing.html",
        campaign=campaign,
        page_html=_page_html(campaign),
        form=form,
        form_notice=notice,
    )
    return Response(html, status=status)


# markupsafe's escape of a plain string in one C call: the five characters it replaces, replaced as it does.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})
# translate looks up every character; most values (the signed ones always) hold none of the five.
_NEEDS_ESCAPE = re.compile("[&<>\"']")

# What differs between two first visits to a landing page; everything else is the same bytes for everyone.
PAGE_SLOTS = (*UTM_FIELDS, "referrer", "started", "csrf_token", "landing_variant")


@dataclass(frozen=True)
class LandingSkeleton:
    """A campaign's landing page rendered once, cut at the per-visit values (core.slots)."""

    campaign: Campaign
    slots: Slots
    # The literal parts already UTF-8: the page is mostly them, and encoding ~14 kB of text on every view (text
    # with one non-ASCII letter is slow to join and encode) cost more than filling the slots.
    encoded: tuple[bytes | str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = self.slots.parts
        encoded = tuple(part.encode() if index % 2 == 0 else part for index, part in enumerate(parts))
        object.__setattr__(self, "encoded", encoded)

    def fill(self, values: Mapping[str, str]) -> bytes:
        """The page as UTF-8, each slot's value escaped as the form widgets escape attribute values."""
        out: list[bytes | str] = list(self.encoded)
        for index in range(1, len(out), 2):
            value = values[out[index]]  # type: ignore[index]
            # As markupsafe's escape, which turns " into &#34; exactly as the widgets' html_params does.
            if type(value) is not str:
                value = str(escape(value))
            elif _NEEDS_ESCAPE.search(value) is not None:
                value = value.translate(_ESCAPES)
            out[index] = value.encode()
        return b"".join(out)  # type: ignore[arg-type]


def _landing_form(slug: str, values: Mapping[str, str]) -> SignupForm:
    """A fresh form for this landing page carrying the visit's values (UTM, referrer, start time, token)."""
    form = SignupForm(formdata=None).offer(registry().get(slug).page.interests)
    for name in (*UTM_FIELDS, "referrer", "started", "landing_variant"):
        getattr(form, name).data = values[name]
    form.landing.data = slug
    if form.meta.csrf:
        form[form.meta.csrf_field_name].current_token = values["csrf_token"]
    return form


def _skeleton(campaign: Campaign, token: str, app: Flask, script_root: str) -> LandingSkeleton | None:
    """The landing page of `campaign` cut at its slots, built on first use; None while templates auto-reload."""
    if app.jinja_env.auto_reload:
        return None
    cache: dict[tuple[str, str], LandingSkeleton] = app.extensions.setdefault("leads.landing_pages", {})
    key = (campaign.slug, script_root, campaign.page.headline, campaign.page.intro)
    skeleton = cache.get(key)
    if skeleton is not None and skeleton.campaign is campaign:
        return skeleton
    # Markers no visitor can guess, so a crafted UTM value can never be taken for a slot.
    markers = Markers(PAGE_SLOTS)
    html = _render(campaign, _landing_form(campaign.slug, markers.values())).get_data(as_text=True)
    if token and token in html:
        return None  # this visitor's own token leaked into the page: never serve it to anyone else
    skeleton = LandingSkeleton(campaign=campaign, slots=markers.cut(html))
    cache[key] = skeleton
    return skeleton


def _csrf_checked() -> bool:
    """The post's CSRF token was checked by CSRFProtect before the view (or CSRF is off, as in some tests)."""
    return bool(g.get("csrf_valid")) or not current_app.config.get("WTF_CSRF_ENABLED", True)


def _signup_limit() -> str:
    return current_app.config["SIGNUP_RATE_LIMIT"]


@bp.get("/<slug>")
def landing(slug: str) -> Response:
    """Show a campaign's landing page with the form, carrying the visit's UTM tags and referrer."""
    campaign = _campaign_or_404(slug)
    # The objects behind the proxies, looked up once: every lookup of a proxy finds the context again.
    app, req = current_app._get_current_object(), request._get_current_object()  # type: ignore[attr-defined]
    # A plain dict: MultiDict.get raises and catches an HTTP exception for every tag the address does not carry.
    args = first_values()
    values = {}
    for name in UTM_FIELDS:
        given = args.get(name)
        values[name] = _utm_value(given) if given else ""  # most visits carry only some tags
    referrer = req.environ.get("HTTP_REFERER")  # req.referrer, without the header lookup's calls
    values["referrer"] = _referrer_value(referrer) if referrer else ""
    values["started"] = sign_started(app)
    # Also puts the token's secret in the visitor's session, as rendering the form's token field does.
    values["csrf_token"] = csrf_token() if app.config.get("WTF_CSRF_ENABLED", True) else ""
    # A headline test: this view's variant, counted, and carried back by the form (no cookie).
    variant = experiments.pick(campaign)
    values["landing_variant"] = experiments.sign(slug, variant)
    if variant:
        experiments.counter().count(slug, variant)
        campaign = campaign.with_page_variant(variant.rpartition(":")[2])
    # The page is the same for every first visit but for these values: render it once, then fill them in.
    skeleton = _skeleton(campaign, values["csrf_token"], app, req.script_root)
    if skeleton is None:
        return _render(campaign, _landing_form(slug, values))
    return Response(skeleton.fill(values), mimetype="text/html")


@bp.post("/<slug>")
@limiter.limit(_signup_limit, methods=["POST"])
def signup(slug: str) -> Response:
    """Take a consultation request: bots see the thank-you page, mistakes come back marked, the rest is stored."""
    campaign = _campaign_or_404(slug)
    # The form posts to "#form-errors" so a page with mistakes opens at them; a redirect without a fragment of
    # its own would inherit it, so the thank-you page names its top.
    thank_you = url_for("leads.thank_you", slug=slug, _anchor="top")
    # Only form bodies count; JSON or anything else is treated as an empty form, never parsed. A post plainly
    # right in every field is read without building the form (leads.forms.plain_signup); the rest goes through it.
    plain = plain_signup(request.form, campaign.page.interests) if _csrf_checked() else None
    if plain is not None:
        if looks_like_a_bot(plain.honeypot, plain.started):
            log.info("signup on %s dropped by the spam checks", slug)
            return redirect(thank_you, code=303)
        answers, tracking = plain.data, plain.tracking
        variant = experiments.read(plain.landing_variant, campaign)
    else:
        form = SignupForm(formdata=request.form).offer(campaign.page.interests)
        if form.is_bot:
            log.info("signup on %s dropped by the spam checks", slug)
            return redirect(thank_you, code=303)
        variant = experiments.read(form.landing_variant.data, campaign)
        if not form.validate():
            # The same headline again: a visitor correcting a field must not see the page change under them.
            shown = campaign.with_page_variant(variant.rpartition(":")[2]) if variant else campaign
            return _render(shown, form, status=400)
        answers, tracking = form.signup_data(), form.tracking()
    meta = {
        **tracking,
        "landing_variant": variant,
        "landing_slug": slug,
        "user_agent": request.user_agent.string or None,
        "campaign": campaign,
    }
    # Everything that needs no database happens before the write lock: on SQLite there is one for all workers.
    signup = services.prepare_signup(answers, meta)
    with db.write_transaction() as session:
        services.store_signup(session, signup)
    return redirect(thank_you, code=303)


READING = 2


def _reading(campaign: Campaign) -> list:
    """Posts worth reading while the visitor waits: about this treatment first, then the newest."""
    posts = current_app.extensions.get("blog")
    if posts is None:
        return []
    newest = posts.posts
    about = [post for post in newest if post.treatment == campaign.slug]
    return (about + [post for post in newest if post not in about])[:READING]


@bp.get("/<slug>/thank-you")
def thank_you(slug: str) -> str:
    """Tell the visitor what happens next and when, without repeating anything they typed."""
    campaign = _campaign_or_404(slug)
    return render_template(
        "leads/thank_you.html", campaign=campaign, reply_by=next_business_day(now()), posts=_reading(campaign)
    )


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError) -> Response:
    """An expired or missing form token: show the form again with the visitor's input and a fresh token."""
    slug = (request.view_args or {}).get("slug", "")
    campaign = registry().get(slug) if slug and slug not in RESERVED_SLUGS else None
    notice = "Your form expired before it was sent. Please check your details and send it again."
    if request.method != "POST" or campaign is None or not campaign.active:
        return Response(render_template("errors/error.html", title="Please try again", message=notice, code=400), 400)
    form = SignupForm(formdata=request.form).offer(campaign.page.interests)
    if seconds_since(form.started.data) is None:
        # Without a genuine start time the corrected re-post would be taken for a bot.
        form.started.data = sign_started()
    return _render(campaign, form, status=400, notice=notice)
