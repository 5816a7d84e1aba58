"""make bench's verdicts: a figure that misses its target by more than the spread it measured fails the run."""

from __future__ import annotations

from bench.run import RSS_TARGET_MB, Report


def test_a_miss_beyond_the_spread_fails_and_one_within_it_is_only_reported():
    report = Report()
    report.ratio("landing_ratio", 0.72, 0.02)
    report.ratio("signup_ratio", 0.47, 0.05)
    report.ratio("dispatch_pipelined_ratio", 0.70, 0.05)
    report.ratio("dispatch_sequential_ratio", 4.9)
    assert report.misses == ["dispatch_pipelined_ratio", "dispatch_sequential_ratio"]
    within = "signup_ratio 0.47 ± 0.05 between rounds (target >= 0.5) MISSED (within the noise measured)"
    assert report.lines[1] == within


def test_a_worker_over_its_memory_target_fails_the_run():
    report = Report()
    report.rss("web_worker_peak_rss", RSS_TARGET_MB - 1)
    assert report.misses == []
    report.rss("web_worker_peak_rss", RSS_TARGET_MB + 1)
    assert report.misses == ["web_worker_peak_rss"]
    assert report.lines[-1].endswith("MISSED")
