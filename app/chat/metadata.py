"""Metadata: a JSON object that sessions and messages carry for the programs that write them
(run ids, models, token usage, tool calls), stored and returned exactly as sent.

The rules keep it storable and bounded: at most 16 KiB as compact JSON, nested at most 8 deep,
keys of 1-64 characters that neither start with `$` nor contain `.` or NUL (MongoDB gives those
a meaning), numbers that BSON holds exactly (64-bit integers, finite floats). A broken rule is a
422 whose message names the key path; the offending value is never repeated.

Merge patches (RFC 7396) apply to stored metadata: a key set to null is removed, an object
merges into an object, anything else replaces.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field

MAX_BYTES = 16 * 1024
MAX_DEPTH = 8
MAX_KEY_CHARS = 64
SHOWN_KEY_CHARS = 40
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

JsonObject = dict[str, Any]


class MetadataError(ValueError):
    pass


def _shown(path: list[str]) -> str:
    """The key path for an error message, each key shortened: a long key is not echoed whole."""
    parts = [key if len(key) <= SHOWN_KEY_CHARS else key[:SHOWN_KEY_CHARS] + "…" for key in path]
    return ".".join(parts) or "(top level)"


def _key_problem(key: str) -> str | None:
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        return f"keys must be 1-{MAX_KEY_CHARS} characters"
    if key.startswith("$"):
        return "keys must not start with '$'"
    if "." in key or "\x00" in key:
        return "keys must not contain '.' or NUL"
    return None


def _check(value: Any, path: list[str], depth: int) -> None:
    if isinstance(value, dict):
        if depth > MAX_DEPTH:
            raise MetadataError(f"metadata at {_shown(path)}: nested deeper than {MAX_DEPTH} levels")
        for key, item in value.items():
            problem = _key_problem(key)
            if problem:
                raise MetadataError(f"metadata key {_shown([*path, key])}: {problem}")
            _check(item, [*path, key], depth + 1)
    elif isinstance(value, list):
        if depth > MAX_DEPTH:
            raise MetadataError(f"metadata at {_shown(path)}: nested deeper than {MAX_DEPTH} levels")
        for index, item in enumerate(value):
            _check(item, [*path, str(index)], depth + 1)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise MetadataError(f"metadata at {_shown(path)}: integers must fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MetadataError(f"metadata at {_shown(path)}: numbers must be finite")
    else:  # JSON bodies hold nothing else; this guards callers that build metadata in code
        raise MetadataError(f"metadata at {_shown(path)}: not a JSON value")


def encoded_size(metadata: JsonObject) -> int:
    return len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode())


def validate_metadata(metadata: JsonObject) -> JsonObject:
    """The metadata unchanged when it keeps the rules; MetadataError naming the key path otherwise."""
    return validate_json(metadata, MAX_BYTES)


def validate_json(value: JsonObject, max_bytes: int) -> JsonObject:
    """Metadata's rules with another size bound, for other JSON a message stores as given
    (a door's original item). UnicodeEncodeError for a string holding a lone surrogate."""
    _check(value, [], 1)
    if encoded_size(value) > max_bytes:
        raise MetadataError(f"metadata is larger than {max_bytes} bytes as JSON")
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: `patch` applied to `target` (neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _patch_keys_valid(patch: JsonObject) -> JsonObject:
    """A patch keeps the key rules (its nulls are removals); the size is checked once merged."""
    _check(patch, [], 1)
    return patch


Metadata = Annotated[JsonObject, AfterValidator(validate_metadata), Field(description="A JSON object, at most 16 KiB")]
MetadataPatch = Annotated[
    JsonObject,
    AfterValidator(_patch_keys_valid),
    Field(description="JSON Merge Patch (RFC 7396) applied to the stored metadata: null removes a key"),
]
