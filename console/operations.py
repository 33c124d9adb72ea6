"""Health of the console: /livez (this process answers) and /healthz (readiness: the services and its store)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    checks = await request.app.state.services.health()
    try:
        await request.app.state.store.ping()
        checks["store"] = "SERVING"
    except Exception:
        checks["store"] = "UNREACHABLE"
    healthy = all(v == "SERVING" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "services": checks}, status_code=200 if healthy else 503
    )


@router.get("/livez")
async def livez() -> JSONResponse:
    return JSONResponse({"status": "ok"})
