"""A client for the chat server's HTTP API: `Client` and `AsyncClient`, typed models, one
exception tree, retries that never store a message twice, and the `chat` command.

    from chat_client import Client

    with Client("http://127.0.0.1:8000", api_key="cak_...") as chat:
        session = chat.session(name="nightly-run", platform="cli")
        chat.append(session, "Hello")
        for message in chat.messages(session):
            print(message.seq, message.role, message.content)

Names are imported on first use (PEP 562): `chat --help`, or a script that needs only
`Client`, does not pay for the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chat_client._async_client import AsyncClient
    from chat_client._client import Client
    from chat_client._exceptions import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationFailed,
        BadRequest,
        ChatError,
        Conflict,
        InternalServerError,
        NotFound,
        PayloadTooLarge,
        PermissionDenied,
        RateLimited,
        Unauthorized,
        Unavailable,
        UnprocessableEntity,
    )
    from chat_client._models import (
        Agent,
        ApiKeyCreated,
        Appended,
        ImportReport,
        Message,
        MessageIn,
        Page,
        Role,
        SearchHit,
        Session,
        User,
    )

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Agent",
    "ApiKeyCreated",
    "Appended",
    "AsyncClient",
    "AuthenticationFailed",
    "BadRequest",
    "ChatError",
    "Client",
    "Conflict",
    "ImportReport",
    "InternalServerError",
    "Message",
    "MessageIn",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Role",
    "SearchHit",
    "Session",
    "Unauthorized",
    "Unavailable",
    "UnprocessableEntity",
    "User",
]
# Where each name lives; the others are exceptions (_exceptions.py).
_HOMES = {"AsyncClient": "_async_client", "Client": "_client"} | dict.fromkeys(
    (
        "Agent",
        "ApiKeyCreated",
        "Appended",
        "ImportReport",
        "Message",
        "MessageIn",
        "Page",
        "Role",
        "SearchHit",
        "Session",
        "User",
    ),
    "_models",
)


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'chat_client' has no attribute {name!r}")
    value = getattr(import_module(f"chat_client.{_HOMES.get(name, '_exceptions')}"), name)
    globals()[name] = value
    return value
