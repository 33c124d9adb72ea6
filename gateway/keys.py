"""Key management: partners and their API keys in the gateway's store.

The one way in for the `orderdesk keys` and `orderdesk import partners` commands and for the admin
import route, so the clients above never reach into the store or the key hashing themselves.
Partners and keys live in the gateway's own database; nothing else in orderdesk keeps them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.auth import parse_scopes  # "orders,returns" -> ("orders", "returns"); ValueError if unknown
from gateway.store import KeyInfo, PartnerStore
from orderdesk import masterdata
from orderdesk.errors import FieldViolation, InvalidArgument
from orderdesk.masterdata import Partner
from orderdesk.parsing import instant

__all__ = [
    "KeyInfo",
    "NewKey",
    "Partner",
    "check_new_key",
    "create_key",
    "import_partners",
    "list_keys",
    "list_partners",
    "opened",
    "parse_scopes",
    "revoke_keys",
    "rotate_key",
]


KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # it is part of the actor: key:<name>@<partner>


@dataclass(frozen=True)
class NewKey:
    partner_id: str
    name: str
    scopes: tuple[str, ...]
    expires_at: dt.datetime | None


def check_new_key(
    partner_id: str, name: str, scopes: Sequence[str], expires: str, now: dt.datetime
) -> NewKey:
    """A key as asked for (the console's form, the admin service): every bad field named, nothing else
    done. `expires`: YYYY-MM-DD (to the end of that UTC day) or RFC 3339, in the future; "": until revoked."""
    violations = []
    if not partner_id.strip():
        violations.append(FieldViolation("partner_id", "required", "required"))
    if not KEY_NAME.match(name):
        violations.append(
            FieldViolation(
                "name", "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        )
    try:
        chosen = parse_scopes(list(scopes))
    except ValueError as exc:
        chosen = ()
        violations.append(FieldViolation("scopes", str(exc), "unknown_scope"))
    else:
        if not chosen:
            violations.append(FieldViolation("scopes", "at least one scope", "required"))
    until = None
    if expires.strip():
        try:
            until = instant(expires, end=True)
        except ValueError:
            violations.append(
                FieldViolation("expires_at", "a date YYYY-MM-DD or an RFC 3339 time", "invalid_time")
            )
        else:
            if until <= now:
                violations.append(FieldViolation("expires_at", "in the future", "in_the_past"))
    if violations:
        raise InvalidArgument("invalid API key", violations)
    return NewKey(partner_id.strip(), name, chosen, until)


opened = PartnerStore.opened  # the key store at a URL, migrated, closed on leaving


async def import_partners(store: PartnerStore, csv_text: str) -> int:
    """The partners CSV: all rows or none; a bad cell is a domain error naming its row."""
    return await store.import_partners(masterdata.parse("partners", csv_text))


# A new key (`odk_` + 256 random bits), returned only now (the store keeps its HMAC): the store's own
# method, called as `create_key(store, partner_id, name, scopes, ...)` like the functions around it.
create_key = PartnerStore.create_key


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


async def list_partners(store: PartnerStore) -> list[Partner]:
    """Every partner and the scopes its keys may have (its api_key field is empty)."""
    return await store.list_partners()


async def revoke_keys(store: PartnerStore, partner_id: str, name: str) -> int:
    """Deletes the partner's keys of this name; how many there were."""
    return await store.revoke_keys(partner_id, name)
