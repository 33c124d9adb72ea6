"""Key management: partners and their API keys in the gateway's store.

The one way in for the `orderdesk keys` and `orderdesk import partners` commands and for the admin
import route, so the clients above never reach into the store or the key hashing themselves.
Partners and keys live in the gateway's own database; nothing else in orderdesk keeps them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from gateway.auth import parse_scopes  # "orders,returns" -> ("orders", "returns"); ValueError if unknown
from gateway.store import KeyInfo, PartnerStore
from orderdesk import masterdata

__all__ = [
    "KeyInfo",
    "create_key",
    "import_partners",
    "list_keys",
    "opened",
    "parse_scopes",
    "revoke_keys",
    "rotate_key",
]


opened = PartnerStore.opened  # the key store at a URL, migrated, closed on leaving


async def import_partners(store: PartnerStore, csv_text: str) -> int:
    """The partners CSV: all rows or none; a bad cell is a domain error naming its row."""
    return await store.import_partners(masterdata.parse("partners", csv_text))


async def create_key(
    store: PartnerStore,
    partner_id: str,
    name: str,
    scopes: Sequence[str],
    *,
    partner_name: str | None = None,
    expires_at: dt.datetime | None = None,
) -> str:
    """A new key (`odk_` + 256 random bits), returned only now (the store keeps its HMAC). With
    `partner_name`, an unknown partner is created with these scopes: how an operator bootstraps the first
    admin key. `expires_at`: none, until revoked."""
    return await store.create_key(partner_id, name, scopes, partner_name=partner_name, expires_at=expires_at)


async def rotate_key(
    store: PartnerStore,
    partner_id: str,
    name: str,
    overlap: dt.timedelta,
    *,
    expires_at: dt.datetime | None = None,
) -> str:
    """A new key of this name; the old one(s) keep working for `overlap`, then expire."""
    return await store.rotate_key(partner_id, name, overlap, expires_at=expires_at)


async def list_keys(store: PartnerStore, partner_id: str = "") -> list[KeyInfo]:
    """Every key (or one partner's), without the keys themselves: their hash prefix."""
    return await store.list_keys(partner_id)


async def revoke_keys(store: PartnerStore, partner_id: str, name: str) -> int:
    """Deletes the partner's keys of this name; how many there were."""
    return await store.revoke_keys(partner_id, name)
