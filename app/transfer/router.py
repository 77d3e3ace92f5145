from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from app.auth.dependencies import CurrentUser, SettingsDep
from app.auth.heavy import heavy_request
from app.chat.dependencies import OwnedSession
from app.chat.schemas import SessionOut
from app.core.db import DatabaseDep
from app.core.responses import ErrorOut, Responses, error_responses
from app.transfer import export
from app.transfer.importer import ImportLimits, run_import
from app.transfer.schemas import ImportRejected, ImportReport
from app.transfer.streamed import json_error, markdown_error, ndjson_error, streamed
from app.transfer.upload import private_temporary_file, receive_upload

router = APIRouter(prefix="/chat", tags=["export and import"], responses=error_responses(400, 401, 403, 408, 503))


EXPORT_SLOT = Depends(heavy_request("export"))


@router.get(
    "/export",
    response_class=StreamingResponse,
    dependencies=[EXPORT_SLOT],
    responses={
        200: {"content": {export.MEDIA_TYPE: {}}, "description": "NDJSON: a header, then sessions and messages"},
        **error_responses(429),
    },
)
async def export_all(user: CurrentUser, database: DatabaseDep) -> StreamingResponse:
    """All your sessions and messages as NDJSON, streamed: a header line with the counts, then
    each session (most recently active first) followed by its messages in seq order, exactly as
    the REST API returns them. `POST /chat/import` takes this file back."""
    now = export.now()
    disposition = f'attachment; filename="{export.export_filename(now)}"'
    return StreamingResponse(
        streamed(export.export_lines(database, user.id, now), ndjson_error),
        media_type=export.MEDIA_TYPE,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


@router.get(
    "/sessions/{session_id}/export",
    response_class=StreamingResponse,
    dependencies=[EXPORT_SLOT],
    responses={
        200: {"content": {"application/json": {}, "text/markdown": {}}, "description": "The conversation"},
        **error_responses(404, 429),
    },
)
async def export_session(
    session: OwnedSession,
    database: DatabaseDep,
    format: Annotated[Literal["json", "md"], Query(description="json, or md for a transcript to read")] = "json",
) -> StreamingResponse:
    """One conversation: `{"session": ..., "messages": [...]}`, or Markdown."""
    out = SessionOut.model_validate(session)
    if format == "md":
        body, media_type = (
            streamed(export.session_markdown(database, out), markdown_error),
            "text/markdown; charset=utf-8",
        )
    else:
        body, media_type = streamed(export.session_json(database, out), json_error), "application/json"
    filename = f"chat-{out.id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type=media_type, headers=headers)


IMPORT_ERRORS: Responses = {
    413: {"description": "The upload is larger than IMPORT_MAX_BYTES", "model": ErrorOut},
    422: {
        "description": (
            "Not a file this server imports, or more conversations (or messages in one) than "
            "IMPORT_MAX_CONVERSATIONS (IMPORT_MAX_MESSAGES_PER_CONVERSATION) allow; nothing was imported"
        ),
        "model": ImportRejected,
    },
    **error_responses(429),
}


@router.post("/import", dependencies=[Depends(heavy_request("import"))], responses=IMPORT_ERRORS)
async def import_history(
    request: Request, user: CurrentUser, database: DatabaseDep, settings: SettingsDep
) -> ImportReport:
    """Import our NDJSON export, or a ChatGPT export (`conversations.json`, or its zip), as the
    body (Content-Type application/x-ndjson, application/json or application/zip; otherwise
    the first bytes decide) or as the `file` field of a multipart form. Idempotent: what is
    already there (by source id) is left unchanged, so a second import creates nothing."""
    limits = ImportLimits.from_settings(settings)
    with private_temporary_file(settings.data_dir) as spool:
        content_type = request.headers.get("content-type", "")
        kind = await receive_upload(request.stream(), content_type, spool, limits.max_bytes)
        return await run_import(database, user.id, spool, kind, limits)
