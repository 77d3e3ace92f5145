"""The interactive API documentation at /docs, served entirely from this server.

FastAPI's default page loads Swagger UI from a CDN (broken offline, and a third-party script
running on the same origin as the chat UI's tokens) and starts it with an inline script. Here
the Swagger UI files come from an installed package (fastapi-offline ships the Swagger UI
distribution), the page and its start-up script are our files in static/api-docs/, and all of
it is served with the chat UI's security headers, so the same strict Content-Security-Policy
(no inline script, nothing from another origin) holds on /docs too.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.ui import SECURITY_HEADERS

SWAGGER_UI_DIR = Path(str(files("fastapi_offline") / "static"))


class SecuredFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_api_docs(app: FastAPI, directory: Path) -> None:
    """/docs (the page), /docs/app/ (its script), /docs/vendor/ (Swagger UI's files)."""
    page = directory / "index.html"

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> FileResponse:
        return FileResponse(page, media_type="text/html", headers=SECURITY_HEADERS)

    app.mount("/docs/app", SecuredFiles(directory=directory), name="api-docs")
    app.mount("/docs/vendor", SecuredFiles(directory=SWAGGER_UI_DIR), name="swagger-ui")
