"""first_values reads a URL's parameters exactly as request.args.to_dict() does, whatever the address holds."""

from __future__ import annotations

import pytest
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st

from core.query import first_values

_app = Flask(__name__)

# Names and values from the characters that matter to parsing: separators, escapes, '+', spaces, non-ASCII.
_piece = st.text(alphabet=st.sampled_from(list("aZ09=&;+% %2%41%zz%C3%A9é\u2028\x00")), max_size=12)


def _both(query: bytes) -> tuple:
    environ = {"QUERY_STRING": query.decode("latin-1")}
    outcomes = []
    for read in (first_values, lambda: request.args.to_dict()):
        with _app.test_request_context(environ_overrides=environ):
            try:
                outcomes.append(read())
            except Exception as exc:  # noqa: BLE001 - the very failure must be the same too
                outcomes.append(type(exc))
    return tuple(outcomes)


@settings(max_examples=400, deadline=None)
@given(
    pairs=st.lists(st.tuples(_piece, _piece), max_size=5),
    raw=st.binary(max_size=20),
)
def test_the_same_dict_as_werkzeugs_args(pairs, raw):
    ours, werkzeugs = _both("&".join(f"{name}={value}" for name, value in pairs).encode())
    assert ours == werkzeugs
    ours, werkzeugs = _both(raw)
    assert ours == werkzeugs


@settings(max_examples=300, deadline=None)
@given(query=st.text(alphabet=st.sampled_from(list("aZ09=&; é\u2028\x00_-.")), max_size=40))
def test_the_same_dict_for_queries_with_nothing_to_unquote(query):
    """Without '%' or '+' the address is split without parse_qsl: still werkzeug's very dict."""
    ours, werkzeugs = _both(query.encode())
    assert ours == werkzeugs


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"utm_source=a&utm_source=b", {"utm_source": "a"}),  # the first of repeated tags
        (b"utm_source=%E2%82%AC+x&flag", {"utm_source": "\u20ac x", "flag": ""}),
        (b"utm_source=%FF", {"utm_source": "%FF"}),  # invalid UTF-8 stays percent-encoded, as werkzeug keeps it
    ],
)
def test_cases_a_visitor_can_send(query, expected):
    assert _both(query) == (expected, expected)


def test_read_once_per_request_even_after_request_args():
    with _app.test_request_context("/?utm_source=news&utm_campaign=spring"):
        assert request.args["utm_source"] == "news"
        first = first_values()
        assert first == {"utm_source": "news", "utm_campaign": "spring"}
        assert first_values() is first
