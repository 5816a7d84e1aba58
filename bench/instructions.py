"""`make bench-instructions`: instructions per landing page view in process, counted by valgrind's callgrind.

wrk's figures move with whatever else the machine does; instructions do not. Each target runs in a child
process under callgrind twice, with 100 and with 300 requests after 50 of warm-up, and the difference over 200
is one request's cost (start-up and warm-up cancel out). The requests are WSGI calls without a server, so
gunicorn's and the kernel's work are not counted. Targets: the landing page for a first-time visitor and the
bare route serving its bytes (bench.wsgi). Rate limits are on, as in production, unless RATELIMIT_ENABLED=0 (as
`make bench` runs its servers). Needs valgrind (Debian package `valgrind`); takes about three minutes.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.load import ROOT, SLUG, base_env

TARGETS = {
    "landing": f"/{SLUG}?utm_source=bench&utm_medium=cpc&utm_campaign=load",
    "bare": "/_bench/landing-bytes",
}
WARM_UP = 50
FEW, MANY = 100, 300
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def child(target: str, count: int) -> None:
    """Serve `count` requests of `target` (after the warm-up) by calling the app as a WSGI server would."""
    from werkzeug.test import EnvironBuilder

    from bench.wsgi import app

    environ = EnvironBuilder(path=TARGETS[target], headers={"User-Agent": "Mozilla/5.0 (bench)"}).get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"{TARGETS[target]} answered {status}")

    for _ in range(WARM_UP + count):
        body = app({**environ, "wsgi.input": io.BytesIO()}, start_response)
        for _chunk in body:
            pass
        body.close()


def count(target: str, requests: int, env: dict[str, str], workdir: Path) -> int:
    """Instructions of one child process serving `requests` requests of `target`."""
    out = workdir / f"callgrind.{target}.{requests}"
    args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    args += [sys.executable, "-m", "bench.instructions", "--child", target, str(requests)]
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{target} x {requests} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    """Print each target's instructions per request and the ratio bare / landing."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    from bench.run import database

    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        workdir = Path(tmp)
        with database("sqlite", workdir, "instructions") as url:
            limits = os.environ.get("RATELIMIT_ENABLED", "1")
            # Raised: under valgrind the every-2-seconds revision check would query every few requests.
            env = base_env(url, workdir / "instance", RATELIMIT_ENABLED=limits, CONTENT_REFRESH_SECONDS="3600")
            per_request = {}
            for target in TARGETS:
                few, many = count(target, FEW, env, workdir), count(target, MANY, env, workdir)
                per_request[target] = (many - few) / (MANY - FEW)
                print(f"{target}_instructions_per_request {per_request[target]:,.0f} (rate limits {limits})")
    print(f"instructions_ratio bare / landing {per_request['bare'] / per_request['landing']:.2f}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(main())
