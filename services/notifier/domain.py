"""The notifier's rules, plain Python with no I/O: signatures, the retry policy, the SSRF guard,
endpoint input checks and the JSON body a webhook carries.

Signature: `Orderdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` keyed
with the endpoint's secret; receivers recompute it over the raw bytes and refuse old timestamps.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import orjson
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict

from orderdesk.errors import FieldViolation, InvalidArgument
from orderdesk.parsing import whole_number
from orderdesk.signatures import DEFAULT_TOLERANCE_SECONDS as DEFAULT_TOLERANCE_SECONDS
from orderdesk.signatures import signature as signature
from orderdesk.signatures import signature_header as signature_header
from orderdesk.signatures import verify as verify

SIGNATURE_HEADER = "Orderdesk-Signature"
EVENT_ID_HEADER = "Orderdesk-Event-Id"
EVENT_TYPE_HEADER = "Orderdesk-Event-Type"
SEQUENCE_HEADER = "Orderdesk-Sequence"  # the partner's feed sequence
ORDER_SEQUENCE_HEADER = "Orderdesk-Order-Sequence"  # 1, 2, 3 ... per order: the order's own sequence
SECRET_PREFIX = "whsec_"
MIN_SECRET_LENGTH = 16
MAX_SECRET_LENGTH = 200
MAX_URL_LENGTH = 2000
MAX_EVENT_TYPES = 50


# --- signatures ----------------------------------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# signature, signature_header and verify: one scheme for our webhooks and the carriers' events
# (orderdesk.signatures), re-exported here where the notifier and its tests name them.


# --- the retry policy ----------------------------------------------------------------------------
class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # network error, 5xx or 429: try again after `delay`
    FAILED = "failed"  # another 4xx (or 3xx): the receiver refused it; never retried by itself
    PARKED = "parked"  # retryable, but the last attempt is spent: parked until replayed
    GONE = "gone"  # 410: the endpoint is disabled, nothing else is touched


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    delay: float = 0.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8  # attempts per round, the first included
    base_delay: float = 1.0  # seconds before the 2nd attempt; doubled each time
    max_delay: float = 600.0  # cap of one backoff step
    max_retry_after: float = 3600.0  # a Retry-After longer than this is capped

    def backoff(self, attempt: int) -> float:
        """Delay after the `attempt`-th failed attempt (1-based): base * 2^(attempt-1), capped."""
        return min(self.base_delay * 2 ** max(attempt - 1, 0), self.max_delay)

    def decide(self, status: int | None, attempt: int, retry_after: float | None = None) -> Decision:
        """`status` None means no HTTP answer (connection refused, timeout, TLS ...)."""
        if status is not None and 200 <= status < 300:
            return Decision(Outcome.DELIVERED)
        if status == 410:
            return Decision(Outcome.GONE)
        retryable = status is None or status == 429 or status >= 500
        if not retryable:
            return Decision(Outcome.FAILED)
        if attempt >= self.max_attempts:
            return Decision(Outcome.PARKED)
        if retry_after is not None and status in (429, 503):
            return Decision(Outcome.RETRY, min(max(retry_after, 0.0), self.max_retry_after))
        return Decision(Outcome.RETRY, self.backoff(attempt))


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    seconds = whole_number(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max((when - now).total_seconds(), 0.0)


# --- fair delivery --------------------------------------------------------------------------------
def pick_launches(
    heads: Iterable,
    in_flight: Iterable[tuple[str, str]],
    *,
    room: int,
    per_endpoint: int,
    per_partner: int,
) -> list:
    """Which due heads (mappings with delivery_id, endpoint_id, partner_id; earliest due first) to POST now.

    `in_flight` is the (endpoint_id, partner_id) of each POST under way; `room` how many more may start.
    At most `per_endpoint` POSTs per endpoint and `per_partner` per partner (0: no partner cap) are in
    flight at once, so one partner's slow endpoints (however many it registers) hold only its own slots
    and every other partner's deliveries still start."""
    by_endpoint: dict[str, int] = {}
    by_partner: dict[str, int] = {}
    for endpoint_id, partner_id in in_flight:
        by_endpoint[endpoint_id] = by_endpoint.get(endpoint_id, 0) + 1
        by_partner[partner_id] = by_partner.get(partner_id, 0) + 1
    chosen: list = []
    for head in heads:
        if len(chosen) >= room:
            break
        endpoint_id, partner_id = head["endpoint_id"], head["partner_id"]
        if by_endpoint.get(endpoint_id, 0) >= per_endpoint:
            continue
        if per_partner and by_partner.get(partner_id, 0) >= per_partner:
            continue
        by_endpoint[endpoint_id] = by_endpoint.get(endpoint_id, 0) + 1
        by_partner[partner_id] = by_partner.get(partner_id, 0) + 1
        chosen.append(head)
    return chosen


# --- the SSRF guard ------------------------------------------------------------------------------
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never a target, whatever the allow-list says: link-local (cloud metadata at 169.254.169.254 and
# fd00:ec2::254, AWS ECS 169.254.170.2, instance link-local) and "this network".
NEVER_ALLOWED: tuple[Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "0.0.0.0/8", "::/128", "100.100.100.200/32")
)
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
MIN_ALLOWED_PREFIX = {4: 8, 6: 32}  # an allow-list entry broader than this is "everything": refused


def parse_networks(text: str) -> tuple[Network, ...]:
    """ORDERDESK_WEBHOOKS_ALLOW_NETWORKS: comma-separated networks (127.0.0.0/8, 10.1.2.3/32, ::1/128) that
    webhooks may reach although they are not public (development: the demo's and the tests' receivers).
    Refused (ValueError): a malformed entry, one broader than /8 (IPv4) or /32 (IPv6), one overlapping
    link-local or metadata addresses."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(f"{part!r} is not a network (write e.g. 127.0.0.0/8 or 10.1.2.3/32)") from None
        if network.prefixlen < MIN_ALLOWED_PREFIX[network.version]:
            raise ValueError(
                f"{part} is too broad: at least /{MIN_ALLOWED_PREFIX[network.version]}; "
                "allow the few networks your receivers are on, never everything"
            )
        if any(network.overlaps(n) for n in NEVER_ALLOWED if n.version == network.version):
            raise ValueError(
                f"{part} overlaps link-local or cloud metadata addresses, which are never allowed"
            )
        networks.append(network)
    return tuple(networks)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 destination an IPv6 address stands for: IPv4-mapped, 6to4 (2002::/16), NAT64
    (64:ff9b::/96, 64:ff9b:1::/48), Teredo (the client) or IPv4-compatible (::a.b.c.d)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in n for n in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _why(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    for check, why in (
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    ):
        if check:
            return why
    return ""


def address_refused(address: str, allowed: tuple[Network, ...] = ()) -> str:
    """Why a resolved address may not be a webhook target ("" when it may). An IPv6 address that embeds an
    IPv4 destination (6to4, NAT64, Teredo, mapped) is judged by that destination. `allowed` (the
    development allow-list) lets through addresses in those networks, never link-local or metadata."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    embedded = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    target = embedded or ip
    suffix = f" (embedded in {ip})" if embedded is not None else ""
    if any(target in n for n in NEVER_ALLOWED if n.version == target.version):
        return "link-local" + suffix
    if any(target in n for n in allowed if n.version == target.version):
        return ""
    why = _why(target)
    return why + suffix if why else ""


def refused_targets(addresses: Iterable[str], allowed: tuple[Network, ...] = ()) -> list[tuple[str, str]]:
    """The (address, reason) pairs a target resolves to that are refused; [] means the target is allowed.

    Every address counts: a name resolving to one public and one private address is refused,
    or an attacker's DNS could pick the private one at connect time."""
    return [(a, why) for a in addresses if (why := address_refused(a, allowed))]


def plain_http_allowed(addresses: Iterable[str], allowed: tuple[Network, ...]) -> bool:
    """http:// (not https) only to the development allow-list: every address inside it."""
    addresses = list(addresses)
    return bool(addresses) and all(
        any(ipaddress.ip_address(a.split("%", 1)[0]) in n for n in allowed) for a in addresses
    )


def check_url(url: str) -> tuple[str, int]:
    """An endpoint URL's syntax: http(s), a host, no credentials; returns (host, port). (http is then
    allowed only to the development allow-list: NotifierService.check_target.)"""
    violations = []
    parts = urlsplit(url) if len(url) <= MAX_URL_LENGTH else None
    if parts is None:
        violations.append(FieldViolation("url", f"at most {MAX_URL_LENGTH} characters"))
    elif parts.scheme not in ("http", "https"):
        violations.append(FieldViolation("url", "must be an http:// or https:// URL"))
    elif not parts.hostname:
        violations.append(FieldViolation("url", "must name a host"))
    elif parts.username or parts.password:
        violations.append(
            FieldViolation("url", "must not carry credentials; use the signature to authenticate us")
        )
    elif parts.fragment:
        violations.append(FieldViolation("url", "must not have a #fragment"))
    if violations or parts is None or not parts.hostname:  # (the last two are among the violations)
        raise InvalidArgument("the webhook URL is not usable", violations)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidArgument("the webhook URL is not usable", [FieldViolation("url", "bad port")]) from None
    return parts.hostname, port


# --- endpoint input ------------------------------------------------------------------------------
EVENT_TYPE_PATTERN = re.compile(r"^(\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*))$")


def check_event_types(types: Iterable[str]) -> list[str]:
    """ "order.confirmed", "shipment.*" or "*"; at least one, duplicates dropped."""
    types = list(dict.fromkeys(types))
    violations = [
        FieldViolation(f"event_types[{i}]", "expected '<aggregate>.<event>', '<aggregate>.*' or '*'")
        for i, t in enumerate(types)
        if not EVENT_TYPE_PATTERN.match(t)
    ]
    if not types:
        violations.append(FieldViolation("event_types", "name at least one event type, or '*' for all"))
    if len(types) > MAX_EVENT_TYPES:
        violations.append(FieldViolation("event_types", f"at most {MAX_EVENT_TYPES}"))
    if violations:
        raise InvalidArgument("the event types are not usable", violations)
    return types


def check_secret(secret: str) -> str:
    if not secret:
        return new_secret()
    if (
        not (MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH)
        or not secret.isprintable()
        or " " in secret
    ):
        raise InvalidArgument(
            "the secret is not usable",
            [
                FieldViolation(
                    "secret",
                    f"{MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} printable characters without spaces",
                )
            ],
        )
    return secret


def matches(event_type: str, patterns: Iterable[str]) -> bool:
    aggregate = event_type.split(".", 1)[0]
    return any(p == "*" or p == event_type or p == f"{aggregate}.*" for p in patterns)


# --- what an event means to a partner ------------------------------------------------------------
def partner_of(event) -> str:
    """The partner an event names in its payload (order events always do); "" when it names none."""
    return _named_partner(event, event.WhichOneof("payload"))


def _named_partner(event, kind: str | None) -> str:
    if kind == "order":
        return event.order.order.partner_id
    if kind == "shipment":
        return event.shipment.shipment.partner_id
    if kind == "return":
        return _payload(event).partner_id
    return ""


def feed_partner(event, known: dict[str, str]) -> str:
    """The partner whose feed an event goes to; "" for none (stock events and the like). An order event
    names its partner (and `known`, order id -> partner, learns it for the order's later events);
    shipment and return events go to their order's partner as known, else to the one they name."""
    if not event.order_id:
        return ""
    kind = event.WhichOneof("payload")
    if kind == "order":
        partner = event.order.order.partner_id
        known.setdefault(event.order_id, partner)
        return partner
    return known.get(event.order_id) or _named_partner(event, kind)


def orders_to_look_up(events) -> set[str]:
    """The orders whose partner feed_partner needs from earlier events (those of non-order events)."""
    return {e.order_id for e in events if e.order_id and e.WhichOneof("payload") != "order"}


# --- protobuf -> JSON (the feed bodies) ----------------------------------------------------------------
# Every feed body maps a whole order (or shipment, return) to JSON. protobuf's MessageToDict does it in pure
# Python with half a dozen calls per field, looking each field's kind up again every time; to_dict below
# gives the same dict for the same message from a plan made once per message type, and leaves every
# message with a kind of field it does not plan (enums, floats, bytes, maps, extensions) to MessageToDict.
_PLAIN, _INT64, _MESSAGE, _JSON_STRING, _WELL_KNOWN = range(5)
_REPEATED = 8  # added to a kind: the field is repeated (one code per field, one comparison chain)
# A Timestamp maps to its own ToJsonString, as in MessageToDict (json_format._GenericMessageToJsonObject).
_JSON_STRING_TYPES = frozenset({"google.protobuf.Timestamp"})
_INT64_TYPES = frozenset({FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64})
_PLAIN_TYPES = frozenset(
    {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_BOOL}
)
# By message class: field descriptor (ListFields gives the same objects) -> (name, kind [+ _REPEATED]).
_plans: dict[type, dict[Any, tuple[str, int]] | None] = {}


def to_dict(message, skip: frozenset[str] = frozenset()) -> dict:
    """MessageToDict(message, preserving_proto_field_name=True), the same dict in a fraction of the calls;
    without the fields named in `skip`."""
    try:
        plan = _plans[message.__class__]
    except KeyError:
        plan = _plans[message.__class__] = _plan(message.DESCRIPTOR)
    if plan is None:
        return _message_to_dict(message, skip)
    js: dict = {}
    for field, value in message.ListFields():
        try:
            name, kind = plan[field]
        except KeyError:  # an extension: MessageToDict names it its own way
            return _message_to_dict(message, skip)
        if name in skip:
            continue
        # (list(map(f, value)) rather than a list comprehension: one call less per repeated field)
        if kind == _PLAIN:
            js[name] = value
        elif kind == _MESSAGE:
            js[name] = to_dict(value)
        elif kind == _MESSAGE + _REPEATED:
            js[name] = list(map(to_dict, value))
        elif kind == _JSON_STRING:
            js[name] = _timestamp_json(value)
        elif kind == _PLAIN + _REPEATED:
            js[name] = list(value)
        elif kind == _INT64:
            js[name] = str(value)
        elif kind == _INT64 + _REPEATED:
            js[name] = list(map(str, value))
        elif kind == _JSON_STRING + _REPEATED:
            js[name] = list(map(_timestamp_json, value))
        elif kind == _WELL_KNOWN:  # the other well-known types: their own JSON form
            js[name] = MessageToDict(value, preserving_proto_field_name=True)
        else:
            js[name] = [MessageToDict(v, preserving_proto_field_name=True) for v in value]
    return js


# Timestamp.ToJsonString's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799
_EPOCH = dt.datetime(1970, 1, 1)


def _timestamp_json(timestamp) -> str:
    """Timestamp.ToJsonString (RFC 3339, Z, 0, 3, 6 or 9 fractional digits) formatted here in one call
    instead of four; an invalid one is left to ToJsonString, which refuses it. The date and time of a second
    are kept (an order's events repeat its history's times)."""
    seconds, nanos = timestamp.seconds, timestamp.nanos
    text = _second_texts.get(seconds)
    if text is None:
        if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
            return timestamp.ToJsonString()
        t = _EPOCH + dt.timedelta(seconds=seconds)
        text = f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        if len(_second_texts) >= _SECOND_TEXTS_KEPT:
            _second_texts.clear()
        _second_texts[seconds] = text
    elif not 0 <= nanos < 1_000_000_000:
        return timestamp.ToJsonString()
    if not nanos:
        return f"{text}Z"
    if not nanos % 1_000_000:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if not nanos % 1_000:
        return f"{text}.{nanos // 1_000:06d}Z"
    return f"{text}.{nanos:09d}Z"


_second_texts: dict[int, str] = {}  # seconds since the epoch -> "YYYY-MM-DDTHH:MM:SS"
_SECOND_TEXTS_KEPT = 65536


_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def utc_time(timestamp) -> dt.datetime:
    """timestamp.ToDatetime(dt.UTC) in one call instead of three (an invalid one is left to ToDatetime)."""
    seconds, nanos = timestamp.seconds, timestamp.nanos
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos < 1_000_000_000):
        return timestamp.ToDatetime(dt.UTC)
    return _EPOCH_UTC + dt.timedelta(seconds=seconds, microseconds=nanos // 1_000)


def _message_to_dict(message, skip: frozenset[str]) -> dict:
    if skip:
        copy = type(message)()
        copy.CopyFrom(message)
        for name in skip:
            copy.ClearField(name)
        message = copy
    return MessageToDict(message, preserving_proto_field_name=True)


def _plan(descriptor) -> dict[Any, tuple[str, int]] | None:
    """Field descriptor -> (name, kind [+ _REPEATED]); None for a message to_dict leaves to MessageToDict."""
    if descriptor.full_name.startswith("google.protobuf."):
        return None  # a well-known type: a JSON form of its own
    plan = {}
    for field in descriptor.fields:
        cpp_type = field.cpp_type
        if cpp_type == FieldDescriptor.CPPTYPE_STRING and field.type != FieldDescriptor.TYPE_BYTES:
            kind = _PLAIN
        elif cpp_type in _PLAIN_TYPES:
            kind = _PLAIN
        elif cpp_type in _INT64_TYPES:
            kind = _INT64
        elif cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and not field.message_type.GetOptions().map_entry:
            type_name = field.message_type.full_name
            if type_name in _JSON_STRING_TYPES:
                kind = _JSON_STRING
            else:
                kind = _WELL_KNOWN if type_name.startswith("google.protobuf.") else _MESSAGE
        else:
            return None  # enums, floats, bytes, maps
        plan[field] = (field.name, kind + (_REPEATED if _repeated(field) else 0))
    return plan


def _payload(event):
    kind = event.WhichOneof("payload")
    if not kind:
        return None
    holder = getattr(event, kind)
    payload_field, _aggregates = _holder_fields(holder.DESCRIPTOR)
    return getattr(holder, payload_field) if payload_field else holder


def _repeated(field) -> bool:
    flag = getattr(field, "is_repeated", None)  # newer protobuf; `label` on older ones
    return flag if flag is not None else field.label == field.LABEL_REPEATED


_holders: dict[str, tuple[str, frozenset[str]]] = {}


def _holder_fields(descriptor) -> tuple[str, frozenset[str]]:
    """A payload holder's (OrderEvent, ShipmentEvent, ...) payload field, its first single message field
    ("" when none: the holder is the payload), and its aggregate fields; read once per holder type."""
    try:
        return _holders[descriptor.full_name]
    except KeyError:
        pass
    singles = [f for f in descriptor.fields if f.message_type is not None and not _repeated(f)]
    aggregates = frozenset(f.name for f in singles if f.message_type.name in ("Order", "Shipment", "Return"))
    fields = _holders[descriptor.full_name] = (singles[0].name if singles else "", aggregates)
    return fields


def _parts(event) -> tuple[str | None, Any, Any, dict]:
    """An event's payload kind, holder (OrderEvent ...), aggregate (Order ...; None without a payload) and
    envelope extras: every field of the holder beside the aggregate (OrderEvent.changes,
    OrderEvent.exception ... and whatever is added later), so new facts reach partners unmapped. The
    aggregate is mapped once, under `data`: skipped in the extras (JSON-mapping it is the costly part)."""
    kind = event.WhichOneof("payload")
    if not kind:
        return None, None, None, {}
    holder = getattr(event, kind)
    try:
        payload_field, aggregates = _holders[holder.DESCRIPTOR.full_name]
    except KeyError:  # the first of its type
        payload_field, aggregates = _holder_fields(holder.DESCRIPTOR)
    payload = getattr(holder, payload_field) if payload_field else holder
    return kind, holder, payload, to_dict(holder, skip=aggregates)


def summary(event) -> dict:
    """The few facts a partner needs first for this event type, beside the full `data`."""
    kind, holder, payload, extras = _parts(event)
    return _summary(event, kind, holder, payload, extras)


def _summary(event, kind: str | None, holder, payload, facts: dict) -> dict:
    """summary(): `facts` (the envelope extras) with the event type's own, from _parts(event)."""
    if kind == "order":
        order = payload
        facts["status"] = holder.status
        if holder.previous_status:
            facts["previous_status"] = holder.previous_status
        expected = (
            holder.expected_date
            or order.exception_expected_date
            or order.expected_delivery_date
            or order.requested_delivery_date
        )
        if expected:
            facts["expected_date"] = expected
        if event.type == "order.on_hold" or holder.status == "on_hold":
            facts["reasons"] = [to_dict(r) for r in order.hold_reasons]
    elif kind == "shipment":
        shipment = payload
        facts.update(shipment_id=shipment.shipment_id, status=shipment.status)
        if shipment.carrier:
            facts["carrier"] = shipment.carrier
        if shipment.tracking_number:
            facts["tracking_number"] = shipment.tracking_number
        if shipment.promised_delivery_date:
            facts["promised_delivery_date"] = shipment.promised_delivery_date
        if shipment.delivered_on:
            facts["delivered_on"] = shipment.delivered_on
        if shipment.status == "delivered":
            facts["on_time"] = shipment.on_time
    elif kind == "return":
        ret = payload
        facts.update(rma_id=ret.rma_id, status=ret.status)
        if event.type == "return.refunded" or ret.status == "refunded":
            facts["amount"] = ret.refund_amount
        if ret.kind == "claim":  # return.claim_opened / claim_resolved and after: what kind of claim
            facts["claim_reason"] = ret.claim_reason
        if ret.exchange_order_id:  # return.exchange_created and after: the replacement, the difference
            facts["exchange_order_id"] = ret.exchange_order_id
            for name in ("to_charge", "to_credit"):
                if (value := getattr(ret, name)) not in ("", "0.00"):
                    facts[name] = value
    return facts


def body(event, sequence: int, order_sequence: int, occurred_at: dt.datetime | None = None) -> bytes:
    """The JSON document a webhook POSTs (and the feed serves), mapped generically from the Event envelope,
    so a new event type flows without code changes. Stable key order: the bytes are signed. `occurred_at`:
    the event's time (UTC), when the caller has it already."""
    kind, holder, payload, extras = _parts(event)
    at = occurred_at or utc_time(event.occurred_at)
    if at.tzinfo is not dt.UTC:  # (never from the notifier: its times are UTC)
        occurred = at.isoformat().replace("+00:00", "Z")
    else:  # the same without the calls
        fraction = f".{at.microsecond:06d}" if at.microsecond else ""
        day = f"{at.year:04d}-{at.month:02d}-{at.day:02d}"
        occurred = f"{day}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}{fraction}Z"
    document = {
        "id": event.event_id,
        "type": event.type,
        "sequence": sequence,
        "order_id": event.order_id,
        "order_sequence": order_sequence,
        "occurred_at": occurred,
        "actor": event.actor or None,
        "reason": event.reason or None,
        **_summary(event, kind, holder, payload, extras),
        "data": to_dict(payload) if payload is not None else {},
    }
    # The bytes json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode() gives, for what a
    # body holds (strings, ints, bools, None: no float is reachable from an Event, a test makes sure),
    # at a third of the CPU.
    return orjson.dumps(document)


# --- the replay window (README "Retention") ------------------------------------------------------
def expired_cursor(after: int, head: int, sequences: list[int]) -> int | None:
    """Whether a feed read after `after` missed pruned entries: None when not, else the `after` to continue
    from (just before the oldest entry still kept, or the head when none is).

    `head` is the partner's newest sequence read BEFORE `sequences` (the page read after `after`).
    Sequences are numbered without gaps and only a prefix of a feed is ever pruned, so a page that does not
    start at after + 1, or no page although the head is past `after`, means entries were pruned.
    `after` 0 means "from the oldest kept" and never misses anything."""
    if after <= 0:
        return None
    if sequences:
        return sequences[0] - 1 if sequences[0] > after + 1 else None
    return head if head > after else None


def expired_cursor_message(after: int, resume_after: int, window_days: float) -> str:
    kept = f"the feed keeps {window_days:g} days of events" if window_days else "older events were removed"
    return (
        f"the events after sequence {after} are no longer kept ({kept}): continue with after={resume_after}, "
        f"and read the orders themselves (GET /v1/orders/{{id}}) for what happened before"
    )
