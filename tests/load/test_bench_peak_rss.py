"""`make bench` reports the nurture tick's own peak memory, not the size of the process that started it."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import load

BALLAST_MIB = 300


def test_the_peak_is_the_commands_own_however_large_its_parent(tmp_path):
    ballast = bytearray(BALLAST_MIB * 2**20)
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # resident, as a benchmark process is by the memory phase
    peak_file = tmp_path / "peak"
    command = [sys.executable, "-m", "bench.peak_rss", "--version"]  # `flask --version` through the wrapper
    done = subprocess.run(
        command, env={**os.environ, "PEAK_RSS_FILE": str(peak_file)}, cwd=load.ROOT, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert b"Flask" in done.stdout
    peak_mib = int(peak_file.read_text()) / 1024
    # A Python process with Flask loaded: tens of MiB; the parent's ballast (what ru_maxrss would add) is absent.
    assert 5 < peak_mib < BALLAST_MIB / 2
    del ballast
