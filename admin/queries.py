"""Read-only queries of the admin screens: the lead filter (list and CSV share it), dashboard, campaigns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Select, and_, case, func, literal_column, not_, or_, select, text
from sqlalchemy.orm import Session

from admin.search import STATUS_RANK_SQL, search_clause
from core.formatting import local_text, plural
from leads.models import INTERESTS, STATUSES, Lead, StatusChange, Submission, VariantView
from mailer.health import stale_batches, stale_note
from mailer.ledger import provider_pause
from mailer.models import Delivery, ProviderEvent
from nurture.health import last_heartbeat, worker_stopped
from nurture.models import Enrollment
from public.models import PageView
from studio.definitions import Campaign, Step
from studio.experiments import Arm, Verdict, verdict
from studio.registry import registry

PER_PAGE = 50
SORTS = {
    "waiting": "Waiting first",
    "newest": "Newest first",
    "oldest": "Oldest first",
    "name": "Name",
    "status": "Status",
}
BOOKED_STATUSES = ("booked", "patient")
FIRST_YEAR, LAST_YEAR = 1900, 2999  # dates a filter accepts


@dataclass(frozen=True)
class LeadFilter:
    """What the leads table shows; parsed from the query string, rendered back into links."""

    q: str = ""
    status: str = ""
    campaign: str = ""
    step: str = ""  # with campaign: leads whose next email in it is this step
    interest: str = ""
    source: str = ""
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "waiting"
    page: int = 1
    # Where the previous page ended (Next links carry it): the page starts there instead of counting rows to skip.
    after: str = ""
    errors: tuple[str, ...] = field(default=())

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> LeadFilter:
        """Parse request.args; unknown values are dropped with a message instead of failing."""
        errors: list[str] = []

        def pick(name: str, allowed: Any) -> str:
            value = (args.get(name) or "").strip()
            if value and value not in allowed:
                errors.append(f"Unknown {name} {value[:40]!r} ignored.")
                return ""
            return value

        def day(name: str) -> date | None:
            value = (args.get(name) or "").strip()
            if not value:
                return None
            label = name.replace("_", " ").capitalize()
            try:
                parsed = date.fromisoformat(value)
            except ValueError:
                errors.append(f"{label} {value[:20]!r} is not a date (use YYYY-MM-DD).")
                return None
            if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
                # Day arithmetic and time-zone shifts at the calendar's ends overflow.
                errors.append(f"{label} {value[:20]!r} is out of range (use a year from {FIRST_YEAR} to {LAST_YEAR}).")
                return None
            return parsed

        try:
            page = max(1, min(int(args.get("page") or 1), 1_000_000))
        except ValueError:
            page = 1
        sort = (args.get("sort") or "waiting").strip()
        return cls(
            q=(args.get("q") or "").strip()[:200],
            status=pick("status", STATUSES),
            campaign=(args.get("campaign") or "").strip()[:64],
            step=(args.get("step") or "").strip()[:64] if args.get("campaign") else "",
            interest=pick("interest", _known_interests()),
            source=(args.get("source") or "").strip()[:100],
            date_from=day("date_from"),
            date_to=day("date_to"),
            sort=sort if sort in SORTS else "waiting",
            page=page,
            after=(args.get("after") or "").strip()[:80],
            errors=tuple(errors),
        )

    def args(self, **changes: Any) -> dict[str, str]:
        """Query-string arguments for a link to this filter with some values changed."""
        values = replace(self, **changes) if changes else self
        out = {
            "q": values.q,
            "status": values.status,
            "campaign": values.campaign,
            "step": values.step,
            "interest": values.interest,
            "source": values.source,
            "date_from": values.date_from.isoformat() if values.date_from else "",
            "date_to": values.date_to.isoformat() if values.date_to else "",
            "sort": "" if values.sort == "waiting" else values.sort,
            "page": "" if values.page == 1 else str(values.page),
            "after": values.after,
        }
        return {k: v for k, v in out.items() if v}

    @property
    def active(self) -> bool:
        """Whether anything narrows the list."""
        return bool(
            self.q or self.status or self.campaign or self.interest or self.source or self.date_from or self.date_to
        )


def local_day_start(day: date, tz: str) -> datetime:
    """Midnight of `day` in the clinic's time zone, as aware UTC."""
    return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)


def waiting_clause() -> Any:
    """New leads nobody has contacted yet: the front desk's call-back queue."""
    # A literal 'new' (not a bound parameter) so SQLite matches the partial index ix_leads_waiting.
    return and_(Lead.status == literal_column("'new'"), Lead.contacted_at.is_(None))


def _campaign_clause(campaign: str, part: str) -> Any:
    """Leads of a campaign: landed on its page, or enrolled in it. `part` picks one of the two disjoint halves."""
    landed = Lead.landing_slug == campaign
    if part == "landed":
        return landed
    enrolled = select(Enrollment.lead_id).where(Enrollment.campaign_slug == campaign)
    if part == "enrolled_only":
        # Driven by ix_enrollments_campaign_lead: only that campaign's enrollments are looked at.
        return and_(or_(Lead.landing_slug.is_(None), Lead.landing_slug != campaign), Lead.id.in_(enrolled))
    # Row by row (a probe of the (lead_id, campaign_slug) unique index), so an ordered, limited page
    # stops after a page's worth of rows instead of building the whole set first.
    member = select(Enrollment.id).where(Enrollment.lead_id == Lead.id, Enrollment.campaign_slug == campaign)
    return or_(landed, member.exists())


def interest_choices() -> dict[str, str]:
    """Every area of interest a form offers, with its label: the clinic's list, then each campaign's own options."""
    found = dict(INTERESTS)
    for campaign in registry().all():
        for value, label in campaign.page.interests:
            found.setdefault(value, label)
    return found


def _known_interests() -> set[str]:
    return set(interest_choices())


def _waiting_at_step(campaign_slug: str, step_id: str) -> Any:
    """Leads whose sequence in this campaign has this step next (what the campaign page's Waiting counts)."""
    campaign = registry().get(campaign_slug)
    index = next((i for i, s in enumerate(campaign.steps) if s.id == step_id), None) if campaign else None
    if index is None:
        return literal_column("1 = 0")
    return Lead.id.in_(
        select(Enrollment.lead_id).where(
            Enrollment.campaign_slug == campaign_slug,
            Enrollment.state == "active",
            Enrollment.next_step == index,
            Enrollment.next_send_at.is_not(None),
        )
    )


def filtered_leads(f: LeadFilter, tz: str, session: Session, campaign_part: str = "any") -> Select:
    """SELECT of the leads matching the filter, unordered; the list, its count and the CSV all use it."""
    stmt = select(Lead).where(Lead.erased_at.is_(None))
    if f.q:
        stmt = stmt.where(search_clause(f.q, session.connection()))
    if f.status:
        stmt = stmt.where(Lead.status == f.status)
    if f.interest:
        stmt = stmt.where(Lead.interest == f.interest)
    if f.source:
        stmt = stmt.where(Lead.source == f.source)
    if f.campaign:
        stmt = stmt.where(_campaign_clause(f.campaign, campaign_part))
    if f.campaign and f.step:
        stmt = stmt.where(_waiting_at_step(f.campaign, f.step))
    if f.date_from:
        stmt = stmt.where(Lead.created_at >= local_day_start(f.date_from, tz))
    if f.date_to:
        stmt = stmt.where(Lead.created_at < local_day_start(f.date_to + timedelta(days=1), tz))
    return stmt


def _ordered(stmt: Select, sort: str) -> Select:
    if sort == "oldest":
        return stmt.order_by(Lead.created_at.asc(), Lead.id.asc())
    if sort == "name":
        return stmt.order_by(func.lower(Lead.last_name), func.lower(Lead.first_name), Lead.id)
    if sort == "status":
        # ix_leads_status_order holds exactly this expression.
        order = literal_column(f"({STATUS_RANK_SQL.format(p='leads.')})")
        return stmt.order_by(order, Lead.created_at.desc(), Lead.id.desc())
    return stmt.order_by(Lead.created_at.desc(), Lead.id.desc())


COUNT_LIMIT = 10_000  # counted exactly up to here; past it the page says "more than" (and PostgreSQL's estimate)


def _capped_count(session: Session, stmt: Select) -> int:
    """How many rows `stmt` returns, reading at most COUNT_LIMIT + 1 of them."""
    limited = stmt.with_only_columns(Lead.id).limit(COUNT_LIMIT + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(limited)) or 0)


def _estimate(session: Session, stmt: Select) -> int | None:
    """PostgreSQL's planner estimate of the rows `stmt` returns (no rows read); None on SQLite."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return None
    compiled = stmt.with_only_columns(Lead.id).compile(
        dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
    )
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar()
    return int(plan[0]["Plan"]["Plan Rows"])


@dataclass(frozen=True)
class Count:
    """A count read up to COUNT_LIMIT: exact below it, else "more than" with the planner's estimate if any."""

    value: int
    exact: bool = True
    estimate: int | None = None


def _count(session: Session, stmts: list[Select]) -> Count:
    """The rows of the union of disjoint statements, each read at most COUNT_LIMIT + 1 rows far."""
    total = 0
    for stmt in stmts:
        total += _capped_count(session, stmt)
        if total > COUNT_LIMIT:  # past the limit already: the other parts cannot make it exact
            break
    if total <= COUNT_LIMIT:
        return Count(total)
    estimates = [_estimate(session, stmt) for stmt in stmts]
    estimate = None if None in estimates else max(COUNT_LIMIT + 1, sum(e or 0 for e in estimates))
    return Count(COUNT_LIMIT, exact=False, estimate=estimate)


def _counts(session: Session, f: LeadFilter, tz: str) -> tuple[Count, Count]:
    """(matching leads, of which waiting), each read from an index and at most COUNT_LIMIT + 1 rows far."""
    if f.campaign:
        # The two disjoint halves of a campaign each count from one index (landing page, then enrollments);
        # one pass over their union would read every member row.
        parts = [filtered_leads(f, tz, session, campaign_part=p) for p in ("landed", "enrolled_only")]
    else:
        parts = [filtered_leads(f, tz, session)]
    return _count(session, parts), _count(session, [p.where(waiting_clause()) for p in parts])


@dataclass
class LeadPage:
    """One page of the leads table; past COUNT_LIMIT the counts are bounds (`total.exact` is False)."""

    leads: list[Lead]
    total: Count
    waiting: Count
    page: int
    pages: int
    more: bool  # a next page exists
    after: str = ""  # the Next link's starting point, for sorts that have one


KEYSET_SORTS = ("waiting", "newest", "oldest")
CURSOR_TIME = "%Y%m%dT%H%M%S%f"  # UTC, nothing a URL would encode


def _cursor(f: LeadFilter) -> tuple[str, datetime, int] | None:
    """The parsed `after` ("w" or "r" for the waiting queue or the rest, a UTC time, a lead id); None if absent
    or not one of ours (the page then counts rows to skip, as `page` says)."""
    if not f.after or f.sort not in KEYSET_SORTS:
        return None
    try:
        part, stamp, lead_id = f.after.split("_")
        at = datetime.strptime(stamp, CURSOR_TIME).replace(tzinfo=UTC)
        return (part, at, int(lead_id)) if part in ("w", "r") else None
    except ValueError:
        return None


def _next_cursor(lead: Lead) -> str:
    part = "w" if lead.status == "new" and lead.contacted_at is None else "r"
    return f"{part}_{lead.created_at.astimezone(UTC).strftime(CURSOR_TIME)}_{lead.id}"


def _before(at: datetime, lead_id: int) -> Any:
    # Spelled so the created_at index bounds the walk: (created_at, id) < (at, id), newest first.
    return and_(Lead.created_at <= at, or_(Lead.created_at < at, Lead.id < lead_id))


def _past(at: datetime, lead_id: int) -> Any:
    return and_(Lead.created_at >= at, or_(Lead.created_at > at, Lead.id > lead_id))


def lead_page(session: Session, f: LeadFilter, tz: str, per_page: int | None = None) -> LeadPage:
    """The requested page; with the default sort the waiting queue (oldest first) comes before everyone else.

    A page reached by a Next link starts where the previous one ended (keyset), so a deep page costs what the
    first does; a page number alone skips rows (fine for the first hundreds of pages).
    """
    per_page = per_page or PER_PAGE
    base = filtered_leads(f, tz, session)
    cursor = _cursor(f)
    offset = 0 if cursor else (f.page - 1) * per_page
    total, waiting = _counts(session, f, tz)
    if f.status and f.sort in KEYSET_SORTS and session.get_bind().dialect.name == "sqlite":
        # SQLite would read every lead of the status and source (ix_leads_funnel) and sort them; walking the
        # status in time order stops after a page. (PostgreSQL's planner weighs the LIMIT and finds this alone.)
        base = base.with_hint(Lead, "INDEXED BY ix_leads_status_created", "sqlite")
    rest = base.where(not_(waiting_clause())).order_by(Lead.created_at.desc(), Lead.id.desc())
    first = base.where(waiting_clause()).order_by(Lead.created_at.asc(), Lead.id.asc())
    if cursor and f.sort == "newest":
        leads = list(session.scalars(_ordered(base.where(_before(*cursor[1:])), f.sort).limit(per_page + 1)))
    elif cursor and f.sort == "oldest":
        leads = list(session.scalars(_ordered(base.where(_past(*cursor[1:])), f.sort).limit(per_page + 1)))
    elif cursor and cursor[0] == "r":
        leads = list(session.scalars(rest.where(_before(*cursor[1:])).limit(per_page + 1)))
    elif cursor:
        leads = list(session.scalars(first.where(_past(*cursor[1:])).limit(per_page + 1)))
        if len(leads) <= per_page:
            leads += list(session.scalars(rest.limit(per_page + 1 - len(leads))))
    elif f.sort != "waiting":
        leads = list(session.scalars(_ordered(base, f.sort).limit(per_page + 1).offset(offset)))
    else:
        # Two index walks (the partial waiting index, then created_at) instead of sorting every match; a search
        # narrows each walk through the search index first. One row more than a page says whether a next exists.
        leads = []
        if not waiting.exact or offset < waiting.value:
            leads = list(session.scalars(first.limit(per_page + 1).offset(offset)))
        if len(leads) <= per_page:  # the waiting queue ends on this page or before it
            if waiting.exact:
                before = waiting.value
            elif leads:
                before = offset + len(leads)
            else:  # a page past a queue of more than COUNT_LIMIT: counted in full, only here
                before = int(session.scalar(select(func.count()).select_from(first.subquery())) or 0)
            remaining = per_page + 1 - len(leads)
            leads += list(session.scalars(rest.limit(remaining).offset(max(0, offset - before))))
    more = len(leads) > per_page
    leads = leads[:per_page]
    pages = max(1, -(-total.value // per_page)) if total.exact else max(f.page + int(more), COUNT_LIMIT // per_page)
    after = _next_cursor(leads[-1]) if more and f.sort in KEYSET_SORTS else ""
    return LeadPage(leads=leads, total=total, waiting=waiting, page=f.page, pages=pages, more=more, after=after)


def _waiting_first(stmt: Select) -> Select:
    """The default order in one statement: the waiting queue oldest first, then everyone else newest first."""
    is_waiting = case((waiting_clause(), 0), else_=1)
    return stmt.order_by(
        is_waiting, case((waiting_clause(), Lead.created_at)).asc(), Lead.created_at.desc(), Lead.id.desc()
    )


def iter_filtered(session: Session, f: LeadFilter, tz: str) -> Iterator[Lead]:
    """Every lead matching the filter, in the list's order, streamed in batches (for the CSV export)."""
    base = filtered_leads(f, tz, session)
    stmt = _waiting_first(base) if f.sort == "waiting" else _ordered(base, f.sort)
    yield from session.scalars(stmt.execution_options(yield_per=1000))


def _distinct(session: Session, column: Any, limit: int = 200) -> list[str]:
    """The distinct non-null values of an indexed column, one index probe each (a skip scan, also on PostgreSQL,
    whose DISTINCT reads every row)."""
    name, table = column.name, column.table.name
    sql = text(
        f"WITH RECURSIVE v(x, n) AS (SELECT min({name}), 1 FROM {table} "
        f"UNION ALL SELECT (SELECT min({name}) FROM {table} WHERE {name} > v.x), n + 1 FROM v "
        "WHERE v.x IS NOT NULL AND n < :limit) SELECT x FROM v WHERE x IS NOT NULL"
    )
    return [str(x) for x in session.scalars(sql, {"limit": limit})]


def filter_choices(session: Session) -> dict[str, list[str]]:
    """Values offered in the filter menus: sources and campaigns seen in the data."""
    sources = _distinct(session, Lead.source)
    campaigns = sorted({c.slug for c in registry().all()} | set(_distinct(session, Lead.landing_slug)))
    return {"sources": [s for s in sources if s], "campaigns": campaigns}


# ---- Dashboard -------------------------------------------------------------------------------


@dataclass
class Dashboard:
    """Figures for one period and (optionally) one campaign."""

    days: int
    campaign: str
    start: datetime
    end: datetime
    funnel: list[tuple[str, int]]
    per_day: list[tuple[date, int]]
    top_sources: list[tuple[str, int, int]]
    top_sources_booked: list[tuple[str, int, int]]
    top_campaigns: list[tuple[str, int, int]]
    top_campaigns_booked: list[tuple[str, int, int]]
    alerts: list[dict[str, str]] = field(default_factory=list)
    as_of: datetime | None = None  # when the figures were computed, if they were read from a snapshot


def _page_views(session: Session, start_day: date, end_day: date, campaign: str) -> tuple[int, int]:
    """(views of landing and blog pages, blog visits from nurture emails) in the period."""
    in_period = and_(PageView.day >= start_day, PageView.day <= end_day)
    views = select(func.coalesce(func.sum(PageView.views), 0)).where(in_period)
    blog = select(func.coalesce(func.sum(PageView.views), 0)).where(
        in_period, PageView.utm_source == "nurture", PageView.page.like("/blog/%")
    )
    if campaign:
        views = views.where(or_(PageView.page == f"/{campaign}", PageView.utm_campaign == campaign))
        blog = blog.where(PageView.utm_campaign == campaign)
    return int(session.scalar(views) or 0), int(session.scalar(blog) or 0)


def dashboard_figures(session: Session, days: int, campaign: str, moment: datetime, tz: str) -> Dashboard:
    """The funnel for leads who signed up in the last `days` days (cohort: booked counts those leads now booked),
    without the alerts. Reads every lead of the period: admin.snapshots keeps it off the request path."""
    zone = ZoneInfo(tz)
    today = moment.astimezone(zone).date()
    first_day = today - timedelta(days=days - 1)
    start = local_day_start(first_day, tz)
    leads_in = and_(Lead.created_at >= start, Lead.created_at <= moment)
    if campaign:
        leads_in = and_(leads_in, Lead.landing_slug == campaign)
    # The funnel and the sources from one scan of ix_leads_funnel, grouped in its column order (no sort).
    rows = session.execute(
        select(Lead.source, Lead.status, Lead.email_opt_in, func.count())
        .where(leads_in)
        .group_by(Lead.source, Lead.status, Lead.email_opt_in)
    ).all()
    per_source: dict[str, list[int]] = {}
    signups = consented = booked = 0
    for source, status, opted, n in rows:
        n = int(n)
        won = n if status in BOOKED_STATUSES else 0
        signups, booked = signups + n, booked + won
        consented += n if opted else 0
        entry = per_source.setdefault(source or "direct", [0, 0])
        entry[0] += n
        entry[1] += won
    top_sources = [(name, n, won) for name, (n, won) in per_source.items()]
    per_day = list(
        zip(
            [first_day + timedelta(days=i) for i in range(days)],
            _signups_per_day(session, zone, first_day, days, moment, campaign),
            strict=True,
        )
    )

    # What the active backend confirms: SendGrid's "delivered" events; the outbox (or console) has delivered an
    # email once it is written, and no event will ever come for it.
    confirmed = Delivery.delivered_at if _mail_backend() == "sendgrid" else Delivery.sent_at
    delivered_q = select(func.count()).where(confirmed >= start, confirmed <= moment, Delivery.kind == "nurture")
    if campaign:
        delivered_q = delivered_q.where(Delivery.campaign_slug == campaign)
    delivered = int(session.scalar(delivered_q) or 0)
    views, blog_visits = _page_views(session, first_day, today, campaign)
    funnel = [
        ("Page views", views),
        ("Signups", signups),
        ("Consented or confirmed", consented),
        ("Emails delivered", delivered),
        ("Blog visits from emails", blog_visits),
        ("Booked", booked),
    ]

    top_campaigns = _utm_campaigns(session, start, moment, campaign)
    return Dashboard(
        days=days,
        campaign=campaign,
        start=start,
        end=moment,
        funnel=funnel,
        per_day=per_day,
        top_sources=_top(top_sources, 1),
        top_sources_booked=_top(top_sources, 2),
        top_campaigns=_top(top_campaigns, 1),
        top_campaigns_booked=_top(top_campaigns, 2),
    )


def _mail_backend() -> str:
    from flask import current_app, has_app_context

    return str(current_app.config.get("MAIL_BACKEND", "outbox")) if has_app_context() else "sendgrid"


def _utm_campaigns(session: Session, start: datetime, end: datetime, campaign: str) -> list[tuple[str, int, int]]:
    """(utm_campaign, signups in the period, of which by leads now booked), from the period's submissions."""
    in_period = [Submission.created_at >= start, Submission.created_at <= end]
    if campaign:
        in_period.append(Submission.landing_slug == campaign)
    # Grouped in ix_submissions_utm's column order so the scan needs no sort; NULL becomes "(none)" here.
    group = (Submission.landing_slug, Submission.utm_campaign)
    asked: dict[str, int] = {}
    for name, n in session.execute(select(Submission.utm_campaign, func.count()).where(*in_period).group_by(*group)):
        asked[name or "(none)"] = asked.get(name or "(none)", 0) + int(n)
    # Booked leads are few: their submissions are probed by lead id instead of joining every submission.
    booked_ids = select(Lead.id).where(Lead.status.in_(BOOKED_STATUSES))
    booked: dict[str, int] = {}
    stmt = select(Submission.utm_campaign, func.count()).where(*in_period, Submission.lead_id.in_(booked_ids))
    for name, n in session.execute(stmt.group_by(Submission.utm_campaign)):
        booked[name or "(none)"] = booked.get(name or "(none)", 0) + int(n)
    return [(c, n, booked.get(c, 0)) for c, n in asked.items()]


def _top(rows: list[tuple[str, int, int]], column: int, limit: int = 8) -> list[tuple[str, int, int]]:
    return sorted((r for r in rows if r[column]), key=lambda r: (-r[column], r[0]))[:limit]


def _signups_per_day(
    session: Session, zone: ZoneInfo, first_day: date, days: int, moment: datetime, campaign: str
) -> list[int]:
    """Signups on each local day: one statement of per-day range counts on an index, no per-row date function."""
    starts = [datetime.combine(first_day + timedelta(days=i), time(0), zone).astimezone(UTC) for i in range(days)]
    ends = [*starts[1:], None]
    counts = []
    for day_start, day_end in zip(starts, ends, strict=True):
        stmt = select(func.count()).where(
            Lead.created_at >= day_start, Lead.created_at < day_end if day_end else Lead.created_at <= moment
        )
        if campaign:
            stmt = stmt.where(Lead.landing_slug == campaign)
        counts.append(stmt.scalar_subquery())
    return [int(n or 0) for n in session.execute(select(*counts)).one()]


def failed_detail(failed_by: Mapping[str | None, int]) -> str:
    """Why deliveries failed, by who produced the error: "the provider refused" only when a provider answered."""
    parts = []
    if failed_by.get("content"):
        parts.append(f"{failed_by['content']} could not be built (a campaign file or template: fix it)")
    if failed_by.get("provider"):
        parts.append(f"{failed_by['provider']} refused by the provider")
    if failed_by.get("transport"):
        parts.append(f"{failed_by['transport']} never reached the provider")
    other = sum(n for source, n in failed_by.items() if source not in ("content", "provider", "transport"))
    if other:
        parts.append(f"{other} for another reason")
    return "; ".join(parts).capitalize() + ". Each reason is on the deliveries screen; fix it, then queue them again."


def alerts(session: Session, start: datetime, moment: datetime) -> list[dict[str, str]]:
    """Problems an operator should act on: provider paused, webhook refusing stale events, failed or unknown
    deliveries, a stalled worker."""
    out: list[dict[str, str]] = []
    pause = provider_pause(session)
    if pause is not None and pause.get("setting"):
        out.append(
            {
                "level": "error",
                "title": f"Sending is paused: the setting {pause['setting']} is missing or wrong",
                "detail": f"{pause.get('reason')}. Nothing was marked failed: every email waits. Set it for the "
                "nurture worker, restart the worker, then resume sending.",
                "action": "admin.provider_resume",
            }
        )
    elif pause is not None:
        out.append(
            {
                "level": "error",
                "title": "Sending is paused: the email provider refused our credentials",
                "detail": f"{pause.get('reason') or 'No reason given'}. Fix SENDGRID_API_KEY, then resume sending.",
                "action": "admin.provider_resume",
            }
        )
    stale = stale_batches(session)
    if stale is not None:
        out.append(
            {
                "level": "error",
                "title": f"SendGrid's events are being refused ({stale.get('refused_batches')} batches so far)",
                "detail": stale_note(stale),
            }
        )
    bad: dict[str, int] = {}
    failed_by: dict[str | None, int] = {}
    rows = session.execute(
        select(Delivery.state, Delivery.error_source, func.count())
        .where(Delivery.state.in_(("failed", "unknown")), Delivery.updated_at >= start)
        .group_by(Delivery.state, Delivery.error_source)
    )
    for state, source, count in rows:
        bad[state] = bad.get(state, 0) + int(count)
        if state == "failed":
            failed_by[source] = failed_by.get(source, 0) + int(count)
    if bad.get("unknown"):
        out.append(
            {
                "level": "warning",
                "title": f"{plural(bad['unknown'], 'delivery', 'deliveries')} in an unknown state",
                "detail": "A worker stopped mid-send. Check the provider, then mark each as sent or queue it again.",
                "link": "admin.deliveries",
                "state": "unknown",
            }
        )
    if bad.get("failed"):
        out.append(
            {
                "level": "warning",
                "title": f"{plural(bad['failed'], 'delivery', 'deliveries')} failed in this period",
                "detail": failed_detail(failed_by),
                "link": "admin.deliveries",
                "state": "failed",
                # The period's failures, so "queue all shown again" applies to exactly these.
                "date_from": start.astimezone(ZoneInfo(current_app.config["CLINIC_TIMEZONE"])).date().isoformat(),
            }
        )
    last_beat = last_heartbeat(session)
    if last_beat is None:
        out.append(
            {
                "level": "error",
                "title": "No nurture worker has ever reported",
                "detail": "Start it with `flask nurture run` (make run starts it for you).",
            }
        )
    elif worker_stopped(last_beat, moment, current_app.config):
        out.append(
            {
                "level": "error",
                "title": "The nurture worker has stopped",
                "detail": f"Last heartbeat {local_text(last_beat)}. Emails are not leaving until it runs again.",
            }
        )
    return out


# ---- Campaigns -------------------------------------------------------------------------------


STEP_FIGURES = ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "failed", "skipped", "unknown")


def step_stats(session: Session, slug: str) -> dict[str, dict[str, int]]:
    """Per step id: sent, delivered, opened, clicked, unsubscribed, bounced, failed, skipped, unknown, waiting.

    Nurture deliveries only. `waiting` counts the leads this step is next for now: active enrollments scheduled
    for it, plus its deliveries queued or retrying.
    """

    def n(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    rows = session.execute(
        select(
            Delivery.step_id,
            n(Delivery.sent_at.is_not(None)),
            n(Delivery.delivered_at.is_not(None)),
            n(Delivery.opened_at.is_not(None)),
            n(Delivery.clicked_at.is_not(None)),
            n(Delivery.unsubscribed_at.is_not(None)),
            n(Delivery.bounced_at.is_not(None)),
            n(Delivery.state == "failed"),
            n(Delivery.state == "skipped"),
            n(Delivery.state == "unknown"),
            n(Delivery.state.in_(("pending", "retrying", "sending"))),
        )
        .where(Delivery.campaign_slug == slug, Delivery.kind == "nurture")
        .group_by(Delivery.step_id)
    )
    out: dict[str, dict[str, int]] = {}
    for step, *values in rows:
        figures = dict(zip((*STEP_FIGURES, "waiting"), (int(v or 0) for v in values), strict=True))
        out[step] = figures
    campaign = registry().get(slug)
    scheduled = session.execute(
        select(Enrollment.next_step, func.count())
        .where(Enrollment.campaign_slug == slug, Enrollment.state == "active", Enrollment.next_send_at.is_not(None))
        .group_by(Enrollment.next_step)
    )
    for index, count in scheduled:
        if campaign is not None and 0 <= index < len(campaign.steps):
            figures = out.setdefault(campaign.steps[index].id, dict.fromkeys((*STEP_FIGURES, "waiting"), 0))
            figures["waiting"] += int(count)
    return out


def enrollment_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per campaign: enrollments by state, plus 'enrolled' as their total."""
    out: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Enrollment.campaign_slug, Enrollment.state, func.count()).group_by(
            Enrollment.campaign_slug, Enrollment.state
        )
    )
    for slug, state, count in rows:
        entry = out.setdefault(slug, {"enrolled": 0, "pending": 0, "active": 0, "completed": 0, "exited": 0})
        entry[state] = int(count)
        entry["enrolled"] += int(count)
    return out


def provider_events_for(session: Session, delivery_ids: list[int]) -> dict[int, list[ProviderEvent]]:
    """Provider events of these deliveries, oldest first."""
    out: dict[int, list[ProviderEvent]] = {}
    if not delivery_ids:
        return out
    stmt = select(ProviderEvent).where(ProviderEvent.delivery_id.in_(delivery_ids)).order_by(ProviderEvent.occurred_at)
    for event in session.scalars(stmt):
        out.setdefault(event.delivery_id, []).append(event)
    return out


@dataclass
class VariantRow:
    """One variant's figures in an A/B test."""

    name: str
    text: str
    weight: int
    figures: dict[str, int]
    interval: tuple[float, float]
    best: float


@dataclass
class ExperimentResult:
    """A running A/B test: what is tested, each variant's figures, and the verdict (studio.experiments)."""

    where: str  # "page" or a step id
    label: str
    metric: str
    unit: str
    rows: list[VariantRow]
    verdict: Verdict


def _email_experiment(session: Session, campaign: Campaign, step: Step) -> ExperimentResult:
    def n(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    prefix = f"{step.experiment}:"
    rows = session.execute(
        select(
            Delivery.variant,
            n(Delivery.sent_at.is_not(None)),
            n(Delivery.delivered_at.is_not(None)),
            n(Delivery.opened_at.is_not(None)),
            n(Delivery.clicked_at.is_not(None)),
            n(Delivery.unsubscribed_at.is_not(None)),
        )
        .where(
            Delivery.campaign_slug == campaign.slug,
            Delivery.step_id == step.id,
            Delivery.variant.like(prefix + "%"),
        )
        .group_by(Delivery.variant)
    )
    names = ("sent", "delivered", "opened", "clicked", "unsubscribed", "booked")
    found = {
        str(v).removeprefix(prefix): dict(zip(names, (*(int(x or 0) for x in xs), 0), strict=True)) for v, *xs in rows
    }
    # Booked within 30 days of the send: compared in Python (date arithmetic differs between the databases).
    sent = session.execute(
        select(Delivery.variant, Delivery.lead_id, Delivery.sent_at).where(
            Delivery.campaign_slug == campaign.slug,
            Delivery.step_id == step.id,
            Delivery.variant.like(prefix + "%"),
            Delivery.sent_at.is_not(None),
        )
    ).all()
    bookings: dict[int, list[datetime]] = {}
    lead_ids = {lead_id for _, lead_id, _ in sent if lead_id is not None}
    for start in range(0, len(lead_ids), 1000):
        chunk = list(lead_ids)[start : start + 1000]
        for lead_id, at in session.execute(
            select(StatusChange.lead_id, StatusChange.created_at).where(
                StatusChange.lead_id.in_(chunk), StatusChange.new_status == "booked"
            )
        ):
            bookings.setdefault(lead_id, []).append(at)
    for variant, lead_id, sent_at in sent:
        if any(sent_at <= at <= sent_at + timedelta(days=30) for at in bookings.get(lead_id, ())):
            found.setdefault(str(variant).removeprefix(prefix), dict.fromkeys(names, 0))["booked"] += 1
    arms = [
        Arm(v.name, found.get(v.name, {}).get("sent", 0), found.get(v.name, {}).get("clicked", 0))
        for v in step.variants
    ]
    decided = verdict(arms, unit="sends")
    table = [
        VariantRow(
            v.name,
            v.subject,
            v.weight,
            found.get(v.name, dict.fromkeys(names, 0)),
            decided.intervals[v.name],
            decided.best[v.name],
        )
        for v in step.variants
    ]
    return ExperimentResult(step.id, f"Email {step.index + 1}: subject", "clicked per sent", "sends", table, decided)


def _page_experiment(session: Session, campaign: Campaign) -> ExperimentResult:
    prefix = f"{campaign.page.experiment}:"
    views = dict(
        session.execute(
            select(VariantView.variant, func.sum(VariantView.views))
            .where(VariantView.landing_slug == campaign.slug, VariantView.variant.like(prefix + "%"))
            .group_by(VariantView.variant)
        ).all()
    )
    signups = dict(
        session.execute(
            select(Submission.landing_variant, func.count())
            .where(Submission.landing_slug == campaign.slug, Submission.landing_variant.like(prefix + "%"))
            .group_by(Submission.landing_variant)
        ).all()
    )
    arms, figures = [], {}
    for v in campaign.page.variants:
        key = prefix + v.name
        figures[v.name] = {"views": int(views.get(key) or 0), "signups": int(signups.get(key) or 0)}
        arms.append(Arm(v.name, figures[v.name]["views"], figures[v.name]["signups"]))
    decided = verdict(arms, unit="page views")
    table = [
        VariantRow(v.name, v.headline, v.weight, figures[v.name], decided.intervals[v.name], decided.best[v.name])
        for v in campaign.page.variants
    ]
    return ExperimentResult("page", "Landing page: headline", "signups per view", "page views", table, decided)


def experiment_results(session: Session, campaign: Campaign) -> list[ExperimentResult]:
    """Every A/B test the live version of this campaign runs (its headline, then each step's subject)."""
    results = [_page_experiment(session, campaign)] if campaign.page.variants else []
    results += [_email_experiment(session, campaign, step) for step in campaign.steps if step.variants]
    return results
