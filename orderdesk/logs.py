"""Structured JSON logs with a correlation id carried through gRPC metadata and events."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="")

_SECRET_KEYS = ("authorization", "api_key", "apikey", "password", "secret", "token")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            entry["correlation_id"] = cid
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = "***" if any(s in key.lower() for s in _SECRET_KEYS) else value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
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
