"""Render once, fill slots: a value lands where its marker was, and is never read as a marker itself."""

from __future__ import annotations

from core.slots import Markers


def test_each_slot_gets_its_value_and_the_rest_stays_byte_for_byte():
    markers = Markers(("name", "link"))
    rendered = f'<p>Hi {markers["name"]},</p><a href="{markers["link"]}">stop</a> {markers["name"]}'
    slots = markers.cut(rendered)
    filled = slots.fill({"name": "Ana", "link": "https://x.example/u/1"})
    assert filled == '<p>Hi Ana,</p><a href="https://x.example/u/1">stop</a> Ana'


def test_a_value_that_looks_like_a_marker_stays_a_value():
    markers = Markers(("a", "b"))
    slots = markers.cut(f"{markers['a']}|{markers['b']}")
    assert slots.fill({"a": markers["b"], "b": "B"}) == f"{markers['b']}|B"


def test_markers_are_letters_and_digits_and_differ_per_rendering():
    first, second = Markers(("name",)), Markers(("name",))
    assert first["name"].isalnum()
    assert first["name"] != second["name"]
