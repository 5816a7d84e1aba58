"""Realistic demo data in bulk: leads over several months with submissions, consents, enrollments,
deliveries with provider-like opens and clicks, status changes and page views."""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from admin.search import index_new_leads
from blog.loader import blog
from core.clock import now
from core.db import db
from leads.consent import CURRENT_EMAIL_CONSENT, EMAIL_MARKETING, PRIVACY_NOTICE, PRIVACY_NOTICE_VERSION
from leads.models import Consent, Lead, StatusChange, Submission
from mailer.models import Delivery, ProviderEvent
from nurture.models import Enrollment
from public.models import PageView
from studio.registry import registry

FIRST = [
    "Maria",
    "Linda",
    "James",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Christopher",
    "Nancy",
    "Daniel",
    "Lisa",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Ashley",
    "Donald",
    "Emily",
    "Steven",
    "Donna",
    "Paul",
    "Michelle",
    "Andrew",
    "Carol",
    "Joshua",
    "Amanda",
    "Kenneth",
    "Melissa",
    "Kevin",
    "Deborah",
    "Brian",
    "Stephanie",
    "George",
    "Rebecca",
    "Timothy",
    "Laura",
    "Ronald",
    "Helen",
    "Jason",
    "Sharon",
    "Edward",
    "Cynthia",
    "Jeffrey",
    "Kathleen",
    "Ryan",
    "Amy",
    "Jacob",
    "Angela",
    "Gary",
    "Shirley",
    "Nicholas",
    "Anna",
    "Eric",
    "Ruth",
    "Jonathan",
    "Brenda",
    "Stephen",
    "Pamela",
    "Larry",
    "Nicole",
    "Justin",
    "Katherine",
    "Scott",
    "Samantha",
    "Brandon",
    "Christine",
    "Frank",
    "Emma",
    "Benjamin",
    "Catherine",
    "Gregory",
    "Debra",
    "Raymond",
    "Rachel",
    "Samuel",
    "Carolyn",
    "Patrick",
    "Janet",
    "Alexander",
    "Maria",
    "José",
    "Wei",
    "Aisha",
    "Hiroshi",
    "Olga",
    "Priya",
    "Mateo",
    "Sofia",
    "Liam",
    "Noah",
    "Ava",
    "Mia",
    "Lucas",
    "Chloe",
    "Ethan",
    "Zoe",
    "Diego",
    "Camila",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Gomez",
    "Phillips",
    "Evans",
    "Turner",
    "Diaz",
    "Parker",
    "Cruz",
    "Edwards",
    "Collins",
    "Reyes",
    "Stewart",
    "Morris",
    "Morales",
    "Murphy",
    "Cook",
    "Rogers",
    "Gutierrez",
    "Ortiz",
    "Morgan",
    "Cooper",
    "Peterson",
    "Bailey",
    "Reed",
    "Kelly",
    "Howard",
    "Ramos",
    "Kim",
    "Cox",
    "Ward",
    "Richardson",
    "Watson",
    "Brooks",
    "Chavez",
    "Wood",
    "James",
    "Bennett",
    "Gray",
    "Mendoza",
    "Ruiz",
    "Hughes",
    "Price",
    "Alvarez",
    "Castillo",
    "Sanders",
    "Patel",
    "Myers",
    "Long",
    "Ross",
    "O'Brien",
    "Müller",
    "Kowalski",
    "Tanaka",
    "Okafor",
]
DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "inbox.example")
AREA_CODES = ("303", "720", "970", "719", "801", "602", "505", "307", "406", "208")
TIMEZONES = ("America/Denver", "America/Denver", "America/Denver", "America/Phoenix", "America/Chicago", None)
INTEREST_WEIGHTS = {"knee": 34, "hip": 16, "shoulder": 16, "spine": 14, "elbow": 8, "ankle": 6, "other": 6}
# (utm_source, utm_medium, [utm_campaigns], weight, bookings multiplier)
SOURCES = (
    ("google", "cpc", ["knee-pain-search", "stem-cell-search", "brand"], 30, 1.2),
    ("facebook", "paid_social", ["knee-pain-video", "retarget-30d", "testimonials"], 22, 0.8),
    ("instagram", "paid_social", ["testimonials", "reels-spring"], 10, 0.7),
    ("newsletter", "email", ["monthly-update"], 6, 1.6),
    ("bing", "cpc", ["knee-pain-search"], 4, 1.1),
    ("youtube", "video", ["explainer"], 5, 0.9),
    ("referral", "referral", [None], 5, 2.0),
    (None, None, [None], 18, 1.0),
)
REFERRERS = ("https://www.google.com/", "https://www.facebook.com/", "https://duckduckgo.com/", None, None)
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36",
)
MESSAGES = (
    None,
    None,
    "Knee pain for two years, tried physio.",
    "Would like to know if I am a candidate.",
    "Shoulder injury from tennis last spring.",
    "How much does a consultation cost?",
)
SOURCE_WEIGHTS = [source[3] for source in SOURCES]
CHUNK = 20_000


def _max_id(conn: Connection, model: Any) -> int:
    return int(conn.execute(select(func.coalesce(func.max(model.id), 0))).scalar_one())


def _sqlite_datetime(value: datetime | None) -> str | None:
    # Every seeded time is already aware UTC; this is the text SQLAlchemy's SQLite DateTime stores.
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_converter(column: Any) -> Any:
    python_type = None
    # A TypeDecorator (UTCDateTime) reports `object`: its impl says what is stored.
    kind = getattr(column.type, "impl", column.type)
    try:
        python_type = kind.python_type
    except NotImplementedError:
        python_type = None
    if python_type is datetime:
        return _sqlite_datetime
    if python_type is date:
        return lambda v: None if v is None else v.isoformat()
    if python_type is bool:
        return lambda v: None if v is None else int(v)
    return None


def _flush(conn: Connection, model: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    table = model.__table__
    if conn.dialect.name == "sqlite":
        # Plain executemany without SQLAlchemy's per-value processing: about 5x faster in bulk.
        columns = list(rows[0])
        converters = [_sqlite_converter(table.c[name]) for name in columns]
        pairs = list(zip(columns, converters, strict=True))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        conn.exec_driver_sql(sql, [tuple(f(row[c]) if f else row[c] for c, f in pairs) for row in rows])
    else:
        # COPY: one stream per chunk instead of an INSERT per row, about 10x faster on PostgreSQL.
        columns = list(rows[0])
        cursor = conn.connection.dbapi_connection.cursor()
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    rows.clear()


SEED_TABLES = (Lead, Submission, Consent, Enrollment, Delivery, StatusChange, ProviderEvent, PageView)


@contextlib.contextmanager
def _bulk_connection(say: Callable[[str], None]) -> Iterator[tuple[Connection, bool]]:
    """One transaction for the whole load; on SQLite with seed-only settings and secondary indexes built after."""
    with db.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            yield from _bulk_postgresql(conn, say)
            return
        raw = conn.connection.dbapi_connection
        # This connection only, outside any transaction (SQLite refuses otherwise): no fsync per page and
        # a large cache while one transaction writes about a million rows.
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA cache_size=-262144")
        try:
            with conn.begin():
                names = ", ".join(f"'{m.__table__.name}'" for m in SEED_TABLES)
                # Building an index once from the loaded rows beats updating it on every insert;
                # UNIQUE constraints stay (they have no SQL of their own in sqlite_master).
                indexes = conn.exec_driver_sql(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                    f"AND tbl_name IN ({names})"
                ).all()
                for name, _sql in indexes:
                    conn.exec_driver_sql(f'DROP INDEX "{name}"')
                yield conn, True
                say(f"building {len(indexes)} indexes")
                for _name, sql in indexes:
                    conn.exec_driver_sql(sql)
                say("search index")
                index_new_leads(conn, limit=None)
                say("ANALYZE")
                conn.exec_driver_sql("ANALYZE")
        finally:
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute("PRAGMA cache_size=-2000")


def _bulk_postgresql(conn: Connection, say: Callable[[str], None]) -> Iterator[tuple[Connection, bool]]:
    """PostgreSQL: one transaction; secondary indexes dropped and built once after the load, then VACUUM ANALYZE."""
    names = [m.__table__.name for m in SEED_TABLES]
    with conn.begin():
        # Not the commit of every row: the load is one transaction, lost as a whole if the server stops.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        # Indexes that back a constraint (primary keys, UNIQUE) stay: they cannot be dropped alone.
        indexes = conn.exec_driver_sql(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename = ANY(%(names)s) AND NOT EXISTS ("
            "SELECT 1 FROM pg_constraint c WHERE c.conindid = (quote_ident(i.schemaname) || '.' || "
            "quote_ident(i.indexname))::regclass)",
            {"names": names},
        ).all()
        for name, _sql in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        yield conn, False
        say(f"building {len(indexes)} indexes")
        for _name, sql in indexes:
            conn.exec_driver_sql(sql)
    say("VACUUM ANALYZE")
    # Outside the transaction (VACUUM refuses one): statistics for the planner and a visibility map, so
    # counts read the indexes alone, as they would after autovacuum on a live database.
    raw = conn.connection.dbapi_connection
    autocommit = raw.autocommit
    raw.autocommit = True
    try:
        for name in names:
            raw.execute(f"VACUUM (ANALYZE) {name}")
    finally:
        raw.autocommit = autocommit


def _campaigns() -> list[tuple[str, list[tuple[str, timedelta]]]]:
    """(slug, [(step id, delay from signup)]) for each loaded campaign."""
    out = []
    for campaign in registry().all():
        elapsed = timedelta(0)
        steps = []
        for step in campaign.steps:
            elapsed += step.delay
            steps.append((step.id, elapsed))
        out.append((campaign.slug, steps))
    return out or [("stem-cell-therapy", [("welcome", timedelta(0))])]


def _blog_slugs() -> list[str]:
    """The posts the blog really serves (page views of posts that do not exist would mislead the dashboard)."""
    return [post.slug for post in blog().posts]


def _status_for(rng: random.Random, age: timedelta, weight: float) -> str:
    if age < timedelta(days=1):
        return "new" if rng.random() < 0.85 else "contacted"
    r = rng.random()
    booked = 0.12 * weight
    table = (
        ("new", 0.12),
        ("contacted", 0.55 - booked),
        ("booked", booked),
        ("patient", 0.05 * weight),
        ("not_a_fit", 0.28),
    )
    acc = 0.0
    for status, p in table:
        acc += p
        if r < acc:
            return status
    return "contacted"


@dataclass
class _Person:
    """One made-up lead as the seed draws it: who, when, where from and what happened since."""

    lead_id: int
    created: datetime
    slug: str
    steps: list[tuple[str, timedelta]]
    status: str
    opt_in: bool
    contacted_at: datetime | None


class _Seeder:
    """Rows for `count` leads, buffered per table and written in chunks on one connection."""

    TABLES = (Lead, Submission, Consent, Enrollment, Delivery, StatusChange, ProviderEvent)

    def __init__(self, conn: Connection, rng: random.Random, moment: datetime, campaigns: list) -> None:
        self.conn, self.rng, self.moment, self.campaigns = conn, rng, moment, campaigns
        self.run = uuid.uuid4().hex[:6]
        self.ids = {m: _max_id(conn, m) for m in self.TABLES}
        self.buffers: dict[Any, list[dict[str, Any]]] = {m: [] for m in self.TABLES}
        self.totals = dict.fromkeys(
            ("leads", "submissions", "consents", "enrollments", "deliveries", "events", "status changes", "page views"),
            0,
        )
        self.signups_per_day: dict[tuple[date, str, str, str], int] = {}

    def add(self, model: Any, row: dict[str, Any], total: str) -> int:
        """Buffer a row with the next id; every CHUNK rows, write the buffers (leads first: the rest point at them)."""
        self.ids[model] += 1
        row["id"] = self.ids[model]
        self.buffers[model].append(row)
        self.totals[total] += 1
        if len(self.buffers[model]) >= CHUNK:
            self.flush()
        return self.ids[model]

    def flush(self) -> None:
        """Write every buffered row."""
        for model in self.TABLES:
            _flush(self.conn, model, self.buffers[model])

    def person(self, days: int) -> None:
        """One lead and everything around it: requests, consents, status changes, its sequence so far."""
        rng = self.rng
        # More signups recently: a growing practice.
        age = timedelta(days=days * (1 - rng.random() ** 0.8), minutes=rng.randint(0, 1439))
        created = self.moment - age
        utm_source, utm_medium, utm_campaigns, _, weight = SOURCES[rng.choices(range(len(SOURCES)), SOURCE_WEIGHTS)[0]]
        utm_campaign = rng.choice(utm_campaigns)
        slug, steps = rng.choice(self.campaigns)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first}.{last}.{self.ids[Lead] + 1}{self.run}@{rng.choice(DOMAINS)}".lower().replace("'", "")
        status = _status_for(rng, age, weight)
        opt_in = rng.random() < 0.72
        interest = rng.choices(list(INTEREST_WEIGHTS), list(INTEREST_WEIGHTS.values()))[0]
        contact = rng.choice(("email", "email", "phone", "text"))
        contacted_at = created + timedelta(minutes=rng.randint(20, 3 * 24 * 60)) if status != "new" else None
        if contacted_at and contacted_at > self.moment:
            contacted_at = self.moment
        lead_id = self.add(
            Lead,
            {
                "email": email,
                "first_name": first,
                "last_name": last,
                "phone": f"+1{rng.choice(AREA_CODES)}555{rng.randint(0, 9999):04d}" if rng.random() < 0.8 else None,
                "interest": interest,
                "preferred_contact": contact,
                "timezone": rng.choice(TIMEZONES),
                "status": status,
                "source": utm_source or "direct",
                "landing_slug": slug,
                "email_opt_in": opt_in,
                "created_at": created,
                "updated_at": contacted_at or created,
                "status_changed_at": contacted_at,
                "contacted_at": contacted_at,
                "contacted_by_id": None,
                "unsubscribed_at": None,
                "erased_at": None,
            },
            "leads",
        )
        key = (created.date(), slug, utm_source or "", utm_campaign or "")
        self.signups_per_day[key] = self.signups_per_day.get(key, 0) + 1
        person = _Person(lead_id, created, slug, steps, status, opt_in, contacted_at)
        self.requests(person, utm_source, utm_medium, utm_campaign, interest, contact)
        self.status_changes(person)
        if opt_in:
            self.sequence(person)

    def requests(
        self, person: _Person, source: str | None, medium: str | None, campaign: str | None, interest: str, contact: str
    ) -> None:
        """One submission (sometimes two) with the consents the form records for it."""
        rng = self.rng
        for n in range(2 if rng.random() < 0.08 else 1):
            at = min(person.created + timedelta(days=n * rng.randint(1, 20)), self.moment)
            sub_id = self.add(
                Submission,
                {
                    "lead_id": person.lead_id,
                    "landing_slug": person.slug,
                    "utm_source": source,
                    "utm_medium": medium,
                    "utm_campaign": campaign,
                    "utm_term": None,
                    "utm_content": None,
                    "referrer": rng.choice(REFERRERS),
                    "user_agent": rng.choice(USER_AGENTS),
                    "interest": interest,
                    "preferred_contact": contact,
                    "message": rng.choice(MESSAGES),
                    "email_consent": person.opt_in,
                    "created_at": at,
                },
                "submissions",
            )
            given = [(PRIVACY_NOTICE, PRIVACY_NOTICE_VERSION)]
            if person.opt_in:
                given.append((EMAIL_MARKETING, CURRENT_EMAIL_CONSENT))
            for purpose, version in given:
                consent = {"lead_id": person.lead_id, "submission_id": sub_id, "purpose": purpose, "version": version}
                self.add(Consent, consent | {"granted": True, "source": "form", "created_at": at}, "consents")

    def status_changes(self, person: _Person) -> None:
        """new -> contacted (-> booked, patient or not a fit)."""
        if person.status == "new":
            return
        previous = "new"
        path = ["contacted"] + ([person.status] if person.status != "contacted" else [])
        for i, new_status in enumerate(path):
            at = min(self.moment, (person.contacted_at or person.created) + timedelta(days=i * self.rng.randint(1, 10)))
            self.add(
                StatusChange,
                {
                    "lead_id": person.lead_id,
                    "old_status": previous,
                    "new_status": new_status,
                    "source": "admin",
                    "user_id": None,
                    "created_at": at,
                },
                "status changes",
            )
            previous = new_status

    def sequence(self, person: _Person) -> None:
        """The enrollment: steps whose time has come were sent; booked, patient and not a fit exit it."""
        rng, moment, created, steps = self.rng, self.moment, person.created, person.steps
        exit_at = (
            person.contacted_at + timedelta(days=rng.randint(1, 10))
            if person.status in ("booked", "patient", "not_a_fit") and person.contacted_at
            else None
        )
        sent_steps = [
            (sid, created + delay)
            for sid, delay in steps
            if created + delay <= moment and (exit_at is None or created + delay < exit_at)
        ]
        unsubscribed = bool(rng.random() < 0.03 and sent_steps)
        if exit_at and exit_at <= moment:
            state, reason, ended, next_at = "exited", f"status:{person.status}", exit_at, None
        elif unsubscribed:
            state, reason, ended, next_at = "exited", "unsubscribed", sent_steps[-1][1] + timedelta(hours=3), None
        elif len(sent_steps) == len(steps):
            state, reason, ended, next_at = "completed", None, sent_steps[-1][1], None
        else:
            state, reason, ended = "active", None, None
            next_at = created + steps[len(sent_steps)][1]
        enrollment_id = self.add(
            Enrollment,
            {
                "lead_id": person.lead_id,
                "campaign_slug": person.slug,
                "state": state,
                "next_step": len(sent_steps),
                "next_send_at": next_at,
                "lease_owner": None,
                "lease_until": None,
                "exit_reason": reason,
                "created_at": created,
                "confirmed_at": created,
                "last_step_at": sent_steps[-1][1] if sent_steps else None,
                "ended_at": ended,
            },
            "enrollments",
        )
        for index, (step_id, sent_at) in enumerate(sent_steps):
            last = unsubscribed and index == len(sent_steps) - 1
            self.delivery(person, enrollment_id, step_id, sent_at, unsubscribed=last)

    def delivery(
        self, person: _Person, enrollment_id: int, step_id: str, sent_at: datetime, unsubscribed: bool
    ) -> None:
        """A sent step with provider-like outcomes (delivered, opened, clicked, bounced) and their events."""
        rng = self.rng
        r = rng.random()
        d_state = "bounced" if r < 0.015 else "failed" if r < 0.02 else "delivered"
        delivered_at = sent_at + timedelta(seconds=rng.randint(2, 90)) if d_state == "delivered" else None
        opened = delivered_at is not None and rng.random() < 0.38
        clicked = opened and rng.random() < 0.22
        row = {
            "dedupe_key": f"enr:{enrollment_id}:{step_id}",
            "kind": "nurture",
            "lead_id": person.lead_id,
            "enrollment_id": enrollment_id,
            "campaign_slug": person.slug,
            "step_id": step_id,
            "recipient": None,
            "state": d_state,
            "due_at": sent_at,
            "lease_owner": None,
            "lease_until": None,
            "attempts": 1,
            "provider_message_id": uuid.UUID(int=rng.getrandbits(128)).hex[:22] if d_state != "failed" else None,
            "error": "550 5.1.1 mailbox does not exist"
            if d_state == "bounced"
            else ("400 invalid recipient" if d_state == "failed" else None),
            "created_at": sent_at,
            "updated_at": sent_at,
            "sent_at": sent_at if d_state != "failed" else None,
            "delivered_at": delivered_at,
            "opened_at": delivered_at + timedelta(minutes=rng.randint(1, 2000)) if opened else None,
            "clicked_at": delivered_at + timedelta(minutes=rng.randint(2000, 2100)) if clicked else None,
            "bounced_at": sent_at + timedelta(seconds=30) if d_state == "bounced" else None,
            "unsubscribed_at": sent_at + timedelta(hours=3) if unsubscribed else None,
            "open_count": rng.randint(1, 4) if opened else 0,
            "click_count": 1 if clicked else 0,
        }
        delivery_id = self.add(Delivery, row, "deliveries")
        for event, col in (("open", "opened_at"), ("click", "clicked_at"), ("bounce", "bounced_at")):
            if row[col] is not None and row[col] <= self.moment:
                event_row = {
                    "sg_event_id": f"seed-{self.run}-{delivery_id}-{event}",
                    "event": event,
                    "delivery_id": delivery_id,
                    "occurred_at": row[col],
                    "received_at": row[col],
                    "url": None,
                    "reason": row["error"] if event == "bounce" else None,
                }
                self.add(ProviderEvent, event_row, "events")


def seed(
    count: int,
    *,
    days: int = 120,
    random_seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Insert `count` leads and everything around them; returns how many rows of each kind were added.

    `progress` receives a line now and then (every 5% of the leads, then each finishing phase).
    """
    rng = random.Random(random_seed)
    campaigns = _campaigns()
    started = time.perf_counter()
    step = max(1000, count // 20)

    def say(text: str) -> None:
        if progress is not None:
            progress(f"{time.perf_counter() - started:7.1f}s  {text}")

    with _bulk_connection(say) as (conn, _sqlite):
        seeder = _Seeder(conn, rng, now(), campaigns)
        for n in range(1, count + 1):
            seeder.person(days)
            if n % step == 0 or n == count:
                elapsed = time.perf_counter() - started
                left = elapsed / n * (count - n)
                say(f"{n:>9,} / {count:,} leads ({n * 100 // count}%), about {left:.0f}s of rows left")
        seeder.flush()
        seeder.totals["page views"] = _page_views(conn, rng, seeder.signups_per_day, seeder.moment, days, campaigns)
    return seeder.totals


def _page_views(
    conn: Connection,
    rng: random.Random,
    signups: dict[tuple[date, str, str, str], int],
    moment: datetime,
    days: int,
    campaigns: list,
) -> int:
    """Landing-page views (about 12 per signup) and blog visits, some from nurture emails."""
    start = (moment - timedelta(days=days + 1)).date()
    existing = {
        (d, p, s, c)
        for d, p, s, c in conn.execute(
            select(PageView.day, PageView.page, PageView.utm_source, PageView.utm_campaign).where(PageView.day >= start)
        )
    }
    rows = []

    def add(key: tuple, views: int) -> None:
        # One row per (day, page, source, campaign): a second seed run adds none it already wrote.
        if key not in existing:
            existing.add(key)
            day, page, source, campaign = key
            rows.append({"day": day, "page": page, "utm_source": source, "utm_campaign": campaign, "views": views})

    for (day, slug, source, campaign), n in signups.items():
        add((day, f"/{slug}", source, campaign), n * rng.randint(8, 16))
    day = start
    today = moment.astimezone(UTC).date()
    posts = _blog_slugs()
    while day <= today:
        for post in posts:
            for source, campaign, scale in (("nurture", campaigns[0][0], 6), ("", "", 10), ("google", "", 4)):
                add(
                    (day, f"/blog/{post}", source, campaign),
                    rng.randint(0, scale * max(1, len(signups) // max(1, days) // 20)),
                )
        day += timedelta(days=1)
    for i in range(0, len(rows), CHUNK):
        _flush(conn, PageView, rows[i : i + CHUNK])
    return len(rows)
