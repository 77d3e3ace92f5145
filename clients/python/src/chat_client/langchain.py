"""A LangChain chat message history kept on the chat server (`pip install 'chat-client[langchain]'`).

    from chat_client.langchain import ChatServerMessageHistory

    history = ChatServerMessageHistory(session_name="support-42", base_url="http://127.0.0.1:8000", api_key="cak_...")

Bound to the session of that name. Reading the history of a name you have no session of
creates nothing; the first messages added create the session in the same request (one
transaction), so a turn that stores nothing leaves no empty session behind. It keeps the messages
it has read and asks only for newer ones (`after_seq`), so reading the history costs one small
request however long the conversation is. Sync methods use a `Client`, the async ones
(`aget_messages`, `aadd_messages`, `aclear`) an `AsyncClient`: native, no threads. Messages
round-trip exactly (see _langchain_convert.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from chat_client._async_client import AsyncClient
from chat_client._client import Client
from chat_client._langchain_convert import from_store, to_store
from chat_client._models import Appended, Message

DEFAULT_PLATFORM = "langchain"


class ChatServerMessageHistory(BaseChatMessageHistory):
    def __init__(
        self,
        session_name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        client: Client | AsyncClient | None = None,
        platform: str = DEFAULT_PLATFORM,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """`client=` reuses a Client or AsyncClient (the other kind is made with the same
        server and credentials when needed); otherwise one is made from `base_url` and
        `api_key` (or `username` and `password`), which default to CHAT_URL, CHAT_API_KEY, ..."""
        self.session_name = session_name
        self.platform = platform
        self.session_metadata = metadata
        self._settings: dict[str, Any] = {
            "base_url": base_url,
            "api_key": api_key,
            "username": username,
            "password": password,
        }
        self._client = client if isinstance(client, Client) else None
        self._async_client = client if isinstance(client, AsyncClient) else None
        if client is not None:
            credentials = client._credentials
            self._settings = {
                "base_url": client.base_url,
                "api_key": credentials.api_key,
                "username": credentials.username,
                "password": credentials.password,
            }
        self._owned: list[Client | AsyncClient] = []
        self._session_id: str | None = None
        self._cache: list[BaseMessage] = []
        self._last_seq = 0

    # What was read, and what is new

    @property
    def session_id(self) -> str | None:
        """The server's id of the bound session, once it has been used."""
        return self._session_id

    def _take(self, stored: Sequence[Message]) -> None:
        for message in stored:
            if message.seq > self._last_seq:
                self._cache.append(from_store(message))
                self._last_seq = message.seq

    def _took_our_own(self, stored: Sequence[Message]) -> None:
        """Our appended messages join the cache when nothing came in between; otherwise the
        next read fetches everything after what we had, ours included."""
        if stored and stored[0].seq == self._last_seq + 1:
            self._take(stored)

    def _forget(self) -> None:
        self._cache, self._last_seq = [], 0

    # Sync

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        session_id = self._find_sync_session()
        if session_id is not None:
            self._take(list(self._sync().messages(session_id, after_seq=self._last_seq)))
        return list(self._cache)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        stored = [to_store(m) for m in messages]  # all converted before anything is sent
        if self._session_id is not None:
            self._took_our_own(self._sync().append_many(self._session_id, stored))
            return
        self._took_our_own(self._bind(self._sync().append_to(self.session_name, stored, **self._creation)))

    def clear(self) -> None:
        session_id = self._find_sync_session()
        if session_id is not None:
            self._sync().clear_messages(session_id)
        self._forget()

    def close(self) -> None:
        for client in self._owned:
            if isinstance(client, Client):
                client.close()

    # Async

    async def aget_messages(self) -> list[BaseMessage]:
        client, session_id = self._async(), await self._find_async_session()
        if session_id is not None:
            self._take([message async for message in client.messages(session_id, after_seq=self._last_seq)])
        return list(self._cache)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        stored = [to_store(m) for m in messages]
        if self._session_id is not None:
            self._took_our_own(await self._async().append_many(self._session_id, stored))
            return
        appended = await self._async().append_to(self.session_name, stored, **self._creation)
        self._took_our_own(self._bind(appended))

    async def aclear(self) -> None:
        session_id = await self._find_async_session()
        if session_id is not None:
            await self._async().clear_messages(session_id)
        self._forget()

    async def aclose(self) -> None:
        for client in self._owned:
            if isinstance(client, AsyncClient):
                await client.close()
        self.close()

    # The clients and the session

    def _sync(self) -> Client:
        if self._client is None:
            self._client = Client(**self._settings)
            self._owned.append(self._client)
        return self._client

    def _async(self) -> AsyncClient:
        if self._async_client is None:
            self._async_client = AsyncClient(**self._settings)
            self._owned.append(self._async_client)
        return self._async_client

    @property
    def _creation(self) -> dict[str, Any]:
        return {"platform": self.platform, "metadata": self.session_metadata}

    def _find_sync_session(self) -> str | None:
        """The bound session; else the session of the name, if there is one (nothing is created:
        the first messages create it, with them)."""
        if self._session_id is None:
            session = self._sync().find_session(self.session_name)
            if session is not None:
                self._session_id = session.id
        return self._session_id

    async def _find_async_session(self) -> str | None:
        if self._session_id is None:
            session = await self._async().find_session(self.session_name)
            if session is not None:
                self._session_id = session.id
        return self._session_id

    def _bind(self, appended: Appended) -> list[Message]:
        self._session_id = appended.session.id
        return appended.items
