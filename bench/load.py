"""Load-generation helpers shared by `make bench` and tests/load: servers, clients, the signup form."""

from __future__ import annotations

import contextlib
import html
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Boolean, DateTime, Integer, String, Text, bindparam, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from core.columns import UTCDateTime
from core.db import Base

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SLUG = "stem-cell-therapy"
BENCH_TABLE = "bench_rows"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool(name: str) -> str:
    """Path of a console script installed next to this interpreter (gunicorn, flask)."""
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else name


def base_env(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    """The environment every subprocess of a load run gets: one database, one secret, no rate limit."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        INSTANCE_PATH=str(instance),
        OUTBOX_DIR=str(instance / "outbox"),
        SECRET_KEY="load-test-secret-key-shared-by-every-process",
        RATELIMIT_ENABLED="0",
        FORM_MIN_FILL_SECONDS="0",
        CLINIC_POSTAL_ADDRESS="NexGenEsis Healthcare, 100 Example Ave, Denver, CO 80202, USA",
        FLASK_APP="app:create_app",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def spawn(args: list[str], env: Mapping[str, str], log: Path | None = None) -> subprocess.Popen:
    """Start a process in its own process group (so `stop` can end its children too)."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed by the child's exit
    return subprocess.Popen(args, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_http(port: int, path: str = "/healthz", timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Block until GET `path` answers at all (any status), or fail with what happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout}s")


def start_gunicorn(
    app_spec: str, env: Mapping[str, str], workers: int = 4, log: Path | None = None, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """Run `app_spec` under gunicorn (sync workers) on 127.0.0.1 and wait until it answers."""
    port = port or free_port()
    args = [tool("gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--backlog", "2048"]
    # No control socket: its default path is shared by every gunicorn of the user, and runs overlap here.
    args += ["--timeout", "60", "--graceful-timeout", "5", "--no-control-socket", app_spec]
    proc = spawn(args, env, log)
    try:
        wait_http(port, proc=proc)
    except (RuntimeError, KeyboardInterrupt) as exc:
        stop(proc)
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"gunicorn {app_spec} did not start: {exc}\n{tail}") from None
    return proc, port


def worker_pids(master_pid: int) -> list[int]:
    """The pids of a gunicorn master's workers (its direct children)."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def peak_rss_mb(pid: int) -> float:
    """A live process's peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


class Client:
    """One HTTP/1.1 connection (kept alive when the server allows) with a small cookie jar."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 60.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """Send one request and read the whole answer; reconnect once if the server closed the socket."""
        hdrs = {"Host": f"{self.host}:{self.port}", "User-Agent": "nexgenesis-load/1"}
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        hdrs.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive socket: only then is a retry safe.
                self.close()
                if attempt == 2:
                    raise
                continue
            for value in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if resp.will_close:
                self.close()
            return resp.status, resp.headers, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


_FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
_TAG_RE = re.compile(r"<(input|select|textarea|option|/select)\b([^>]*)>", re.I)
_ATTR_RE = re.compile(r"""([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'))?""")


def _attrs(raw: str) -> dict[str, str]:
    return {m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or "") for m in _ATTR_RE.finditer(raw)}


@dataclass
class SignupForm:
    """The consultation form as rendered: where it posts and the fields with their preset values."""

    action: str
    fields: list[tuple[str, str, str]]

    def body(self, email: str, first_name: str = "Load", last_name: str = "Tester") -> bytes:
        """A valid, consenting submission: hidden fields kept, honeypot left empty, every box ticked."""
        known = {"email": email, "first_name": first_name, "last_name": last_name}
        pairs: list[tuple[str, str]] = []
        radios: set[str] = set()
        for name, kind, value in self.fields:
            if name in known:
                pairs.append((name, known[name]))
            elif kind == "checkbox":
                pairs.append((name, value or "y"))
            elif kind == "radio":
                if name not in radios:
                    radios.add(name)
                    pairs.append((name, value))
            elif kind in {"submit", "button", "image", "reset"}:
                continue
            else:
                # Hidden tokens keep their value; anything else (phone, message, the honeypot) stays as rendered.
                pairs.append((name, value))
        return urllib.parse.urlencode(pairs).encode()


def parse_form(page: bytes | str, default_action: str) -> SignupForm:
    """Read the first POST form of a page: inputs (with type), selects (first real option), textareas.

    Regular expressions, not html.parser: the load generator shares the CPU with the server, and this is
    ten times cheaper on pages our own templates render.
    """
    text_ = page.decode("utf-8", "replace") if isinstance(page, bytes) else page
    for match in _FORM_RE.finditer(text_):
        form = _attrs(match.group(1))
        if form.get("method", "get").lower() != "post":
            continue
        fields: list[tuple[str, str, str]] = []
        select: str | None = None
        chosen: str | None = None
        for tag in _TAG_RE.finditer(match.group(2)):
            kind, a = tag.group(1).lower(), _attrs(tag.group(2))
            if kind == "input" and a.get("name"):
                fields.append((a["name"], a.get("type", "text").lower(), a.get("value", "")))
            elif kind == "textarea" and a.get("name"):
                fields.append((a["name"], "textarea", ""))
            elif kind == "select" and a.get("name"):
                select, chosen = a["name"], None
            elif kind == "option" and select and chosen is None and a.get("value"):
                chosen = a["value"]
            elif kind == "/select" and select:
                fields.append((select, "select", chosen or ""))
                select = None
        return SignupForm(form.get("action") or default_action, fields)
    raise ValueError("the page has no POST form")


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def signup(client: Client, email: str, slug: str = SLUG) -> list[tuple[str, float, int]]:
    """GET the landing page (CSRF token, signed time), POST the form; return (label, seconds, status) for each."""
    path = f"/{slug}?utm_source=load&utm_medium=test&utm_campaign=bench"
    t0 = time.perf_counter()
    status, _, page = client.request("GET", path)
    t1 = time.perf_counter()
    samples = [("get", t1 - t0, status)]
    if status != 200:
        return samples
    form = parse_form(page, path)
    status, _, _ = client.request("POST", form.action, form.body(email), {**FORM_HEADERS, "Referer": path})
    samples.append(("post", time.perf_counter() - t1, status))
    return samples


@dataclass
class LoadResult:
    """What a concurrent run saw: wall time, every sample, and the failures."""

    elapsed: float
    jobs: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def rate(self) -> float:
        """Jobs completed per second."""
        return self.jobs / self.elapsed if self.elapsed else 0.0

    def percentile(self, label: str, pct: float) -> float:
        """Latency percentile of one sample label, in milliseconds."""
        values = sorted(self.samples.get(label, []))
        if not values:
            return float("nan")
        if len(values) == 1:
            return values[0] * 1000
        return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1] * 1000


def run_concurrent(
    port: int,
    jobs: Iterable[object],
    work: Callable[[Client, object], list[tuple[str, float, int]]],
    clients: int = 50,
    ok: Callable[[str, int], bool] = lambda label, status: status < 400,
    duration: float | None = None,
) -> LoadResult:
    """Run `work(client, job)` for each job from `clients` threads, each with its own connection.

    With `duration`, clients stop taking new jobs after that many seconds (jobs may then be endless);
    `jobs` in the result counts the jobs actually done.
    """
    it: Iterator[object] = iter(jobs)
    lock = threading.Lock()
    result = LoadResult(elapsed=0.0, jobs=0)
    start = threading.Barrier(clients + 1)
    deadline = [float("inf")]

    def loop() -> None:
        client = Client(port)
        local: list[tuple[str, float, int]] = []
        errors: list[str] = []
        start.wait()
        while True:
            with lock:
                job = next(it, None) if time.perf_counter() < deadline[0] else None
                if job is not None:
                    result.jobs += 1
            if job is None:
                break
            try:
                local.extend(work(client, job))
            except Exception as exc:  # noqa: BLE001 - counted as a failure, the run goes on
                errors.append(f"{job!r}: {type(exc).__name__}: {exc}")
                client.close()
        client.close()
        with lock:
            for label, seconds, status in local:
                result.samples.setdefault(label, []).append(seconds)
                result.statuses[(label, status)] += 1
                if not ok(label, status):
                    result.failures.append(f"{label} answered {status}")
            result.failures.extend(errors)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    t0 = time.perf_counter()
    if duration is not None:
        deadline[0] = t0 + duration
    start.wait()
    for thread in threads:
        thread.join()
    result.elapsed = time.perf_counter() - t0
    return result


# Bulk seeding: many leads with active enrollments, written by the database itself in one statement.


def _filler(column) -> str:
    """An SQL literal for a NOT NULL column the seed does not name (columns added later by others)."""
    kind = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(kind, DateTime):
        return ":now"
    if isinstance(kind, Boolean):
        return ":false_"
    if isinstance(kind, Integer):
        return "0"
    if isinstance(kind, String | Text):
        return "''"
    raise RuntimeError(f"bench seed does not know how to fill {column.table.name}.{column.name}")


def _insert_sql(engine: Engine, table: str, values: dict[str, str]) -> str:
    """INSERT ... SELECT over a number series from :first to :last, naming every NOT NULL column."""
    tbl = Base.metadata.tables[table]
    cols = dict(values)
    for column in tbl.columns:
        if column.name not in cols and not column.nullable and not column.primary_key:
            cols[column.name] = _filler(column)
    names = ", ".join(cols)
    exprs = ", ".join(cols.values())
    if engine.dialect.name == "sqlite":
        series = "WITH RECURSIVE seq(x) AS (SELECT :first UNION ALL SELECT x + 1 FROM seq WHERE x < :last)"
        return f"INSERT INTO {table} ({names}) {series} SELECT {exprs} FROM seq"
    return f"INSERT INTO {table} ({names}) SELECT {exprs} FROM generate_series(:first, :last) AS seq(x)"


def seed_enrolled(
    engine: Engine, count: int, due: int, now: datetime, due_at: datetime, later_at: datetime, tag: str = "bench"
) -> tuple[int, int]:
    """Add `count` consenting leads enrolled in the demo campaign; the first `due` are due at `due_at`.

    Returns the (first, last) lead id written. Emails are `<tag><id>@bench.example`.
    """
    with engine.connect() as conn:
        top = conn.execute(select(func.coalesce(func.max(Base.metadata.tables["leads"].c.id), 0))).scalar_one()
        etop = conn.execute(select(func.coalesce(func.max(Base.metadata.tables["enrollments"].c.id), 0))).scalar_one()
    first = max(top, etop) + 1
    last = first + count - 1
    leads = {
        "id": "x",
        "email": f"'{tag}' || x || '@bench.example'",
        "first_name": "'Bench'",
        "status": "'new'",
        "source": "'bench'",
        "landing_slug": f"'{SLUG}'",
        "email_opt_in": ":true_",
        "preferred_contact": "'email'",
        "created_at": ":now",
        "updated_at": ":now",
    }
    enrollments = {
        "id": "x",
        "lead_id": "x",
        "campaign_slug": f"'{SLUG}'",
        "state": "'active'",
        "next_step": "0",
        "next_send_at": "CASE WHEN x < :first + :due THEN :due_at ELSE :later_at END",
        "created_at": ":now",
    }
    params = [
        bindparam("first", first, type_=Integer),
        bindparam("last", last, type_=Integer),
        bindparam("due", due, type_=Integer),
        bindparam("now", now, type_=UTCDateTime),
        bindparam("due_at", due_at, type_=UTCDateTime),
        bindparam("later_at", later_at, type_=UTCDateTime),
        bindparam("true_", True, type_=Boolean),
        bindparam("false_", False, type_=Boolean),
    ]
    with engine.begin() as conn:
        for table, values in (("leads", leads), ("enrollments", enrollments)):
            stmt = text(_insert_sql(engine, table, values))
            used = {p.key: p for p in params if f":{p.key}" in stmt.text}
            conn.execute(stmt.bindparams(*used.values()))
        if engine.dialect.name == "postgresql":
            # Explicit ids leave the sequences behind; move them past what we wrote.
            for table in ("leads", "enrollments"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {last})"))
    # Planner statistics, as `flask db upgrade` and autovacuum keep them in production: without any,
    # PostgreSQL may walk a status index instead of the primary key.
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return first, last


def create_bench_table(engine: Engine) -> None:
    """The table bench.wsgi's bare insert route writes to (not a model: it never exists outside a benchmark)."""
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {BENCH_TABLE} (email VARCHAR(320) NOT NULL)"))


def publish_content(app) -> None:
    """Import and publish the shipped posts, then campaigns, as `make run` does on a first start (the app serves
    both from the database; a campaign may only link to published posts)."""
    from core.db import db
    from studio.post_services import import_post_files
    from studio.services import import_folders

    with app.app_context():
        with db.write_transaction() as session:
            posts = import_post_files(session, Path(app.config["BLOG_DIR"]), "bench", publish_them=True)
        with db.write_transaction() as session:
            campaigns = import_folders(session, Path(app.config["CAMPAIGNS_DIR"]), "bench", publish_them=True)
    if posts.problems or campaigns.problems:
        raise RuntimeError("the shipped content does not validate:\n" + "\n".join(posts.problems + campaigns.problems))
