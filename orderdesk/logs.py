"""Structured JSON logs with a correlation id carried through gRPC metadata and events."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")


@contextlib.contextmanager
def correlated(cid: str) -> Iterator[None]:
    """The block runs under the correlation id `cid` (unchanged when it is empty): one request's work done
    inside another's, as when a group commit carries several partners' requests."""
    if not cid:
        yield
        return
    token = correlation_id.set(cid)
    try:
        yield
    finally:
        correlation_id.reset(token)


_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_SECRET_KEYS = ("authorization", "api_key", "apikey", "password", "secret", "token", "pepper")
# Secrets inside text (a message, an exception, a field's value), whatever the field is called: our API keys
# and webhook secrets by their prefixes, bearer tokens, signatures, passwords in URLs, key=value pairs.
_SECRET_PATTERNS = (
    (re.compile(r"\b(odk|whsec)_[A-Za-z0-9_\-]{8,}"), r"\1_***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{4,}"), r"\1 ***"),
    (re.compile(r"(?i)\bv1=[0-9a-f]{16,}"), "v1=***"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s]*):[^@/\s]+@"), r"\1:***@"),
    (
        re.compile(
            r"(?i)(?<![a-z])(password|passwd|secret|token|api[_-]?key|authorization|pepper)(\"?\s*[=:]\s*\"?)[^\s\",;&]+"
        ),
        r"\1\2***",
    ),
)


def redact(text: str) -> str:
    """Text with every secret it carries masked (see _SECRET_PATTERNS)."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        for key, value in getattr(record, "fields", {}).items():
            if any(s in key.lower() for s in _SECRET_KEYS):
                value = "***"
            elif isinstance(value, str):
                value = redact(value)
            entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def setup(component: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("ORDERDESK_LOG_LEVEL", "INFO").upper())
    logging.getLogger("nats").setLevel(logging.WARNING)
    return logging.getLogger(component)


def fields(**values) -> dict:
    """extra= helper: logger.info("order created", extra=fields(order_id=...))."""
    return {"fields": values}


def correlation_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """An HTTP caller's X-Correlation-Id when it is sane, else a fresh one (it ends up in logs and events)."""
    for name, value in headers:
        if name == b"x-correlation-id":
            text = value.decode("latin-1")
            if _CORRELATION_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex
