"""`make bench-welcome` (and part of `make bench`): how long a signup's welcome takes to reach the provider.

gunicorn (2 workers) takes signups, one `flask nurture run` worker (default NURTURE_TICK_SECONDS) sends through
the real sendgrid client to the fake SendGrid process, which stamps each accepted request. Latency runs from the
moment the signup's POST leaves the client (before its commit, so the figure is an upper bound) to the fake's 2xx.
Three runs: signups one at a time; a burst from BENCH_CLIENTS (50) clients at once; and as the baseline, signups
one at a time to a worker with NURTURE_WAKE=0 (the tick alone, as before the wake-up).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from bench import load
from bench.load import SLUG, Client, base_env, spawn, start_gunicorn, stop, tool
from bench.run import API_KEY, CLIENTS, HTTPS_SITE, SCALE, Report, database, fake_sendgrid

SEQUENTIAL = max(10, int(40 * SCALE))
BURST = max(CLIENTS, int(4 * CLIENTS * SCALE))
BASELINE = max(6, int(15 * SCALE))
TARGETS_MS = {"welcome": (300.0, 1000.0), "welcome_burst": (None, 2000.0)}
DRAIN_SECONDS = 60.0


def accepted(port: int) -> dict[str, float]:
    """The fake's accepted requests: recipient address -> wall-clock time of the 2xx."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/requests", timeout=30) as resp:
        items = json.load(resp)
    return {item["body"]["personalizations"][0]["to"][0]["email"]: item["received_at"] for item in items}


def sign_up(client: Client, email: str, posted: dict[str, float]) -> list[tuple[str, float, int]]:
    """GET the page, POST the form; note when the POST left (wall clock) under the address."""
    client.cookies.clear()
    path = f"/{SLUG}?utm_source=bench&utm_medium=welcome&utm_campaign=latency"
    status, _, page = client.request("GET", path)
    if status != 200:
        return [("get", 0.0, status)]
    form = load.parse_form(page, path)
    body = form.body(email)
    posted[email] = time.time()
    t0 = time.perf_counter()
    status, _, _ = client.request("POST", form.action, body, {**load.FORM_HEADERS, "Referer": path})
    return [("post", time.perf_counter() - t0, status)]


def latencies(fake_port: int, posted: dict[str, float]) -> list[float]:
    """Milliseconds from each POST to its welcome's 2xx, once every welcome arrived (or the drain gave up)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        seen = accepted(fake_port)
        if all(email in seen for email in posted) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return [(seen[email] - at) * 1000 for email, at in posted.items() if email in seen]


def pct(values: list[float], p: int) -> float:
    """The p-th percentile (inclusive method), NaN for no values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def one_at_a_time(port: int, count: int, tag: str) -> dict[str, float]:
    """`count` signups from one client, a short random pause between them (not in step with the tick)."""
    posted: dict[str, float] = {}
    client = Client(port)
    rng = random.Random(7)
    for n in range(count):
        sign_up(client, f"{tag}{n}@bench.example", posted)
        time.sleep(rng.uniform(0.05, 0.4))
    client.close()
    return posted


def burst(port: int, count: int, tag: str) -> tuple[dict[str, float], int]:
    """`count` signups from CLIENTS clients starting together; returns the POST times and the failures."""
    posted: dict[str, float] = {}
    lock = threading.Lock()

    def work(client: Client, email: object) -> list[tuple[str, float, int]]:
        mine: dict[str, float] = {}
        samples = sign_up(client, str(email), mine)
        with lock:
            posted.update(mine)
        return samples

    emails = [f"{tag}{n}@bench.example" for n in range(count)]
    result = load.run_concurrent(port, emails, work, clients=CLIENTS, ok=lambda label, s: s == 303 or label == "get")
    return posted, len(result.failures)


def say(report: Report, name: str, values: list[float], wanted: int, baseline: list[float] | None = None) -> None:
    """p50 and p95 with their targets (and the tick-only baseline's); a miss or a lost welcome fails the run."""
    p50_target, p95_target = TARGETS_MS[name]
    p50, p95 = pct(values, 50), pct(values, 95)
    ok = len(values) == wanted and (p50_target is None or p50 < p50_target) and p95 < p95_target
    targets = ", ".join(
        f"{label} < {target:.0f} ms" for label, target in (("p50", p50_target), ("p95", p95_target)) if target
    )
    base = f" (baseline tick only: p50 {pct(baseline, 50):.0f} / p95 {pct(baseline, 95):.0f} ms)" if baseline else ""
    report.say(
        f"{name}_ms p50 {p50:.0f} p95 {p95:.0f} max {max(values, default=float('nan')):.0f}{base} "
        f"[{len(values)}/{wanted} arrived] (target {targets}) {'OK' if ok else 'MISSED'}"
    )
    if not ok:
        report.misses.append(name)


def bench_welcome(report: Report, url: str, workdir: Path) -> None:
    """(5) Signup to the provider's 2xx for its welcome: one at a time, in a burst, and the tick-only baseline."""
    run = uuid.uuid4().hex[:6]
    with fake_sendgrid(workdir) as fake_port:
        env = base_env(
            url,
            workdir / "instance",
            MAIL_BACKEND="sendgrid",
            SENDGRID_API_HOST=f"http://127.0.0.1:{fake_port}",
            SENDGRID_API_KEY=API_KEY,
            SITE_URL=HTTPS_SITE,
        )
        web, port = start_gunicorn("bench.wsgi:app", env, workers=2, log=workdir / "welcome-web.log")
        worker = None
        try:
            results: dict[str, list[float]] = {}
            for wake in ("0", "1"):
                log = workdir / f"welcome-worker-{wake}.log"
                worker_env = {**env, "NURTURE_WAKE": wake, "LOG_LEVEL": "INFO"}
                worker = spawn([tool("flask"), "nurture", "run"], worker_env, log)
                wait_for_line(log, "nurture worker", worker)
                time.sleep(1.0)  # its first tick, run at start, is over
                if wake == "0":
                    results["baseline"] = latencies(fake_port, one_at_a_time(port, BASELINE, f"tick-{run}-"))
                else:
                    results["welcome"] = latencies(fake_port, one_at_a_time(port, SEQUENTIAL, f"one-{run}-"))
                    posted, failures = burst(port, BURST, f"burst-{run}-")
                    results["welcome_burst"] = latencies(fake_port, posted)
                    if failures:
                        report.say(f"welcome_burst_signup_failures {failures}")
                stop(worker)
                worker = None
        finally:
            stop(worker)
            stop(web)
    tick = os.environ.get("NURTURE_TICK_SECONDS", "5")
    report.say(
        f"welcome = from a signup's POST (before its commit) to the fake SendGrid's 2xx for its welcome; gunicorn "
        f"2 workers, one `flask nurture run` worker (tick {tick} s); burst: {CLIENTS} clients, {BURST} signups"
    )
    say(report, "welcome", results["welcome"], SEQUENTIAL, results["baseline"])
    say(report, "welcome_burst", results["welcome_burst"], BURST)


def wait_for_line(log: Path, text: str, proc: object, timeout: float = 60.0) -> None:
    """Block until the process wrote `text` to its log (or fail with the log's end)."""
    deadline = time.monotonic() + timeout
    while not (log.exists() and text in log.read_text(errors="replace")):
        if proc.poll() is not None or time.monotonic() > deadline:  # type: ignore[attr-defined]
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"the worker did not start: {tail}")
        time.sleep(0.1)


def main() -> int:
    """Run the welcome benchmark on SQLite, and on PostgreSQL when BENCH_DATABASE_URL is set."""
    report = Report()
    for kind in ["sqlite"] + (["postgresql"] if os.environ.get("BENCH_DATABASE_URL") else []):
        with tempfile.TemporaryDirectory(prefix=f"bench-welcome-{kind}-") as tmp:
            report.say(f"## backend {kind}")
            with database(kind, Path(tmp), "welcome") as url:
                bench_welcome(report, url, Path(tmp))
    return 1 if report.misses else 0


if __name__ == "__main__":
    sys.exit(main())
