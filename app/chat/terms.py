"""Search terms: what a message's text (or a session's title) is indexed under, how a query
is read, and the snippet that shows where it matched.

Folding: NFKD, combining marks dropped, then casefold, so "Café", "CAFE" and "café" are one
term. Words are runs of word characters (`\\w`) of the original text, each folded on its own,
so offsets into the original text are known for every word.

Stored terms: every distinct folded word (cut to MAX_TERM_CHARS), plus for each word its
prefixes of 1..PREFIX_CHARS characters marked with PREFIX_MARK: the last word of a query
matches as a prefix, and an equality on a marked prefix is an index range as cheap as a word's
(a range over the terms themselves cannot be combined with the time range a page reads).
A text gets at most MAX_TERMS_PER_TEXT terms, taken in the order its words first appear: the
work of indexing one message is bounded whatever its size, and the words past that point of
a huge message are stored and exported with it but not found by search.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

WORD = re.compile(r"\w+")
MAX_TERM_CHARS = 64
MAX_TERMS_PER_TEXT = 2000
PREFIX_CHARS = 3
PREFIX_MARK = "~"  # never part of a word (\w), so a prefix term never equals a word term
MAX_QUERY_WORDS = 8
SNIPPET_CHARS = 160
SNIPPET_LEAD = 40


def fold(text: str) -> str:
    if text.isascii():  # nothing to decompose, and casefold is lower for ASCII: the common case, fast
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _folded_words(text: str, begin: int = 0, end: int | None = None) -> Iterator[tuple[str, int, int]]:
    """(folded word, start, end) for each word of `text` that overlaps [begin, end), as they
    are read (a caller that stops at the first match folds no further); offsets in code
    points of `text`."""
    for match in WORD.finditer(text):
        if end is not None and match.start() >= end:
            return
        if match.end() <= begin:
            continue
        for word in WORD.findall(fold(match.group()))[:1]:
            yield word[:MAX_TERM_CHARS], match.start(), match.end()


def text_terms(text: str) -> list[str]:
    """The terms stored for `text`: its distinct words and their marked short prefixes, at
    most MAX_TERMS_PER_TEXT of them (the first words' first)."""
    terms: dict[str, None] = {}
    for word, _, _ in _folded_words(text):
        for term in (word, *(PREFIX_MARK + word[:n] for n in range(1, min(PREFIX_CHARS, len(word)) + 1))):
            terms[term] = None
            if len(terms) >= MAX_TERMS_PER_TEXT:
                return sorted(terms)
    return sorted(terms)


class EmptyQuery(ValueError):
    pass


@dataclass(frozen=True)
class Query:
    """Every word of `exact` must be a word of the text; some word must start with `prefix`."""

    exact: tuple[str, ...]
    prefix: str

    @classmethod
    def parse(cls, text: str) -> Query:
        words = [word[:MAX_TERM_CHARS] for word in WORD.findall(fold(text))]
        if not words:
            raise EmptyQuery("q must contain at least one letter or digit")
        if len(words) > MAX_QUERY_WORDS:
            raise EmptyQuery(f"q may have at most {MAX_QUERY_WORDS} words")
        return cls(tuple(dict.fromkeys(words[:-1])), words[-1])

    @property
    def prefix_term(self) -> str:
        """The stored term of the last word's first PREFIX_CHARS characters."""
        return PREFIX_MARK + self.prefix[:PREFIX_CHARS]

    @property
    def stored_terms(self) -> tuple[str, ...]:
        """Stored terms a matching text holds, each: the exact words and the prefix term."""
        return (*self.exact, self.prefix_term)

    @property
    def long_prefix(self) -> str | None:
        """The last word when it is longer than a stored prefix term (so a text holding the
        prefix term must still be checked for a word starting with it)."""
        return self.prefix if len(self.prefix) > PREFIX_CHARS else None

    def matches(self, terms: list[str]) -> bool:
        """Whether stored `terms` (a title's) satisfy the query (the index read one of them)."""
        stored = set(terms)
        if not all(word in stored for word in self.exact):
            return False
        if len(self.prefix) <= PREFIX_CHARS:
            return PREFIX_MARK + self.prefix in stored
        return any(term.startswith(self.prefix) for term in stored if not term.startswith(PREFIX_MARK))

    def found_in(self, text: str) -> bool:
        """Whether some word of `text` starts with the last word (the index checked the rest,
        and the last word's first PREFIX_CHARS characters)."""
        return self.long_prefix is None or any(word.startswith(self.prefix) for word, _, _ in _folded_words(text))

    def _word_matches(self, word: str) -> bool:
        return word in self.exact or word.startswith(self.prefix)


@dataclass(frozen=True)
class Snippet:
    """A stretch of the text around its first match; `highlights` are [start, end) offsets
    into `text`, in Unicode code points (not UTF-16 units)."""

    text: str
    highlights: list[tuple[int, int]]
    truncated_start: bool
    truncated_end: bool


def snippet(text: str, query: Query, width: int = SNIPPET_CHARS) -> Snippet:
    """Words are folded up to the first match, then only within the snippet: a long text
    costs a regex scan, not a fold of every word (issue 18: 30 KB messages at limit=200)."""
    first = next((start for word, start, _ in _folded_words(text) if query._word_matches(word)), 0)
    begin = max(0, min(first - SNIPPET_LEAD, len(text) - width))
    end = min(len(text), begin + width)
    spans = [(s, e) for word, s, e in _folded_words(text, begin, end) if query._word_matches(word)]
    inside = [(max(s, begin) - begin, min(e, end) - begin) for s, e in spans]
    return Snippet(text[begin:end], inside, begin > 0, end < len(text))
