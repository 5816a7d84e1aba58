"""A/B tests: assignment is stable and follows the weights; the winner rule does not crown noise but finds a lift."""

from __future__ import annotations

import math
import random

import pytest

from studio.experiments import Arm, assign, sure_winner, verdict, wilson

# Chi-square critical values at p = 0.001 (a fair assignment fails this once in a thousand key sets).
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27}


@pytest.mark.parametrize("weights", [(1, 1), (3, 1), (50, 30, 20), (1, 1, 1, 1)])
def test_assignment_follows_the_weights_on_10000_leads(weights):
    counts = [0] * len(weights)
    for enrollment_id in range(1, 10_001):
        counts[assign(f"enr:{enrollment_id}:welcome", weights)] += 1
    expected = [10_000 * w / sum(weights) for w in weights]
    chi2 = sum((c - e) ** 2 / e for c, e in zip(counts, expected, strict=True))
    assert chi2 < CHI2_999[len(weights) - 1], (counts, expected, chi2)


def test_the_same_lead_always_gets_the_same_variant():
    first = [assign(f"enr:{n}:the-science", (1, 1)) for n in range(500)]
    again = [assign(f"enr:{n}:the-science", (1, 1)) for n in range(500)]
    assert first == again
    assert 0 < sum(first) < 500  # both variants are used


def _experiment(rng: random.Random, p_a: float, p_b: float, days: int, per_day: int) -> str | None:
    """One experiment looked at every day; the winner it declares on the first day it declares one."""
    sa = sb = 0
    for day in range(1, days + 1):
        # Normal approximation of a day's binomial count (fast enough for thousands of experiments).
        for p, which in ((p_a, "a"), (p_b, "b")):
            mean, sd = per_day * p, math.sqrt(per_day * p * (1 - p))
            got = max(0, min(per_day, round(rng.gauss(mean, sd))))
            if which == "a":
                sa += got
            else:
                sb += got
        winner = sure_winner([Arm("a", day * per_day, sa), Arm("b", day * per_day, sb)])
        if winner:
            return winner
    return None


def test_with_no_real_difference_a_winner_is_declared_in_under_5_percent_of_experiments_checked_daily():
    rng = random.Random(2026)
    declared = sum(_experiment(rng, 0.10, 0.10, days=30, per_day=200) is not None for _ in range(1000))
    assert declared < 50, declared


def test_a_real_30_percent_lift_is_found():
    rng = random.Random(11)
    found = [_experiment(rng, 0.10, 0.13, days=30, per_day=200) for _ in range(200)]
    assert found.count("b") >= 180, found.count("b")
    assert found.count("a") == 0


def test_the_verdict_says_how_sure_it_is_and_how_many_more_sends_it_needs():
    early = verdict([Arm("a", 40, 4), Arm("b", 40, 6)])
    assert early.winner is None
    assert "Too early" in early.words
    ahead = verdict([Arm("a", 400, 40), Arm("b", 400, 50)])
    assert ahead.winner is None
    assert ahead.leader == "b"
    assert "could still be luck" in ahead.words
    assert ahead.more_needed > 0
    sure = verdict([Arm("a", 4000, 400), Arm("b", 4000, 540)])
    assert sure.winner == "b"
    assert "sure enough to act on" in sure.words
    assert sure.best["b"] > 0.99
    same = verdict([Arm("a", 1000, 100), Arm("b", 1000, 100)])
    assert "No difference so far" in same.words


def test_wilson_interval_holds_the_rate_and_stays_in_bounds():
    low, high = wilson(0, 50)
    assert low == 0.0
    assert 0 < high < 0.1
    low, high = wilson(100, 1000)
    assert low < 0.1 < high
