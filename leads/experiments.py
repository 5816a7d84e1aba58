"""Headline tests on landing pages, without cookies: each page view is assigned a variant at random (by the
weights), the form carries it back in a signed hidden field, and views are counted per variant in memory and
written in batches (never a write per page view)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import date

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from core import signing
from core.clock import now
from core.db import db
from leads.models import VariantView
from studio.definitions import Campaign

FLUSH_EVERY = 50
FLUSH_SECONDS = 5.0
_SALT = "landing-variant"


def pick(campaign: Campaign) -> str | None:
    """A variant for this page view ('<experiment>:b'), or None when the page tests nothing."""
    variants = campaign.page.variants
    if not variants:
        return None
    chosen = random.choices(variants, weights=[v.weight for v in variants])[0]
    return f"{campaign.page.experiment}:{chosen.name}"


def _serializer() -> URLSafeSerializer:
    return signing.serializer(current_app.config["SECRET_KEY"], _SALT)


def sign(slug: str, variant: str | None) -> str:
    """The form's hidden value: the page and its variant, signed so nobody can count views for another."""
    return _serializer().dumps([slug, variant]) if variant else ""


def read(value: str | None, campaign: Campaign) -> str | None:
    """The variant a signed value names, when it is one of this page's current experiment; else None."""
    if not value or not campaign.page.variants:
        return None
    try:
        slug, variant = _serializer().loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    experiment, _, name = str(variant).partition(":")
    names = {v.name for v in campaign.page.variants}
    if slug != campaign.slug or experiment != campaign.page.experiment or name not in names:
        return None
    return str(variant)


class ViewCounter:
    """Counts of views per (day, page, variant) waiting to be written; thread-safe, one per app."""

    def __init__(self, engine: Engine, flush_every: int = FLUSH_EVERY, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.engine = engine
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._counts: Counter[tuple[date, str, str]] = Counter()
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def count(self, slug: str, variant: str) -> None:
        """One view of this variant; written with the next batch."""
        with self._lock:
            self._counts[(now().date(), slug, variant)] += 1
            due = sum(self._counts.values()) >= self.flush_every or time.monotonic() - self._last >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> int:
        """Write what is waiting (added to the day's row); returns the views written."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._last = time.monotonic()
        if not counts:
            return 0
        table = VariantView.__table__
        insert = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(table)
        stmt = insert.on_conflict_do_update(
            index_elements=["day", "landing_slug", "variant"], set_={"views": table.c.views + insert.excluded.views}
        )
        rows = [{"day": d, "landing_slug": s, "variant": v, "views": n} for (d, s, v), n in sorted(counts.items())]
        try:
            with self.engine.begin() as conn:
                conn.execute(stmt, rows)
        except Exception:  # noqa: BLE001 - counting must never break a page; the counts go back for the next try
            with self._lock:
                self._counts.update(counts)
            return 0
        return sum(counts.values())


def counter() -> ViewCounter:
    """This app's view counter."""
    found = current_app.extensions.get("leads.variant_views")
    if found is None:
        found = current_app.extensions.setdefault("leads.variant_views", ViewCounter(db.engine))
    return found
