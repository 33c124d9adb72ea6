"""Operations routes: health of the backends and the store (readiness), and liveness. No API key."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from orderdesk import asgi


# --- bodies ------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, str] = Field(
        description="per backend: SERVING, NOT_SERVING, UNKNOWN or UNREACHABLE; "
        "'store' is the gateway's own database"
    )


class Live(BaseModel):
    status: Literal["ok"] = "ok"


# --- routes ------------------------------------------------------------------------------
router = APIRouter()


@router.get(
    "/healthz",
    response_model=Health,
    tags=["operations"],
    openapi_extra={"security": []},
    responses={503: {"model": Health, "description": "some backend is not serving"}},
)
async def healthz(request: Request, response: Response):
    healthy, checks = await asgi.readiness(request.app.state)
    response.status_code = 200 if healthy else 503
    return Health(status="ok" if healthy else "degraded", services=checks)


@router.get(
    "/livez",
    tags=["operations"],
    openapi_extra={"security": []},
    response_model=Live,
    summary="This process answers (liveness: no backend is asked)",
)
async def livez() -> Live:
    return Live()
