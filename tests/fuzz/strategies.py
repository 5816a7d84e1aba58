"""Strategies and settings the fuzz tests share: bounded runs, awkward text, any JSON."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded so the whole folder stays well under a minute per database; no example database in the tree.
# FUZZ_SCALE=10 runs ten times as many examples (a deeper run before a release).
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
FUZZ = settings(
    max_examples=40 * SCALE,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Any Unicode text but lone surrogates (no client can send them), huge strings, and
# values that look almost right.
unicode_text = st.text(max_size=300)
# Past every column width and the message limit (bodies past 64 KB have their own tests).
huge_text = st.builds(lambda ch, n: ch * n, st.characters(codec="utf-8"), st.integers(min_value=101, max_value=2_100))
tricky = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\r\nBcc: victim@example.com",
        "' OR 1=1 --",
        "; DROP TABLE leads;",
        "<script>alert(1)</script>",
        "a@b",
        "ADA@EXAMPLE.COM",
        "ada@exämple.com",
        "+1 303 555 0123",
        "+999",
        "knee",
        "phone",
        "text",
        "y",
        "on",
        "false",
        "0",
        "[]",
        "{}",
        "null",
        "1e309",
        "\ufeff",
        "ada\x00@example.com",
        "\u202e",
        "😀" * 50,
    ]
)
value = st.one_of(unicode_text, tricky, huge_text)


def json_values() -> st.SearchStrategy:
    """Any JSON value: nested lists and objects of scalars."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
        lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
        max_leaves=20,
    )


class NestedJSON(bytes):
    """A body of JSON nested `depth` deep; its repr stays short when Hypothesis reports a failing example."""

    depth: int

    def __repr__(self) -> str:
        return f"NestedJSON({self[:5]!r} * {self.depth}, {len(self)} bytes)"


def _nest(depth: int, array: bool, closed: bool) -> NestedJSON:
    opener, inner, closer = ("[", "1", "]") if array else ('{"a":', "1", "}")
    body = NestedJSON((opener * depth + (inner + closer * depth if closed else "")).encode())
    body.depth = depth
    return body


def nested_json(max_depth: int = 10_000) -> st.SearchStrategy[bytes]:
    """Arrays or objects nested deeper than a parser recurses ("[[[[1]]]]"), closed or cut short; under 64 KB."""
    return st.builds(_nest, st.integers(min_value=900, max_value=max_depth), st.booleans(), st.booleans())
