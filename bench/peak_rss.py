"""Run a `flask` command in this process and write its own peak memory (VmHWM, KiB) to PEAK_RSS_FILE at exit.

A child's ru_maxrss (wait4, getrusage) starts from the RSS of the process it was forked from: Linux carries the
old address space's high-water mark across exec, so a tick started by a large benchmark process was reported
at the parent's size. VmHWM belongs to the address space the command itself built.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

from flask.cli import main


def _write_peak() -> None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            Path(os.environ["PEAK_RSS_FILE"]).write_text(line.split()[1])


if __name__ == "__main__":
    atexit.register(_write_peak)
    sys.argv = ["flask", *sys.argv[1:]]
    main()
