"""Imports: read a file (our NDJSON, or a ChatGPT export) conversation by conversation and
store what is not there yet, through the chat domain's history functions.

Idempotent: a session is found again by its source id (its session_sources record, unique per
user), a message by its source id within its session (unique too), so importing a file twice,
or again after a crash, creates nothing twice. A session of the user's own export that they
still have is left as it is (a backup restored); one they deleted is created again, with its
messages, seqs and times. Source ids are never written into anyone's metadata. Messages go
in batches of up to 100, each batch one transaction with the session's counters. A
conversation that cannot be read, or a message that does not validate, is reported and
skipped; the rest is imported.

Limits are checked by a first pass over the file before anything is written: more
conversations, or more messages in one, than the settings allow is a 422 and imports nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from bson import ObjectId
from pydantic import ValidationError

from app.chat import history
from app.chat.history import DatedMessage
from app.chat.schemas import MAX_BATCH, PLATFORM_PATTERN, TITLE_MAX, MessageCreate, SessionCreate
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import NotFound, UnprocessableContent
from app.core.types import utc_now
from app.transfer.chatgpt import ReadBounds, read_json, read_zip, unzipped_bound
from app.transfer.conversations import Conversation, ImportedMessage, ImportFormatError, Unreadable, short
from app.transfer.ndjson_source import read_ndjson
from app.transfer.schemas import ImportFormat, ImportReport

Progress = Callable[[int, int], None]  # (conversations done, conversations in the file)


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int
    max_conversations: int
    max_messages: int
    max_unzipped_ratio: int
    max_unzipped_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        return cls(
            settings.import_max_bytes,
            settings.import_max_conversations,
            settings.import_max_messages_per_conversation,
            settings.import_max_unzipped_ratio,
            settings.import_max_unzipped_bytes,
        )


class ImportTooLarge(UnprocessableContent):
    pass


def read_conversations(
    stream: IO[bytes], kind: ImportFormat, limits: ImportLimits
) -> Iterator[Conversation | Unreadable]:
    size = stream.seek(0, 2)
    stream.seek(0)
    if kind == "chat-export":
        return read_ndjson(stream)
    if kind == "chatgpt-zip":
        unzipped = unzipped_bound(size, limits.max_unzipped_ratio, limits.max_unzipped_bytes)
        return read_zip(stream, ReadBounds.of(limits.max_messages, unzipped))
    return read_json(stream, ReadBounds.of(limits.max_messages, size))


def count_within_limits(stream: IO[bytes], kind: ImportFormat, limits: ImportLimits) -> int:
    """The number of conversations in the file; ImportTooLarge beyond the limits."""
    count = 0
    for item in read_conversations(stream, kind, limits):
        count += 1
        if count > limits.max_conversations:
            raise ImportTooLarge(f"more than {limits.max_conversations} conversations (IMPORT_MAX_CONVERSATIONS)")
        if isinstance(item, Conversation) and len(item.messages) > limits.max_messages:
            raise ImportTooLarge(
                f"conversation number {count} has more than {limits.max_messages} messages "
                "(IMPORT_MAX_MESSAGES_PER_CONVERSATION)"
            )
    return count


async def run_import(
    database: Database,
    user_id: ObjectId,
    stream: IO[bytes],
    kind: ImportFormat,
    limits: ImportLimits,
    progress: Progress | None = None,
) -> ImportReport:
    """Parsing runs in a worker thread, one conversation at a time; storing on the loop."""
    try:
        total = await asyncio.to_thread(count_within_limits, stream, kind, limits)
        conversations = read_conversations(stream, kind, limits)
        report = ImportReport(format=kind)
        done = 0
        while (item := await asyncio.to_thread(next, conversations, None)) is not None:
            await _import_one(database, user_id, item, report)
            done += 1
            if progress is not None:
                progress(done, total)
    except ImportFormatError as exc:
        raise UnprocessableContent(str(exc)) from exc
    return report


async def _import_one(
    database: Database, user_id: ObjectId, item: Conversation | Unreadable, report: ImportReport
) -> None:
    if isinstance(item, Unreadable):
        report.skip(item.label, None, item.reason)
        return
    label = short(item.title)
    if await _still_there(database, user_id, item):
        report.sessions.unchanged += 1
        report.messages.unchanged += len(item.messages)
        return
    try:
        body = SessionCreate(
            title=item.title.strip()[:TITLE_MAX] or "Untitled",
            name=item.name,
            platform=item.platform if _valid_platform(item.platform) else "imported",
            metadata=item.metadata,
        )
    except ValidationError as exc:
        report.skip(label, None, _reason(exc))
        return
    dates = _session_dates(item)
    session, created = await history.session_for_source(database, user_id, body, item.source_id, dates)
    if created:
        report.sessions.created += 1
        if body.name is not None and session.name is None:
            report.left_out_name(label, body.name)
    else:
        report.sessions.unchanged += 1
    batch: list[DatedMessage] = []
    seen: set[str] = set()
    try:
        for message in item.messages:
            valid = _valid_message(message, seen, label, report)
            if valid is not None:
                batch.append(valid)
            if len(batch) == MAX_BATCH:
                await _store(database, user_id, session.id, batch, dates, report)
                batch = []
        if batch:
            await _store(database, user_id, session.id, batch, dates, report)
    except NotFound:
        report.skip(label, None, "the session was deleted during the import")
    for source_id, reason in item.skipped:
        report.skip(label, short(source_id), reason)


async def _still_there(database: Database, user_id: ObjectId, item: Conversation) -> bool:
    """A session of the user's own export (a backup restored into its account) that the user
    still has: left exactly as it is."""
    if item.exported_as is None or item.exported_as[0] != str(user_id):
        return False
    return await history.owns_session(database, user_id, item.exported_as[1])


def _session_dates(item: Conversation) -> history.SessionDates:
    """The conversation's own times: created when it says (else at its first message, else
    now), last active when it says or at its last message, whichever is later."""
    times = [message.created_at for message in item.messages if message.created_at is not None]
    created_at = item.created_at or (min(times) if times else utc_now())
    known = [created_at, *times, *([item.updated_at] if item.updated_at else [])]
    return history.SessionDates(created_at, max(known))


def _valid_message(message: ImportedMessage, seen: set[str], label: str, report: ImportReport) -> DatedMessage | None:
    if message.source_id in seen:
        report.skip(label, short(message.source_id), "a second message with this id")
        return None
    seen.add(message.source_id)
    try:
        valid = MessageCreate(content=message.content, role=message.role, metadata=message.metadata)
    except ValidationError as exc:
        report.skip(label, short(message.source_id), _reason(exc))
        return None
    return DatedMessage(valid, message.created_at or utc_now(), message.source_id)


async def _store(
    database: Database,
    user_id: ObjectId,
    session_id: ObjectId,
    batch: list[DatedMessage],
    dates: history.SessionDates,
    report: ImportReport,
) -> None:
    added = await history.append_new_messages(database, user_id, session_id, batch, dates.updated_at)
    report.messages.created += added
    report.messages.unchanged += len(batch) - added


def _valid_platform(platform: str) -> bool:
    return re.fullmatch(PLATFORM_PATTERN, platform) is not None


def _reason(exc: ValidationError) -> str:
    """What failed, by field, without the offending value."""
    first = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "value"
    return f"{where}: {first['msg']}"
