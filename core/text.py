"""Text clean-up every package needs: characters that change how the text around them is shown."""

from __future__ import annotations

import re

# Bidirectional controls: embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069) and the marks
# (U+200E, U+200F, U+061C). An override in a name reverses what follows it in the admin, a CSV or a subject
# ("Ada\u202egnp.exe" shows as "Adaexe.png"), so names and free text keep none of them.
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strip_bidi(text: str) -> str:
    """The text without bidirectional control characters."""
    return BIDI_CONTROLS.sub("", text)
