"""GET /metrics for Prometheus, served only when METRICS_TOKEN is set, and only to a request
that presents it as a bearer token (Prometheus: `authorization: {credentials: ...}`)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.core.errors import Unauthorized
from app.core.metrics import Metrics

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    expected = request.app.state.settings.metrics_token.get_secret_value()
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized()
    collected: Metrics = request.app.state.metrics
    return Response(generate_latest(collected.registry), media_type=CONTENT_TYPE_LATEST)
