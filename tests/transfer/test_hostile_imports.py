"""Issue 19, rows 1, 2, 5 and 10: an import is bounded in memory and time whatever its shape.
Each payload is built here, small enough for the test run; the server is this process, so the
bound is measured on its own RSS (tests/bounds.py)."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import pytest
from httpx import AsyncClient

from tests.bounds import measured
from tests.conftest import StartApp
from tests.factories import make_user
from tests.transfer import chatgpt_export

ZIP = {"Content-Type": "application/zip"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def _zip(data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method, compresslevel=9 if method == zipfile.ZIP_DEFLATED else None) as archive:
        archive.writestr("conversations.json", data)
    return buffer.getvalue()


def _conversation_with(extra: bytes) -> bytes:
    """One conversation (one message) followed by `extra` as the value of a field it does not read."""
    head = json.dumps(chatgpt_export.bread())[:-1].encode()
    return b"[" + head + b', "junk": ' + extra + b"}]"


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("kind", ["json", "zip"])
async def test_deeply_nested_chatgpt_json_is_a_422_before_memory_grows(client: AsyncClient, kind: str) -> None:
    """Depth 20,000 (40 KB) took the server from 526 MB to 1.9 GB (ijson's prefixes)."""
    user = await make_user(client)
    body = _conversation_with(_deep(20_000))
    content, headers = (_zip(body), ZIP) if kind == "zip" else (body, {"Content-Type": "application/json"})
    with measured() as cost:
        response = await client.post("/chat/import", content=content, headers={**user.headers, **headers})
    assert response.status_code == 422, response.text
    assert "nests deeper than" in response.text
    assert cost.growth_mb < 60, cost
    assert cost.seconds < 10, cost


async def test_a_deeply_nested_ndjson_line_is_a_422_not_a_500(client: AsyncClient) -> None:
    user = await make_user(client)
    header = json.dumps({"type": "export", "format": "chat-export", "version": 1}).encode()
    body = header + b"\n" + b'{"type":"session","session":' + _deep(100_000) + b"}\n"
    with measured() as cost:
        response = await client.post("/chat/import", content=body, headers={**user.headers, **NDJSON})
    assert response.status_code == 422, response.text
    assert "line 2 nests deeper than" in response.text
    assert cost.growth_mb < 60, cost


async def test_a_zip_bomb_is_refused_by_its_compression_ratio(client: AsyncClient) -> None:
    """A 97 KB zip of empty objects peaked at 2.4 GB and answered 200: here 3 MB of `{}` in
    ~5 KB may unpack to no more than IMPORT_MAX_UNZIPPED_RATIO (50) times that."""
    user = await make_user(client)
    bomb = _zip(_conversation_with(b"[" + b"{}," * 1_000_000 + b"{}]"))
    assert len(bomb) < 20_000
    with measured() as cost:
        response = await client.post("/chat/import", content=bomb, headers={**user.headers, **ZIP})
    assert response.status_code == 422, response.text
    assert "IMPORT_MAX_UNZIPPED_RATIO" in response.text
    assert cost.growth_mb < 30, cost
    assert cost.seconds < 5, cost


async def test_unzipped_bytes_have_an_absolute_cap(client: AsyncClient, start_app: StartApp) -> None:
    server = await start_app(import_max_unzipped_ratio=10_000, import_max_unzipped_bytes=200_000)
    user = await make_user(server)
    padded = _zip(_conversation_with(b'"' + b"x" * 300_000 + b'"'))
    response = await server.post("/chat/import", content=padded, headers={**user.headers, **ZIP})
    assert response.status_code == 422 and "IMPORT_MAX_UNZIPPED_BYTES" in response.text
    fits = await server.post("/chat/import", content=_zip(_conversation_with(b"1")), headers={**user.headers, **ZIP})
    assert fits.status_code == 200, fits.text


async def test_memory_does_not_follow_the_object_count_of_one_conversation(
    client: AsyncClient, start_app: StartApp
) -> None:
    """Within the unzipped bounds, a conversation of a million empty objects is still refused
    after a bounded number of values (IMPORT_MAX_MESSAGES_PER_CONVERSATION × 100)."""
    server = await start_app(import_max_unzipped_ratio=10_000, import_max_messages_per_conversation=100)
    user = await make_user(server)
    bomb = _zip(_conversation_with(b"[" + b"{}," * 1_000_000 + b"{}]"))
    with measured() as cost:
        response = await server.post("/chat/import", content=bomb, headers={**user.headers, **ZIP})
    assert response.status_code == 422, response.text
    assert "holds more than 10000 JSON values" in response.text
    assert cost.growth_mb < 30, cost


async def test_one_huge_string_is_refused_early_in_linear_time(client: AsyncClient, start_app: StartApp) -> None:
    """A 50 MB string in a 49 KB zip took 19.7 s (yajl re-reads a string from its start on
    every read): a string longer than a message can be is refused after reading 1 MiB of it."""
    server = await start_app(import_max_unzipped_ratio=10_000)
    user = await make_user(server)
    huge = _zip(_conversation_with(b'"' + b"\\u00e9" * 4_000_000 + b'"'))  # 24 MB, escapes included
    with measured() as cost:
        response = await server.post("/chat/import", content=huge, headers={**user.headers, **ZIP})
    assert response.status_code == 422, response.text
    assert "longer than 1024 KiB" in response.text
    assert cost.seconds < 5, cost
    assert cost.growth_mb < 60, cost


def _patched(archive: bytes, local: dict[int, bytes], central: dict[int, bytes]) -> bytes:
    """`archive` with bytes replaced at offsets of its one local header and central entry."""
    data = bytearray(archive)
    for signature, fields in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        start = data.index(signature)
        for offset, value in fields.items():
            data[start + offset : start + offset + len(value)] = value
    return bytes(data)


def _damaged_zips() -> dict[str, bytes]:
    good = json.dumps([chatgpt_export.bread()]).encode()
    stored = _zip(good, zipfile.ZIP_STORED)
    flipped = bytearray(stored)
    flipped[stored.index(b"sourdough")] ^= 0x20  # the content changes, the recorded CRC does not
    deflate64 = struct.pack("<H", 9)
    encrypted = struct.pack("<H", 1)
    return {
        "checksum (CRC-32) does not match": bytes(flipped),
        "is encrypted": _patched(stored, {6: encrypted}, {8: encrypted}),
        "compressed with method 9": _patched(stored, {8: deflate64}, {10: deflate64}),
    }


@pytest.mark.parametrize("problem", list(_damaged_zips()))
async def test_a_damaged_zip_member_is_a_422_naming_the_problem(client: AsyncClient, problem: str) -> None:
    user = await make_user(client)
    response = await client.post("/chat/import", content=_damaged_zips()[problem], headers={**user.headers, **ZIP})
    assert response.status_code == 422, response.text
    assert "conversations.json in the zip" in response.text and problem in response.text
