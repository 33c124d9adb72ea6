"""Health of the console: /livez (this process answers) and /healthz (readiness: the services and its store)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from orderdesk import asgi

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    healthy, checks = await asgi.readiness(request.app.state)
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "services": checks}, status_code=200 if healthy else 503
    )


@router.get("/livez")
async def livez() -> JSONResponse:
    return JSONResponse({"status": "ok"})
