"""Render once, fill slots: a page or an email that is the same for everyone but a few values is rendered once
with unguessable markers in their place, cut at the markers, and each visitor's or reader's copy only joins the
literal parts with its own values (escaped by the caller as the full render would have escaped them).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Slots:
    """Text cut at its slots: literal, slot name, literal, slot name, ..., literal."""

    parts: tuple[str, ...]

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each slot replaced by its value (a value is never scanned for markers)."""
        out = list(self.parts)
        for index in range(1, len(out), 2):
            out[index] = values[out[index]]
        return "".join(out)


class Markers:
    """One marker per slot name: letters and digits only, which Markdown, Jinja, HTML escaping and the CSS inliner
    leave as they are, with a random part nobody (a crafted UTM value, a name) can guess."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self._token = secrets.token_hex(12)
        self._pattern = re.compile(f"sl{self._token}([0-9]{{3}})")

    def __getitem__(self, name: str) -> str:
        return f"sl{self._token}{self.names.index(name):03d}"

    def values(self) -> dict[str, str]:
        """{slot name: its marker}, to render the text with."""
        return {name: self[name] for name in self.names}

    def cut(self, text: str) -> Slots:
        """The rendered text cut at the markers it contains."""
        parts = self._pattern.split(text)
        for index in range(1, len(parts), 2):
            parts[index] = self.names[int(parts[index])]
        return Slots(tuple(parts))
