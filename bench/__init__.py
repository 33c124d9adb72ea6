"""`make bench`: figures for the order path, printed, never asserted (see bench/__main__.py)."""

# The gateway's rate limiter runs (its cost is in the figures) but never refuses: the bench drives one key at
# full speed, far beyond a partner's production limits (gateway.ratelimit).
UNTHROTTLED = {
    "ORDERDESK_RATE_LIMITS": ",".join(f"{c}=1e9/1000000000" for c in ("submit", "read", "feed", "admin"))
}
