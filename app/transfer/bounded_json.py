"""Reading untrusted JSON in bounded memory and time.

ijson's `items()` builds a prefix string per nesting level for every value, so a deeply nested
array costs memory in the square of its depth (depth 20,000, 40 KB, took 1.4 GB); and yajl
re-reads a string token from its start each time a read ends inside it, so one long string
costs time in the square of its length (a 40 MB string: 5 s). Here the events come from
`basic_parse` (no prefixes), nesting past MAX_NESTING is refused as soon as it is seen, a
conversation holding more than `max_values` JSON values stops being built (and is refused),
and the bytes are checked before yajl sees them: no string, and nothing between two quotes,
is longer than MAX_TOKEN_BYTES, and no more than `max_bytes` are read in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Protocol

import ijson  # type: ignore[import-untyped]

from app.transfer.conversations import ImportFormatError

# ChatGPT's export nests 7 levels (array, conversation, mapping, node, message, content,
# parts); metadata adds a few. Anything much deeper is not a chat export.
MAX_NESTING = 32
# A message holds at most 32,000 characters (12 bytes each at most, escaped as a surrogate
# pair): a longer string is not a message any import keeps.
MAX_TOKEN_BYTES = 1024 * 1024
READ_SIZE = 256 * 1024
_OPENING = {"start_map", "start_array"}
_CLOSING = {"end_map", "end_array"}


class TooLongToken(ImportFormatError):
    pass


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class CheckedReader:
    """A binary stream read through: refuses past `max_bytes` in all (`too_large` says why),
    and any run of more than MAX_TOKEN_BYTES between two quotes that are not escaped. Linear:
    each chunk is scanned with bytes methods, carrying only the open run from the last one."""

    def __init__(self, raw: IO[bytes], max_bytes: int, too_large: str) -> None:
        self.raw = raw
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.read_bytes = 0
        self._open_run = b""  # the bytes after the last unescaped quote

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing to learn whether the stream gives bytes or text
            return b""
        chunk = self.raw.read(size if size > 0 else READ_SIZE)
        self.read_bytes += len(chunk)
        if self.read_bytes > self.max_bytes:
            raise ImportFormatError(self.too_large)
        window = self._open_run + chunk
        # Same length, escapes blanked out: every quote left is a string's start or end.
        quotes_only = window.replace(b"\\\\", b"__").replace(b'\\"', b"__")
        if len(window) > MAX_TOKEN_BYTES and max(map(len, quotes_only.split(b'"'))) > MAX_TOKEN_BYTES:
            raise TooLongToken(
                f"a JSON string (or value) is longer than {MAX_TOKEN_BYTES // 1024} KiB; a message holds at "
                "most 32,000 characters"
            )
        last_quote = quotes_only.rfind(b'"')
        self._open_run = window[last_quote + 1 :]  # whole when there is none (-1)
        return chunk


def array_items(stream: Readable, max_values: int, what: str) -> Iterator[Any]:
    """The items of the JSON array `stream` holds, one at a time. ImportFormatError for
    nesting deeper than MAX_NESTING, or an item of more than `max_values` values (`what`
    names the items in the message). ijson.JSONError for what is not JSON."""
    events = ijson.basic_parse(stream, use_float=True, buf_size=READ_SIZE)
    first = next(events, None)
    if first is None or first[0] != "start_array":
        raise ImportFormatError(f"not a JSON array of {what}s")
    depth, values, number = 1, 0, 1
    builder = ijson.ObjectBuilder()
    for event, value in events:
        if event in _OPENING:
            depth += 1
            if depth > MAX_NESTING:
                raise ImportFormatError(f"{what} number {number} nests deeper than {MAX_NESTING} levels")
        elif event in _CLOSING:
            depth -= 1
            if depth == 0:
                return
        values += 1
        if values > max_values:
            raise ImportFormatError(f"{what} number {number} holds more than {max_values} JSON values")
        builder.event(event, value)
        if depth == 1:  # an item ended (or was a scalar)
            yield builder.value
            builder = ijson.ObjectBuilder()
            values = 0
            number += 1


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How deep `value` (parsed JSON) nests, counting no further than `limit` + 1."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest
