"""A client for the chat server's HTTP API: `Client` and `AsyncClient`, typed models, one
exception tree, retries that never store a message twice, and the `chat` command.

    from chat_client import Client

    with Client("http://127.0.0.1:8000", api_key="cak_...") as chat:
        session = chat.session(name="nightly-run", platform="cli")
        chat.append(session, "Hello")
        for message in chat.messages(session):
            print(message.seq, message.role, message.content)
"""

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
from chat_client._models import Agent, ImportReport, Message, MessageIn, Page, Role, Session, User

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "Agent",
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
    "Session",
    "Unauthorized",
    "Unavailable",
    "UnprocessableEntity",
    "User",
]
