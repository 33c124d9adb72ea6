"""The gateway's API-key admin service over gRPC (orderdesk.v1.ApiKeysService), for the desk console.

Partners' keys live in the gateway's own database; the console must not open it. So the gateway process
serves this small gRPC service beside its REST port, on ORDERDESK_GATEWAY_KEYS_ADDR, over the same store
(gateway.keys) the CLI uses: the console calls it like every service it talks to, the desk person in
`actor` (recorded as the key's `created_by`), and the Kubernetes NetworkPolicy lets only the console reach
that port. A revoked key stops at once in this process (its cache is cleared) and within the cache's TTL
(1 s) in any other gateway process.
"""

from __future__ import annotations

import logging

import grpc

from gateway import keys
from gateway.auth import KeyCache
from gateway.store import KeyInfo, PartnerStore
from orderdesk import clock, errors, ports, tls
from orderdesk.runtime import Authorize, ErrorsAndMetrics
from orderdesk.v1 import apikeys_pb2, apikeys_pb2_grpc

log = logging.getLogger("gateway.keys")


def key_to_proto(key: KeyInfo, partner_names: dict[str, str]) -> apikeys_pb2.ApiKey:
    return apikeys_pb2.ApiKey(
        partner_id=key.partner_id,
        name=key.name,
        scopes=list(key.scopes),
        source=key.source,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        created_by=key.created_by,
        hash_prefix=key.hash_prefix,
        partner_name=partner_names.get(key.partner_id, ""),
    )


class ApiKeysServicer(apikeys_pb2_grpc.ApiKeysServiceServicer):
    def __init__(self, store: PartnerStore, cache: KeyCache):
        self.store = store
        self.cache = cache

    async def _names(self) -> dict[str, str]:
        return {p.partner_id: p.name for p in await keys.list_partners(self.store)}

    async def ListApiKeys(self, request, context):
        partners = await keys.list_partners(self.store)
        names = {p.partner_id: p.name for p in partners}
        listed = await keys.list_keys(self.store, request.partner_id)
        return apikeys_pb2.ListApiKeysResponse(
            keys=[key_to_proto(k, names) for k in listed],
            partners=[
                apikeys_pb2.Partner(partner_id=p.partner_id, name=p.name, scopes=list(p.scopes))
                for p in partners
            ],
        )

    async def CreateApiKey(self, request, context):
        asked = keys.check_new_key(
            request.partner_id, request.name, list(request.scopes), request.expires_at, clock.now()
        )
        names = await self._names()
        if asked.partner_id not in names:
            raise errors.InvalidArgument(
                f"unknown partner {asked.partner_id!r}",
                [errors.FieldViolation("partner_id", "no partner with this id", "unknown_partner")],
            )
        taken = [k for k in await keys.list_keys(self.store, asked.partner_id) if k.name == asked.name]
        if taken:
            raise errors.InvalidArgument(
                f"partner {asked.partner_id} has a key named {asked.name!r} already",
                [errors.FieldViolation("name", "taken by another key of this partner", "name_taken")],
            )
        secret = await keys.create_key(
            self.store,
            asked.partner_id,
            asked.name,
            asked.scopes,
            expires_at=asked.expires_at,
            source="console",
            created_by=request.actor.id,
        )
        made = next(k for k in await keys.list_keys(self.store, asked.partner_id) if k.name == asked.name)
        log.info("API key created: %s@%s by %s", asked.name, asked.partner_id, request.actor.id)
        return apikeys_pb2.CreatedApiKey(key=key_to_proto(made, names), secret=secret)

    async def RevokeApiKey(self, request, context):
        revoked = await keys.revoke_keys(self.store, request.partner_id, request.name)
        if not revoked:
            raise errors.NotFound(f"partner {request.partner_id} has no key named {request.name!r}")
        self.cache.clear()  # here at once; other gateway processes within the cache's TTL
        log.info("API key revoked: %s@%s by %s", request.name, request.partner_id, request.actor.id)
        return apikeys_pb2.RevokeApiKeyResponse(revoked=revoked)


async def serve(
    addr: str, store: PartnerStore, cache: KeyCache, tls_settings: tls.TlsSettings | None = None
) -> grpc.aio.Server:
    """The service started on `addr` (host:port), under mTLS when `tls_settings` has it (only the console's
    identity may call it: orderdesk/access.py); the caller stops it."""
    tls_settings = tls_settings or tls.TlsSettings()
    server = grpc.aio.server(
        interceptors=[Authorize("gateway", tls_settings), ErrorsAndMetrics("gateway")],
        options=[("grpc.so_reuseport", 0)],
    )
    apikeys_pb2_grpc.add_ApiKeysServiceServicer_to_server(ApiKeysServicer(store, cache), server)
    try:
        tls.add_port(server, addr, tls_settings)
    except RuntimeError as exc:
        raise ports.bind_error(addr, exc) from exc
    await server.start()
    log.info("API-key admin service listening", extra={"addr": addr})
    return server
