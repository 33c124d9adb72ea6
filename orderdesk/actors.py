"""Who did something, as the one string recorded in status history, change logs, exception
resolutions, notes and returns (`Actor.id` on the wire).

- a desk account (console or CLI): ``desk:<email> (<role>)``, e.g. ``desk:ann@acme.example (approver)``
- a partner's API key:              ``key:<key name>@<partner id>``, e.g. ``key:shop-prod@P-SHOP``
- a carrier or tracking aggregator: ``carrier:<code>``, e.g. ``carrier:dhl`` (its tracking events)
- orderdesk itself:                 ``system``

Records written before this format carry a bare partner id; `parse` reads those as a partner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SYSTEM = "system"

_DESK = re.compile(r"^desk:(?P<email>[^\s()]+) \((?P<role>[a-z]+)\)$")
_KEY = re.compile(r"^key:(?P<name>[^@]+)@(?P<partner>.+)$")
_CARRIER = re.compile(r"^carrier:(?P<code>.+)$")


def desk(email: str, role: str) -> str:
    return f"desk:{email} ({role})"


def api_key(name: str, partner_id: str) -> str:
    return f"key:{name}@{partner_id}"


def carrier(code: str) -> str:
    return f"carrier:{code}"


@dataclass(frozen=True)
class Who:
    kind: str  # desk | key | carrier | system | partner
    name: str  # the e-mail, the key's name, the carrier's code, "system" or the partner id
    role: str = ""  # a desk account's role
    partner_id: str = ""  # a key's partner


def parse(actor: str) -> Who:
    if actor == SYSTEM or not actor:
        return Who("system", SYSTEM)
    if m := _DESK.match(actor):
        return Who("desk", m["email"], role=m["role"])
    if m := _KEY.match(actor):
        return Who("key", m["name"], partner_id=m["partner"])
    if m := _CARRIER.match(actor):
        return Who("carrier", m["code"])
    return Who("partner", actor, partner_id=actor)
