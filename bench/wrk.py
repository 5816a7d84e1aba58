"""Web throughput measured with wrk (C, two threads): the load generator costs the server's cores far less than
Python clients, so ratios against a bare route are not compressed. Used by `make bench` (bench.run)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

THREADS = 2
CONNECTIONS = 32
SECONDS = 5.0
# done() prints one JSON line wrk's own summary does not: exact counts, errors by kind, latency percentiles.
_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
    .. '"timeout": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
# One POST per request with the form body captured from a real page; every request gets its own address.
_POST = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  -- tid: a global each thread gets from setup (a local of the same name would hide it)
  local email = PREFIX .. tid .. "-" .. counter .. "%40bench.example"
  return wrk.format("POST", PATH, HEADERS, BODY_HEAD .. email .. BODY_TAIL)
end
"""
EMAIL_MARK = "XXEMAILXX"


def wrk_binary() -> str:
    """Path of wrk, or a clear error saying how to get it."""
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` (Debian package), then run again")
    return found


@dataclass
class WrkResult:
    """What one wrk run saw."""

    requests: int
    seconds: float
    errors: dict[str, int]
    p50_ms: float
    p99_ms: float

    def rate(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def error_count(self) -> int:
        """Every failed request: connection errors, timeouts and answers other than 2xx/3xx."""
        return sum(self.errors.values())


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal for this ASCII content


def post_script(path: str, body: str, cookie: str, prefix: str, referer: str) -> str:
    """A wrk script posting `body` (which holds EMAIL_MARK once) with the session cookie of the page it came from."""
    head, tail = body.split(EMAIL_MARK)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Referer": referer}
    header_table = "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()) + "}"
    consts = (
        f"PATH = {_lua(path)}\nHEADERS = {header_table}\nBODY_HEAD = {_lua(head)}\nBODY_TAIL = {_lua(tail)}\n"
        f"PREFIX = {_lua(urllib.parse.quote(prefix))}\n"
    )
    return consts + _POST + _DONE


def run(url: str, workdir: Path, script: str | None = None, seconds: float = SECONDS, name: str = "run") -> WrkResult:
    """Run wrk against `url` (THREADS threads, CONNECTIONS connections) and read its JSON summary."""
    lua = workdir / f"wrk-{name}.lua"
    lua.write_text((script or "") + ("" if script and "function done" in script else _DONE))
    args = [wrk_binary(), "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{seconds:g}s", "-s", str(lua), url]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-1000:]}")
    data = json.loads(line.split(" ", 1)[1])
    errors = {k: int(data[k]) for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )
