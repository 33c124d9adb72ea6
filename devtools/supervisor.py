"""`make run` as a supervisor: a process of the suite that dies is started again, the others keep serving.

A crash is logged loudly and counted (`orderdesk_supervisor_restarts_total{process}`, and
`orderdesk_supervisor_process_up{process}`, on ORDERDESK_SUPERVISOR_METRICS_PORT, 9109 by
default). Restarts back off (1 s, 2 s, 4 s … 30 s) while a process keeps dying; after
`loop_crashes` crashes within `loop_window` seconds it is a crash loop: the supervisor
gives up, saying which process and the end of its log (why it died), and the suite stops.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


@dataclass
class RestartPolicy:
    """When a process that died is started again, and when its dying is a crash loop. No I/O."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    loop_crashes: int = 5
    loop_window: float = 120.0
    _crashes: dict[str, deque[float]] = field(default_factory=dict)

    def delay_after_crash(self, name: str, now: float) -> float | None:
        """Seconds to wait before starting `name` again, or None when it is in a crash loop."""
        recent = self._crashes.setdefault(name, deque())
        recent.append(now)
        while recent and recent[0] < now - self.loop_window:
            recent.popleft()
        if len(recent) >= self.loop_crashes:
            return None
        return min(self.max_delay, self.first_delay * 2 ** (len(recent) - 1))


class CrashLoop(RuntimeError):
    def __init__(self, name: str, crashes: int, window: float, log_tail: str):
        super().__init__(
            f"{name} died {crashes} times within {window:.0f} s: giving up on it. "
            f"The end of its log:\n{log_tail}"
        )
        self.name = name


class Supervisor:
    """Watches a started devtools.devstack.Stack; `check()` once in a while (the caller's loop)."""

    def __init__(
        self,
        stack,
        policy: RestartPolicy | None = None,
        say: Callable[[str], None] = print,
        metrics_port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stack = stack
        self.policy = policy or RestartPolicy()
        self.say = say
        self.clock = clock
        self.restarts_due: dict[str, float] = {}  # process -> when to start it again
        self.registry = CollectorRegistry()
        self.restarts = Counter(
            "orderdesk_supervisor_restarts",
            "Processes of the suite started again after dying",
            ["process"],
            registry=self.registry,
        )
        self.up = Gauge(
            "orderdesk_supervisor_process_up",
            "1 while a process of the suite runs",
            ["process"],
            registry=self.registry,
        )
        for name in stack.processes:
            self.up.labels(name).set(1)
        if metrics_port:
            start_http_server(metrics_port, addr="127.0.0.1", registry=self.registry)

    def check(self) -> None:
        """Notices processes that died, and starts again those whose back-off has passed.
        Raises CrashLoop when one keeps dying."""
        now = self.clock()
        for name, proc in self.stack.processes.items():
            if name in self.restarts_due or proc.alive():
                continue
            code = proc.popen.returncode if proc.popen is not None else None
            self.up.labels(name).set(0)
            delay = self.policy.delay_after_crash(name, now)
            if delay is None:
                raise CrashLoop(
                    name, self.policy.loop_crashes, self.policy.loop_window, self.stack.tail(name)
                )
            self.say(
                f"!!! {name} died (exit status {code}); starting it again in {delay:.0f} s. "
                f"The end of its log:\n{self.stack.tail(name, 12)}"
            )
            self.restarts_due[name] = now + delay
        for name, due in list(self.restarts_due.items()):
            if due <= now:
                del self.restarts_due[name]
                self.stack.start_process(name)
                self.restarts.labels(name).inc()
                self.up.labels(name).set(1)
                self.say(f"!!! {name} started again (pid {self.stack.processes[name].popen.pid})")

    def run(self, stopping: Callable[[], bool], every: float = 0.5) -> None:
        while not stopping():
            self.check()
            time.sleep(every)
