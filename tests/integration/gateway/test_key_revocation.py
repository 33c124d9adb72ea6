"""Revocation reaches every replica within a second: two gateway apps (uvicorn each) on one key database,
both serving a key from their caches; the key is revoked through the store (as `orderdesk keys revoke`
does); within a second both answer 401."""

from __future__ import annotations

import asyncio
import time

from gateway.auth import KeyCache
from gateway.store import PartnerStore


async def test_a_revoked_key_stops_on_every_replica_within_a_second(start_gateway):
    replicas = [await start_gateway(key_cache=KeyCache()) for _ in range(2)]  # the production cache
    store = await PartnerStore.open(replicas[0].settings.database_url)
    try:
        key = await store.create_key("P-SHOP", "erp", ["orders"])
        for gw in replicas:  # warm both caches
            for _ in range(3):
                status, _, _ = await gw.call("GET", "/v1/orders?limit=1", key)
                assert status == 200
        assert await store.revoke_keys("P-SHOP", "erp") == 1
        revoked_at = time.monotonic()
        stopped: dict[int, float] = {}
        while len(stopped) < len(replicas) and time.monotonic() - revoked_at < 3:
            for n, gw in enumerate(replicas):
                if n not in stopped:
                    status, _, _ = await gw.call("GET", "/v1/orders?limit=1", key)
                    if status == 401:
                        stopped[n] = time.monotonic() - revoked_at
            await asyncio.sleep(0.05)
        assert sorted(stopped) == [0, 1], stopped
        assert max(stopped.values()) <= 1.2, stopped  # one second of cache, plus the request itself
        # ... and it stays stopped.
        for gw in replicas:
            status, body, _ = await gw.call("GET", "/v1/orders?limit=1", key)
            assert status == 401 and body["type"].endswith("/unauthenticated")
    finally:
        await store.close()
