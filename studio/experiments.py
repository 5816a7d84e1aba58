"""A/B tests: which variant each lead (or page view) gets, and a winner rule that does not crown noise.

Assignment hashes a stable key (an enrollment and a step), so the same lead always gets the same variant, on
every retry and every worker. The rule is a mixture sequential probability ratio test (mSPRT, the "always valid"
test Optimizely and others publish): its error rate holds however often people look, so checking every day does
not turn luck into a winner. Each variant's rate is shown with a 95% Wilson interval and the probability that it is
best (Beta posteriors), which describe the data; only the sequential test decides when "promote" is offered.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

NAMES = "abcd"
ALPHA = 0.05
# The spread of effects the test expects (a normal prior on the difference of rates): a few points either way.
TAU = 0.03
MIN_TRIALS = 100  # per variant, before any verdict: the normal approximation needs some data


def assign(key: str, weights: Sequence[int]) -> int:
    """The variant index for this key, following the weights; the same key always gets the same index."""
    digest = hashlib.sha256(key.encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights)
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    return len(weights) - 1


def experiment_id(*parts: object) -> str:
    """A short id of a test's variants: changing any variant's text or weight starts a new experiment."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:6]


def variant_name(index: int) -> str:
    """'a', 'b', ... (what a delivery records; never anything about the lead)."""
    return NAMES[index]


@dataclass(frozen=True)
class Arm:
    """One variant's count of trials (sends or page views) and successes (clicks or signups)."""

    name: str
    trials: int
    successes: int

    @property
    def rate(self) -> float:
        """Successes per trial."""
        return self.successes / self.trials if self.trials else 0.0


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a rate (sound at small counts and near 0)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def probability_best(arms: Sequence[Arm], draws: int = 4000, seed: int = 7) -> list[float]:
    """Per arm, the share of draws from the Beta(1+s, 1+n-s) posteriors in which it has the highest rate."""
    rng = random.Random(seed)
    wins = [0] * len(arms)
    for _ in range(draws):
        samples = [rng.betavariate(1 + a.successes, 1 + a.trials - a.successes) for a in arms]
        wins[samples.index(max(samples))] += 1
    return [w / draws for w in wins]


def msprt(a: Arm, b: Arm, tau: float = TAU) -> float:
    """The mixture likelihood ratio for 'the rates differ' (normal approximation); >= 1/alpha is evidence."""
    if a.trials == 0 or b.trials == 0:
        return 0.0
    diff = b.rate - a.rate
    # A floor on the variance keeps the statistic sane while a rate is still 0 or 1.
    var = max(a.rate * (1 - a.rate), 1 / a.trials) / a.trials + max(b.rate * (1 - b.rate), 1 / b.trials) / b.trials
    t2 = tau * tau
    return math.sqrt(var / (var + t2)) * math.exp(diff * diff * t2 / (2 * var * (var + t2)))


@dataclass(frozen=True)
class Verdict:
    """What the numbers say: a winner only when the sequential test is sure, and in words for a marketer."""

    winner: str | None
    leader: str | None
    words: str
    more_needed: int | None  # trials per variant still needed at the current rates (None: no difference seen)
    intervals: dict[str, tuple[float, float]]
    best: dict[str, float]


def _evidence(leader: Arm, others: Sequence[Arm], alpha: float) -> bool:
    threshold = (len(others)) / alpha  # Bonferroni over the leader's comparisons
    return all(msprt(other, leader) >= threshold for other in others)


def sure_winner(arms: Sequence[Arm], alpha: float = ALPHA) -> str | None:
    """The variant that is better than every other with the sequential test's confidence, else None."""
    if len(arms) < 2 or min(a.trials for a in arms) < MIN_TRIALS:
        return None
    leader = max(arms, key=lambda a: (a.rate, a.trials))
    return leader.name if _evidence(leader, [a for a in arms if a is not leader], alpha) else None


def _more_needed(leader: Arm, others: Sequence[Arm], alpha: float) -> int | None:
    """How many more trials per variant the test needs if the current rates hold (None when they are equal)."""
    if any(other.rate >= leader.rate for other in others):
        return None
    current = min(a.trials for a in (leader, *others))
    for factor in (1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64):
        n = max(int(current * factor), MIN_TRIALS)
        grown = [Arm(a.name, n, round(a.rate * n)) for a in (leader, *others)]
        if _evidence(grown[0], grown[1:], alpha):
            return max(n - current, 1)
    return None


def verdict(arms: Sequence[Arm], unit: str = "sends", alpha: float = ALPHA) -> Verdict:
    """Decide whether one variant is better than every other, and say how sure that is."""
    intervals = {a.name: wilson(a.successes, a.trials) for a in arms}
    best = dict(zip((a.name for a in arms), probability_best(arms), strict=True))
    if len(arms) < 2 or sum(a.trials for a in arms) == 0:
        return Verdict(None, None, f"No {unit} yet.", None, intervals, best)
    leader = max(arms, key=lambda a: (a.rate, a.trials))
    others = [a for a in arms if a is not leader]
    upper = leader.name.upper()
    if min(a.trials for a in arms) < MIN_TRIALS:
        return Verdict(
            None,
            leader.name,
            f"Too early to tell: each variant needs at least {MIN_TRIALS} {unit} before the result means anything.",
            MIN_TRIALS - min(a.trials for a in arms),
            intervals,
            best,
        )
    if _evidence(leader, others, alpha):
        return Verdict(
            leader.name,
            leader.name,
            f"{upper} is better, and the result is sure enough to act on (at most a {alpha:.0%} chance that this "
            "is luck, however often the results were looked at).",
            0,
            intervals,
            best,
        )
    more = _more_needed(leader, others, alpha)
    if more is None:
        words = f"No difference so far. If there is one, it is small; the test keeps counting {unit}."
    else:
        words = (
            f"{upper} is ahead ({best[leader.name]:.0%} likely to be best), but that could still be luck: about "
            f"{more:,} more {unit} per variant at these rates would settle it."
        )
    return Verdict(None, leader.name, words, more, intervals, best)
