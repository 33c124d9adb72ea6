"""When orders surge, allocation waits and then serves the backlog by priority (plain Python).

While more than `rate` orders a second arrive, the allocator holds off, at most `max_defer`
seconds in a row (then it runs one pass and may hold off again). Two things come of it:
the order intake gets the machine while the surge lasts, and scarce stock goes to the
highest priorities among everything that arrived, not to whichever order came first
(the allocator always takes the awaiting orders highest priority first).
ORDERDESK_ALLOCATOR_SURGE_RATE (orders/s, default 100; 0: never wait) and
ORDERDESK_ALLOCATOR_SURGE_MAX_DEFER_SECONDS (default 10) set it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping


class SurgeGate:
    def __init__(self, rate: float, max_defer: float, window: float = 1.0):
        self.rate = rate
        self.max_defer = max_defer
        self.window = window
        self._arrivals: deque[tuple[float, int]] = deque()
        self._count = 0
        self._holding_since: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SurgeGate:
        def number(name: str, default: str) -> float:
            text = environ.get(name) or default
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if not 0 <= value <= 1_000_000:
                raise ValueError(f"{name} must be a non-negative number, not {text!r}")
            return value

        return cls(
            number("ORDERDESK_ALLOCATOR_SURGE_RATE", "100"),
            number("ORDERDESK_ALLOCATOR_SURGE_MAX_DEFER_SECONDS", "10"),
        )

    def arrived(self, orders: int, now: float) -> None:
        self._arrivals.append((now, orders))
        self._count += orders
        self._forget(now)

    def _forget(self, now: float) -> None:
        while self._arrivals and self._arrivals[0][0] <= now - self.window:
            self._count -= self._arrivals.popleft()[1]

    def surging(self, now: float) -> bool:
        self._forget(now)
        return self.rate > 0 and self._count / self.window > self.rate

    def hold(self, now: float) -> bool:
        """Whether the allocator should wait now instead of running a pass."""
        if not self.surging(now):
            self._holding_since = None
            return False
        if self._holding_since is None:
            self._holding_since = now
        if now - self._holding_since >= self.max_defer:
            self._holding_since = None  # one pass now; the next surge second may hold again
            return False
        return True
