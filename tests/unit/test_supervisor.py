"""make run's supervision: back-off while a process keeps dying, and the crash loop that ends it."""

from __future__ import annotations

import pytest

from devtools.supervisor import CrashLoop, RestartPolicy, Supervisor


def test_restarts_back_off_while_a_process_keeps_dying():
    policy = RestartPolicy(first_delay=1, max_delay=4, loop_crashes=10, loop_window=120)
    delays = [policy.delay_after_crash("orders", now) for now in (0, 1, 2, 3, 4)]
    assert delays == [1, 2, 4, 4, 4]


def test_crashes_long_ago_do_not_count_towards_a_loop():
    policy = RestartPolicy(first_delay=1, loop_crashes=3, loop_window=60)
    assert policy.delay_after_crash("orders", 0) == 1
    assert policy.delay_after_crash("orders", 50) == 2
    assert policy.delay_after_crash("orders", 100) == 2  # the crash at 0 has left the window
    assert policy.delay_after_crash("orders", 101) is None  # three within 60 s: a loop
    assert policy.delay_after_crash("returns", 101) == 1  # each process counts its own


class FakePopen:
    def __init__(self, code=None):
        self.returncode, self.pid = code, 4242


class FakeProcess:
    def __init__(self, alive=True):
        self.popen = FakePopen(None if alive else -9)

    def alive(self):
        return self.popen.returncode is None


class FakeStack:
    def __init__(self):
        self.processes = {"orders": FakeProcess(), "returns": FakeProcess()}
        self.started: list[str] = []

    def start_process(self, name):
        self.started.append(name)
        self.processes[name] = FakeProcess()

    def tail(self, name, lines=40):
        return f"{name}: RuntimeError: cannot listen on 127.0.0.1:15055"


def test_a_dead_process_is_started_again_after_its_delay_and_counted():
    stack, said, now = FakeStack(), [], [0.0]
    supervisor = Supervisor(stack, RestartPolicy(first_delay=1), say=said.append, clock=lambda: now[0])
    stack.processes["returns"] = FakeProcess(alive=False)
    supervisor.check()
    assert stack.started == [] and "returns died (exit status -9)" in said[0]
    assert supervisor.up.labels("returns")._value.get() == 0
    now[0] = 1.0
    supervisor.check()
    assert stack.started == ["returns"]
    assert supervisor.restarts.labels("returns")._value.get() == 1
    assert supervisor.up.labels("returns")._value.get() == 1
    assert supervisor.restarts.labels("orders")._value.get() == 0  # the others were left alone


def test_a_crash_loop_names_the_process_and_why():
    stack, now = FakeStack(), [0.0]
    supervisor = Supervisor(
        stack, RestartPolicy(first_delay=0, loop_crashes=2), say=lambda _: None, clock=lambda: now[0]
    )
    stack.processes["returns"] = FakeProcess(alive=False)
    supervisor.check()
    stack.processes["returns"] = FakeProcess(alive=False)
    with pytest.raises(CrashLoop) as refused:
        supervisor.check()
    assert refused.value.name == "returns" and "cannot listen on 127.0.0.1:15055" in str(refused.value)
