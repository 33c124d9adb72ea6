"""`make run` supervises: kill -9 a process under load, it comes back by itself, the others keep serving,
and partners retrying with their idempotency keys lose nothing. A process that cannot bind its port
says what holds it; one that keeps dying is given up, naming itself and why."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import uuid

import aiohttp
import pytest

from devtools.devstack import Stack
from devtools.http import client_session
from devtools.supervisor import CrashLoop, RestartPolicy, Supervisor
from tests.e2e.conftest import KEYS

pytestmark = pytest.mark.e2e


class Watching:
    """A Supervisor checking the stack in a thread, as `make run` does in its foreground loop."""

    def __init__(self, stack: Stack, policy: RestartPolicy):
        self.said: list[str] = []
        self.crash_loop: CrashLoop | None = None
        self.supervisor = Supervisor(stack, policy, say=self.said.append)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.supervisor.run(self._stop.is_set, every=0.1)
        except CrashLoop as exc:
            self.crash_loop = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def restarts(self, name: str) -> float:
        return self.supervisor.restarts.labels(name)._value.get()


@pytest.fixture(scope="module")
async def own_stack(tmp_path_factory):
    """A suite of its own (and its own NATS): this module kills its processes."""
    suite = Stack(data_dir=tmp_path_factory.mktemp("supervised"))
    try:
        await asyncio.to_thread(suite.start)
        await asyncio.to_thread(suite.load_demo_data)
        yield suite
    finally:
        await asyncio.to_thread(suite.stop)


async def _place_until_accepted(session, gateway: str, key: str, stop_after: float = 90) -> tuple[str, int]:
    """A partner's client: the same Idempotency-Key again after any failure, until it is accepted."""
    body = {
        "external_ref": f"PO-{key[:10]}",
        "customer_id": "C0001",
        "payment_terms": "NET30",
        "lines": [{"sku": "BRK-001", "quantity": 1, "unit_price": "31.57"}],
    }
    headers = {"Authorization": f"Bearer {KEYS['shop']}", "Idempotency-Key": key}
    failures = 0
    deadline = asyncio.get_running_loop().time() + stop_after
    while asyncio.get_running_loop().time() < deadline:
        try:
            async with session.post(f"{gateway}/v1/orders", json=body, headers=headers) as resp:
                answer = await resp.json(content_type=None)
                if resp.status in (200, 201):
                    return answer["order_id"], failures
        except (TimeoutError, aiohttp.ClientError):
            pass
        failures += 1
        await asyncio.sleep(0.3)
    raise AssertionError(f"order with key {key} not accepted within {stop_after}s")


async def _ready(stack: Stack, name: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(stack.ready, name):
        assert asyncio.get_running_loop().time() < deadline, f"{name} did not come back:\n{stack.tail(name)}"
        await asyncio.sleep(0.2)


async def test_killed_processes_come_back_and_retrying_partners_lose_nothing(own_stack):
    watching = Watching(own_stack, RestartPolicy(first_delay=0.5))
    gateway = own_stack.gateway_url
    headers = {"Authorization": f"Bearer {KEYS['admin']}"}
    try:
        async with client_session(total=10) as session:
            keys: list[str] = []
            kills_done = asyncio.Event()

            async def partners() -> list[tuple[str, int]]:
                results = []
                while not kills_done.is_set():  # a steady stream of orders for as long as processes die
                    batch = [uuid.uuid4().hex for _ in range(4)]
                    keys.extend(batch)
                    results += await asyncio.gather(
                        *(_place_until_accepted(session, gateway, k) for k in batch)
                    )
                return results

            load = asyncio.create_task(partners())
            for victim in ("returns", "intake", "orders"):
                await asyncio.sleep(1.0)
                pid = own_stack.processes[victim].popen.pid
                await asyncio.to_thread(own_stack.kill, victim, signal.SIGKILL)
                # The gateway keeps answering for the others while the victim is down.
                async with session.get(f"{gateway}/v1/inventory/BRK-001", headers=headers) as resp:
                    assert resp.status == 200
                await _ready(own_stack, victim)
                assert own_stack.processes[victim].popen.pid != pid
                assert watching.restarts(victim) == 1
                assert any(f"{victim} died (exit status -9)" in line for line in watching.said)
            kills_done.set()
            results = await load

            # Every key made exactly one order, and each is there to read.
            order_ids = [order_id for order_id, _ in results]
            assert len(set(order_ids)) == len(keys)
            for key, order_id in zip(keys, order_ids, strict=True):
                again, _ = await _place_until_accepted(session, gateway, key)
                assert again == order_id
                async with session.get(f"{gateway}/v1/orders/{order_id}", headers=headers) as resp:
                    assert resp.status == 200
        assert watching.crash_loop is None
    finally:
        watching.stop()


async def test_a_port_held_by_another_process_is_named_and_a_crash_loop_is_given_up(own_stack):
    watching = Watching(own_stack, RestartPolicy(first_delay=0.2, loop_crashes=3, loop_window=60))
    port = own_stack.ports["notifier"]
    blocker = socket.socket()
    try:
        await asyncio.to_thread(own_stack.kill, "notifier", signal.SIGKILL)
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        deadline = asyncio.get_running_loop().time() + 90
        while watching.crash_loop is None:
            assert asyncio.get_running_loop().time() < deadline, watching.said
            await asyncio.sleep(0.2)
        message = str(watching.crash_loop)
        assert watching.crash_loop.name == "notifier" and "died 3 times" in message
        assert f"cannot listen on 127.0.0.1:{port}" in message and "Held by: pid" in message
        assert watching.restarts("notifier") == 2
        assert watching.restarts("orders") == 0  # nobody else was touched
    finally:
        watching.stop()
        blocker.close()
        # Leave the suite whole for whatever runs next.
        await asyncio.to_thread(own_stack.start_process, "notifier")
        await _ready(own_stack, "notifier")
