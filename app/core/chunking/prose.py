"""Text we do not parse, as units to pack: paragraphs and, in Markdown, sections named
after their headings. Packing cuts them into windows of at most :data:`MAX_WINDOW_LINES`."""

from __future__ import annotations

import re

from app.core.chunking.packing import Unit

# Line windows (for files we do not parse) stay short enough to read as one search result.
MAX_WINDOW_LINES = 40

_HEADING = re.compile(r" {0,3}(#{1,6})\s+(.*?)[\s#]*$")


def text_units(lines: list[str], markdown: bool) -> list[Unit]:
    """Paragraphs; in Markdown, each heading starts a section named after it."""
    units: list[Unit] = []
    symbol, start, last, fenced, heading_next = "", -1, -1, False, False

    def close() -> None:
        nonlocal start, heading_next
        if start >= 0:
            units.append(Unit(start, last, [], symbol, new_run=heading_next))
            start, heading_next = -1, False

    for row, line in enumerate(lines):
        stripped = line.strip()
        if markdown and stripped.startswith(("```", "~~~")):
            fenced = not fenced
        heading = _HEADING.match(line) if markdown and not fenced else None
        if heading or not (stripped or fenced):
            close()
        if heading:
            symbol, heading_next = heading.group(2)[:80], True
        if stripped:
            start, last = (row if start < 0 else start), row
    close()
    return units
