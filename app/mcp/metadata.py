"""How an MCP client learns to authenticate at /mcp: RFC 9728 protected resource metadata.

A request to /mcp without valid credentials answers 401 with
`WWW-Authenticate: Bearer resource_metadata="<base>/.well-known/oauth-protected-resource/mcp"`,
as MCP's authorization spec asks, and that document (also at the well-known root) says the
credential is a bearer token in the Authorization header: an API key (`cak_...`, from
`chat login`, the UI or POST /auths/api-keys) or a login's access token. It names no
authorization server, because there is none: MCP clients then show the 401 instead of starting
an OAuth flow, and a person pastes a key into the client's headers.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.auth.principal import READ, WRITE

MCP_PATH = "/mcp"
WELL_KNOWN = "/.well-known/oauth-protected-resource"
# RFC 9728 section 3.1: the metadata of https://host/mcp is at https://host/.well-known/oauth-protected-resource/mcp
METADATA_PATH = WELL_KNOWN + MCP_PATH

INVALID_TOKEN = "The API key or access token is invalid, expired or revoked"

router = APIRouter(include_in_schema=False)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def challenge(request: Request, token_given: bool) -> str:
    """The WWW-Authenticate value of a 401 at /mcp (RFC 6750: an error only when a token was sent)."""
    value = f'Bearer resource_metadata="{_base(request)}{METADATA_PATH}"'
    if token_given:
        value += f', error="invalid_token", error_description="{INVALID_TOKEN}"'
    return value


@router.get(WELL_KNOWN)
@router.get(METADATA_PATH)
async def protected_resource_metadata(request: Request) -> dict[str, Any]:
    base = _base(request)
    return {
        "resource": base + MCP_PATH,
        "resource_name": "Chat server (MCP)",
        "bearer_methods_supported": ["header"],
        "scopes_supported": [READ, WRITE],
        "resource_documentation": base + "/docs",
    }
