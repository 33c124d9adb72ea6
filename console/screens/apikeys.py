"""API keys (admin): partners' keys with their name, partner, scopes, creation, last use and expiry; create
one (the secret shown once, on the page that answers the form, never in a URL or a log), revoke one.

The keys live in the gateway's database, which the console never opens: it calls the gateway's gRPC
admin service (orderdesk.v1.ApiKeysService, gateway/keyservice.py) with the desk person as the actor,
recorded as the key's `created_by`. Every route requires MANAGE_API_KEYS.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request

from console import web
from console.i18n import N_
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk.masterdata import SCOPES
from orderdesk.roles import Permission
from orderdesk.v1 import apikeys_pb2

router = APIRouter()
NAV = NavEntry(N_("API keys"), "/api-keys", Permission.MANAGE_API_KEYS, order=95)
MANAGE = Permission.MANAGE_API_KEYS

SCOPE_WORDS = {
    "orders": N_("Orders: place and read the partner's orders"),
    "returns": N_("Returns: request and read returns"),
    "fulfillment": N_("Fulfilment: shipments and tracking (warehouse operators)"),
    "admin": N_("Administration: the desk's routes (master data, reports, receipts)"),
}
REASONS = {
    "required": N_("This is required."),
    "unknown_partner": N_("Choose a partner from the list."),
    "name_taken": N_("This partner has a key of this name already: choose another name or revoke that one."),
    "invalid_time": N_("Enter a date as YYYY-MM-DD, e.g. 2026-11-01."),
    "in_the_past": N_("The expiry must be in the future."),
    "unknown_scope": N_("Choose scopes from the list."),
}
BY_FIELD = {
    "partner_id": N_("Choose a partner from the list."),
    "name": N_("Use 1 to 100 letters, digits, dots, dashes or underscores."),
    "scopes": N_("Choose at least one scope the partner may be given."),
    "expires_at": N_("Enter a date as YYYY-MM-DD, e.g. 2026-11-01."),
}
NOT_SERVED = N_(
    "The gateway's key service is not configured for this console (ORDERDESK_GATEWAY_KEYS_ADDR), "
    "so API keys cannot be shown here."
)
DONE = {"revoked": N_("The key was revoked. It stops working within a second.")}


def _stub(request: Request):
    stub = request.app.state.apikeys
    if stub is None:
        raise web.Forbidden(message=NOT_SERVED)
    return stub


def when(text: str) -> dt.datetime | None:
    """An ISO time from the key store as an aware datetime (for `| datetime`)."""
    if not text:
        return None
    at = dt.datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _field(form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def _listing(request: Request) -> apikeys_pb2.ListApiKeysResponse:
    return await web.call(request, _stub(request).ListApiKeys, apikeys_pb2.ListApiKeysRequest())


@router.get("/api-keys")
async def list_keys(request: Request, done: str = "", desk: Desk = requires(MANAGE)):
    listing = await _listing(request)
    return web.render(
        request,
        "apikeys/list.html",
        {"keys": list(listing.keys), "when": when, "done": DONE.get(done, "")},
    )


def _form(request: Request, listing, values: dict, found: FormErrors, *, status: int = 200):
    return web.render(
        request,
        "apikeys/new.html",
        {
            "partner_options": [(p.partner_id, f"{p.name} ({p.partner_id})") for p in listing.partners],
            "scopes": [(s, SCOPE_WORDS.get(s, s)) for s in SCOPES],
            "values": values,
            "errors": found,
        },
        status=status,
    )


@router.get("/api-keys/new")
async def new_key_form(request: Request, desk: Desk = requires(MANAGE)):
    listing = await _listing(request)
    return _form(request, listing, {"scopes": []}, FormErrors())


@router.post("/api-keys/new")
async def create_key(request: Request, desk: Desk = requires(MANAGE)):
    form = await request.form()
    values: dict = {name: _field(form, name) for name in ("partner_id", "name", "expires_at")}
    values["scopes"] = [s for s in form.getlist("scopes") if isinstance(s, str)]
    try:
        made = await web.call(
            request,
            _stub(request).CreateApiKey,
            apikeys_pb2.CreateApiKeyRequest(
                partner_id=values["partner_id"],
                name=values["name"],
                scopes=values["scopes"],
                expires_at=values["expires_at"],
                actor=desk.actor("API key created in the console"),
            ),
        )
    except web.ServiceRefusal as refused:
        if refused.status != 422:
            raise
        found = FormErrors()
        for path, reason in refused.reasons().items():
            found.fields[path] = REASONS.get(reason) or BY_FIELD.get(path, refused.message)
        if not found:
            found.general = refused.message
        return _form(request, await _listing(request), values, found, status=422)
    response = web.render(
        request, "apikeys/created.html", {"key": made.key, "secret": made.secret, "when": when}
    )
    response.headers["Cache-Control"] = "no-store"  # the secret is on this page only
    return response


@router.post("/api-keys/revoke")
async def revoke_key(request: Request, desk: Desk = requires(MANAGE)):
    form = await request.form()
    await web.call(
        request,
        _stub(request).RevokeApiKey,
        apikeys_pb2.RevokeApiKeyRequest(
            partner_id=_field(form, "partner_id"),
            name=_field(form, "name"),
            actor=desk.actor("API key revoked in the console"),
        ),
    )
    return web.see_other("/api-keys?done=revoked")
