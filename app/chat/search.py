"""Search over a user's messages and session titles, newest first, in keyset pages.

The index (search_message_terms, built behind the writes by app.chat.search_indexer) is read
by the query's rarest stored term, by the per-user counts the indexer keeps, within time
slices that start narrow at the page's position (a first page: at the newest entry the term
can have, as the counts tell) and widen backwards (chat.paging.activity_windows):
SecantusDB reads every index entry a filter matches, so a bounded time range is what keeps a
common word from reading the whole history. The other terms, rarest first, are then looked up
only at the remaining candidates' exact times (index points), and only the page's messages
are read, by `_id`: a search never reads a message it does not show. A page also stops after
SCAN_BUDGET candidates: it may then hold fewer items than asked for, with a cursor to go on,
so no request reads more than that whatever the query.

Message hits order by (created_at, _id), title hits by their session's creation time (and
the title record's _id); both streams are read slice by slice and merged, and the cursor holds
the last position served.
A hit whose session is gone (deleted, its messages not yet) or not the user's is dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId

from app.chat import search_repository as repository
from app.chat.paging import INITIAL_WINDOW, activity_windows
from app.chat.schemas import Page
from app.chat.search_repository import TimeSlice
from app.chat.search_schemas import HitMessage, HitSession, HitSnippet, SearchHit
from app.chat.service import find_owned_session
from app.chat.session_list import EPOCH
from app.chat.terms import EmptyQuery, Query, snippet
from app.core.cursors import CursorCodec
from app.core.db import Database, Document
from app.core.errors import BadRequest, UnprocessableContent
from app.core.types import parse_object_id, utc_now

CURSOR_KIND = "search"
SCAN_BUDGET = 1000
PREFIX_WORDS = 20
RARE_COUNT = 200
MESSAGES_PER_READ = 50
RARE_WINDOW = timedelta(days=36_500)  # a term held by few messages: all of them in one read


@dataclass(frozen=True)
class _Position:
    at: datetime
    id: ObjectId
    width: timedelta


@dataclass(frozen=True)
class _Candidate:
    at: datetime
    id: ObjectId
    document: Document
    is_title: bool

    @property
    def key(self) -> tuple[datetime, ObjectId]:
        return (self.at, self.id)

    @property
    def session_id(self) -> ObjectId:
        session_id: ObjectId = self.document["session_id"]
        return session_id


@dataclass(frozen=True)
class SearchScope:
    user_id: ObjectId
    session_id: ObjectId | None = None  # an owned session (the caller checked)
    platform: str | None = None


async def scope_of(database: Database, user_id: ObjectId, session_id: str | None, platform: str | None) -> SearchScope:
    """The user's whole history, or one session of theirs (404 alike for missing and foreign)."""
    if session_id is None:
        return SearchScope(user_id, platform=platform)
    owned = await find_owned_session(database, session_id, user_id)
    return SearchScope(user_id, session_id=owned["_id"], platform=platform)


async def search(
    database: Database, codec: CursorCodec, scope: SearchScope, q: str, limit: int, cursor: str | None
) -> Page[SearchHit]:
    try:
        query = Query.parse(q)
    except EmptyQuery as exc:
        raise UnprocessableContent(str(exc), loc=("query", "q")) from exc
    fingerprint = _fingerprint(query, scope)
    position = _decode(codec, cursor, fingerprint) if cursor is not None else None
    prefix_words = await _prefix_words(database, scope, query)
    required = list(query.stored_terms)
    if prefix_words is not None and len(prefix_words) == 1:  # the last word can only be this one
        required, prefix_words = [*query.exact, *prefix_words], None
    terms, rare, newest = await _rarest_first(database, scope, required)
    # Titles are not in the counts: they are read by a stored term every matching title holds.
    title_term = terms[0] if terms[0] in query.stored_terms else query.prefix_term
    hits: list[tuple[_Candidate, SearchHit]] = []
    examined = 0
    last: _Candidate | None = None
    width = position.width if position else (RARE_WINDOW if rare else INITIAL_WINDOW)
    # An imported message may be dated in the future: windows from there would take many reads
    # to come back to now (the first is open towards the future, so it holds that one anyway).
    for window in _slices(position, width, min(newest or utc_now(), utc_now())):
        candidates, cut = await _read_slice(database, scope, terms[0], title_term, window.slice, SCAN_BUDGET - examined)
        width = window.width
        top = candidates[0].at if candidates else None
        matched = await _matching(database, scope, query, terms, prefix_words, candidates)
        sessions = await _sessions_of(database, scope, matched)
        page = _PageMessages(database, [c for c in matched if not c.is_title and c.session_id in sessions])
        matched_keys = {c.key for c in matched}
        for candidate in candidates:
            examined += 1
            last = candidate
            if candidate.key not in matched_keys:
                continue
            hit = _hit(candidate, await page.message(candidate, limit + 1 - len(hits)), query, sessions)
            if hit is not None:
                hits.append((candidate, hit))
                if len(hits) > limit:
                    resume = hits[limit - 1][0]
                    return _page(codec, fingerprint, hits[:limit], resume, _next_width(width, top, resume))
        if cut or examined >= SCAN_BUDGET:
            return _page(codec, fingerprint, hits, last, _next_width(width, top, last))
    return _page(codec, fingerprint, hits, None, width)


async def _rarest_first(
    database: Database, scope: SearchScope, terms: list[str]
) -> tuple[list[str], bool, datetime | None]:
    """`terms`, the fewest of the user's messages holding it first (a term never counted
    holds none; ties go to the longer term), whether the first is rare enough (at most
    RARE_COUNT) to read all its entries at once rather than in widening windows, and a time
    none of its entries is newer than (when known)."""
    counted = await repository.term_counts(database.db, scope.user_id, terms)
    ordered = sorted(terms, key=lambda term: (counted.counts.get(term, 0), -len(term)))
    return ordered, counted.counts.get(ordered[0], 0) <= RARE_COUNT, counted.newest_holding(ordered[0])


async def _prefix_words(database: Database, scope: SearchScope, query: Query) -> list[str] | None:
    """The user's words starting with a last word longer than a prefix term, when they are
    few enough to look up (None: nothing to look up, or _hit checks the text)."""
    if query.long_prefix is None:
        return None
    words = await repository.words_starting(database.db, scope.user_id, query.long_prefix, PREFIX_WORDS + 1)
    return words if len(words) <= PREFIX_WORDS else None


async def _matching(
    database: Database,
    scope: SearchScope,
    query: Query,
    terms: list[str],
    prefix_words: list[str] | None,
    candidates: list[_Candidate],
) -> list[_Candidate]:
    """The candidates holding every term of the query: a title by its stored terms; messages
    by index points of each other term at their times, rarest first (so each look-up is over
    what the rarer ones left), then, for a last word longer than a prefix term, of the user's
    words that start with it (up to PREFIX_WORDS of them; past that, _hit checks the text)."""
    titles = [c for c in candidates if c.is_title and query.matches(c.document["terms"])]
    messages = [c for c in candidates if not c.is_title]
    for term in terms[1:]:
        messages = await _holding(database, scope.user_id, [term], messages)
    if prefix_words is not None and messages:
        messages = await _holding(database, scope.user_id, prefix_words, messages)
    return [*titles, *messages]


async def _holding(
    database: Database, user_id: ObjectId, terms: list[str], candidates: list[_Candidate]
) -> list[_Candidate]:
    """The candidates holding one of `terms`."""
    found: set[ObjectId] = set()
    for term in terms:
        remaining = [c for c in candidates if c.id not in found]
        if not remaining:
            break
        found |= await repository.postings_at(database.db, user_id, term, list({c.at for c in remaining}))
    return [c for c in candidates if c.id in found]


class _PageMessages:
    """The stored messages of the matched candidates in scope, read by `_id` as the page
    reaches them, as many at a time as the page still wants, at most MESSAGES_PER_READ (one
    read of 200 messages of 32,000 characters is 6 MB: a command that long can outlast the
    DB timeout on a loaded database)."""

    def __init__(self, database: Database, matched: list[_Candidate]) -> None:
        self.database = database
        self.order = [c.id for c in matched]
        self.position = {message_id: index for index, message_id in enumerate(self.order)}
        self.read: dict[ObjectId, Document | None] = {}

    async def message(self, candidate: _Candidate, wanted: int) -> Document | None:
        start = self.position.get(candidate.id)
        if candidate.is_title or start is None:
            return None
        if candidate.id not in self.read:
            ids = self.order[start : start + min(max(wanted, 1), MESSAGES_PER_READ)]
            found = await repository.messages_by_id(self.database.db, ids)
            self.read.update({message_id: found.get(message_id) for message_id in ids})
        return self.read[candidate.id]


def _next_width(width: timedelta, top: datetime | None, resume: _Candidate | None) -> timedelta:
    """The width the next page starts with: the time from the newest candidate of this page's
    last window (`top`) to where the page ended, when that is less than the window (a dense
    stretch: the next page should not read all of it again to use a page's worth), else the
    window's own."""
    if top is None or resume is None:
        return width
    return max(min(width, top - resume.at), timedelta(milliseconds=1))


@dataclass(frozen=True)
class _Window:
    slice: TimeSlice
    width: timedelta


def _slices(position: _Position | None, width: timedelta, newest: datetime) -> list[_Window]:
    """The rest of the tie the last page ended in, then windows widening into the past; a
    first page's first window is open towards the future and starts `width` before the newest
    entry of the term it reads (or now): a user back after a pause does not have the windows
    widen through the pause into a stretch of their history far wider than a page needs."""
    slices = [_Window(TimeSlice(None, position.at, position.id), width)] if position else []
    until = position.at if position else None
    slices += [_Window(TimeSlice(w.since, w.until), w.width) for w in activity_windows(until, newest, width)]
    return slices


async def _read_slice(
    database: Database, scope: SearchScope, term: str, title_term: str, window: TimeSlice, budget: int
) -> tuple[list[_Candidate], bool]:
    """Messages holding `term` and titles holding `title_term` in the slice, merged newest
    first, and whether the budget cut the slice short (then nothing past the last candidate
    returned was read).
    In one session: the user's entries, the session's kept (SecantusDB plans a filter on a
    field its index lacks as a collection scan, and a second index would double every
    message's index writes)."""
    postings = await repository.postings_in(database.db, scope.user_id, term, window, budget)
    cutoffs = [(postings[-1]["created_at"], postings[-1]["_id"])] if len(postings) >= budget else []
    merged = [
        _Candidate(d["created_at"], d["_id"], d, False)
        for d in postings
        if scope.session_id is None or d["session_id"] == scope.session_id
    ]
    if scope.session_id is None:
        titles = await repository.titles_with_term(database.db, scope.user_id, title_term, window, budget)
        merged += [_Candidate(d["created_at"], d["_id"], d, True) for d in titles]
        if len(titles) >= budget:
            cutoffs.append((titles[-1]["created_at"], titles[-1]["_id"]))
    merged.sort(key=lambda c: c.key, reverse=True)
    if cutoffs:
        cutoff = max(cutoffs)
        merged = [c for c in merged if c.key >= cutoff][:budget]
    return merged, bool(cutoffs)


async def _sessions_of(database: Database, scope: SearchScope, matched: list[_Candidate]) -> dict[ObjectId, Document]:
    """The sessions of the matched messages and titles that are the user's (and of the
    platform asked)."""
    found = await repository.sessions_by_id(database.db, list({c.session_id for c in matched}))
    return {
        session_id: document
        for session_id, document in found.items()
        if document["user_id"] == scope.user_id and scope.platform in (None, document.get("platform"))
    }


def _hit(
    candidate: _Candidate, message: Document | None, query: Query, sessions: dict[ObjectId, Document]
) -> SearchHit | None:
    """The hit of a matched candidate; None when its session is not in scope or its message
    is gone (deleted since it was indexed)."""
    session = sessions.get(candidate.session_id)
    if session is None:
        return None
    hit_session = HitSession(id=session["_id"], title=session["title"], platform=session.get("platform", "api"))
    if candidate.is_title:
        return SearchHit(kind="title", session=hit_session, message=None, snippet=_snippet(session["title"], query))
    if message is None or not query.found_in(message["content"]):
        return None
    found = HitMessage(id=message["_id"], seq=message["seq"], role=message["role"], created_at=message["created_at"])
    return SearchHit(kind="message", session=hit_session, message=found, snippet=_snippet(message["content"], query))


def _snippet(text: str, query: Query) -> HitSnippet:
    found = snippet(text, query)
    return HitSnippet(
        text=found.text,
        highlights=found.highlights,
        truncated_start=found.truncated_start,
        truncated_end=found.truncated_end,
    )


def _page(
    codec: CursorCodec,
    fingerprint: str,
    hits: list[tuple[_Candidate, SearchHit]],
    resume_after: _Candidate | None,
    width: timedelta,
) -> Page[SearchHit]:
    next_cursor = None
    if resume_after is not None:
        values = {
            "t": (resume_after.at - EPOCH) // timedelta(milliseconds=1),
            "id": str(resume_after.id),
            "w": width // timedelta(milliseconds=1),
            "f": fingerprint,
        }
        next_cursor = codec.encode(CURSOR_KIND, values)
    return Page(items=[hit for _, hit in hits], next_cursor=next_cursor)


def _fingerprint(query: Query, scope: SearchScope) -> str:
    """Ties a cursor to its query and filters: one minted for another search is a 400."""
    text = repr((query.exact, query.prefix, str(scope.session_id), scope.platform))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _decode(codec: CursorCodec, cursor: str, fingerprint: str) -> _Position:
    values = codec.decode(CURSOR_KIND, cursor)
    if values.get("f") != fingerprint:
        raise BadRequest("Invalid cursor: it belongs to another search")
    try:
        return _Position(
            at=EPOCH + timedelta(milliseconds=values["t"]),
            id=parse_object_id(values["id"]),
            width=max(timedelta(milliseconds=values["w"]), timedelta(milliseconds=1)),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BadRequest("Invalid cursor") from exc
