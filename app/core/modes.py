"""The ways to search, in one place: their names on the command line and in settings, their
labels and descriptions in the window, and what each needs. A light module: the window
imports it at start, long before the search engine."""

from __future__ import annotations

import difflib
from enum import StrEnum


class SearchMode(StrEnum):
    """How to search. A mode is named by its value or, ignoring case, by its label
    (``SearchMode("keywords")`` is KEYWORDS)."""

    HYBRID = "hybrid"  # meaning and words, fused
    SEMANTIC = "vector"  # meaning only
    KEYWORDS = "lexical"  # BM25 over words and identifier parts
    TEXT = "text"  # the exact text, every occurrence
    REGEX = "regex"  # a regular expression, every match

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def tooltip(self) -> str:
        return _TOOLTIPS[self]

    @property
    def needs_model(self) -> bool:
        """It embeds the query, so the Searcher needs the index's model."""
        return self in (SearchMode.HYBRID, SearchMode.SEMANTIC)

    @property
    def per_line(self) -> bool:
        """Its results are matching lines in file order, not ranked definitions."""
        return self in (SearchMode.TEXT, SearchMode.REGEX)

    @classmethod
    def _missing_(cls, value: object) -> SearchMode | None:
        name = str(value).strip().lower()
        return next((mode for mode in cls if name in (mode.value, mode.label.lower())), None)


_LABELS = {
    SearchMode.HYBRID: "Hybrid",
    SearchMode.SEMANTIC: "Semantic",
    SearchMode.KEYWORDS: "Keywords",
    SearchMode.TEXT: "Text",
    SearchMode.REGEX: "Regex",
}
_TOOLTIPS = {
    SearchMode.HYBRID: "Meaning and words together: the best default.",
    SearchMode.SEMANTIC: "Meaning only: finds code that uses other words than yours.",
    SearchMode.KEYWORDS: "Ranked by the words and identifier parts you type (BM25); no model.",
    SearchMode.TEXT: "Every line containing exactly this text (case-insensitive unless it "
    "has a capital); no model.",
    SearchMode.REGEX: "Every line matching this regular expression (smart case); no model.",
}


def language_names(language: str | None) -> list[str]:
    """The language filter's names: ``"python, Go"`` -> ``["python", "go"]``."""
    return [x.strip().lower() for x in (language or "").split(",") if x.strip()]


def unknown_language(language: str | None, indexed: list[str], where: str) -> str:
    """Why the language filter cannot match (a name the index lacks is a typo or a wrong
    project, not an empty answer), naming what there is; "" when it can."""
    for name in language_names(language):
        if name not in indexed:
            close = difflib.get_close_matches(name, indexed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            return (
                f"No {name!r} files are indexed {where}.{hint} Languages there: "
                f"{', '.join(indexed) or 'none yet'}."
            )
    return ""
