"""Signed, expiring links to one order's status, for the end customer (issue 16, the console's /status page).

A token is `<order id, base64url>.<expiry, unix seconds>.<HMAC-SHA256, base64url>`; the MAC covers the first
two parts, keyed with ORDERDESK_STATUS_LINK_SECRET (orderdesk.config.StatusLinkSettings), which the gateway
(signing) and the console (verifying) share. `verify` answers the order id of a genuine, unexpired token and
None for anything else (tampered, expired, malformed, signed with another key, no key configured), comparing
MACs in constant time. Plain Python: the time is passed in or read once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac

from orderdesk.config import StatusLinkSettings
from orderdesk.errors import FieldViolation, InvalidArgument, Unavailable

DEFAULT_DAYS = 14
MAX_DAYS = 90
MIN_SECRET_BYTES = 32
MAX_TOKEN_CHARS = 300


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, signed: str) -> str:
    return _b64(hmac.new(secret.encode(), signed.encode("ascii"), hashlib.sha256).digest())


def _usable(secret: str) -> bool:
    return len(secret.encode()) >= MIN_SECRET_BYTES


def sign(order_id: str, expires_at: dt.datetime, secret: str) -> str:
    """The token for `order_id`, valid until `expires_at` (whole seconds)."""
    if not _usable(secret):
        raise Unavailable(
            f"status links are not configured: ORDERDESK_STATUS_LINK_SECRET needs at least {MIN_SECRET_BYTES} bytes"
        )
    signed = f"{_b64(order_id.encode())}.{int(expires_at.timestamp())}"
    return f"{signed}.{_mac(secret, signed)}"


def verify(token: str, *, secret: str | None = None, now: dt.datetime | None = None) -> str | None:
    """The order id of a genuine token that has not expired, else None. `secret` and `now` default to the
    configuration and the current time."""
    secret = StatusLinkSettings.from_env().secret if secret is None else secret
    if not _usable(secret) or not token or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    encoded_id, expiry, mac = parts
    if not hmac.compare_digest(_mac(secret, f"{encoded_id}.{expiry}"), mac):
        return None
    # Genuine from here on (only we can sign): the parts are ours, still read them defensively.
    if not expiry.isdigit():
        return None
    now = now or dt.datetime.now(dt.UTC)
    if now.timestamp() >= int(expiry):
        return None
    try:
        return _unb64(encoded_id).decode("utf-8") or None
    except (binascii.Error, ValueError):
        return None


def expiry(expires_in_days: int | None, now: dt.datetime) -> dt.datetime:
    """When a link made now expires: `expires_in_days` (1 … MAX_DAYS; default DEFAULT_DAYS) from now."""
    days = DEFAULT_DAYS if expires_in_days is None else expires_in_days
    if not 1 <= days <= MAX_DAYS:
        raise InvalidArgument(
            f"expires_in_days must be 1..{MAX_DAYS}",
            [FieldViolation("expires_in_days", f"1 to {MAX_DAYS} days", "out_of_range")],
        )
    return (now + dt.timedelta(days=days)).replace(microsecond=0)


def link(
    order_id: str, expires_in_days: int | None, *, settings: StatusLinkSettings, now: dt.datetime
) -> tuple[str, dt.datetime]:
    """The console's status page URL for the order, and when it stops working."""
    until = expiry(expires_in_days, now)
    return f"{settings.console_url}/status/{sign(order_id, until, settings.secret)}", until
