"""A port we cannot bind is reported with what holds it."""

from __future__ import annotations

import os
import socket

from orderdesk import ports


def test_the_holder_of_a_listening_port_is_named():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        held = ports.holder_of(port)
        assert f"pid {os.getpid()}" in held and "listening" in held
        error = ports.bind_error(f"127.0.0.1:{port}", RuntimeError("Failed to bind"))
        assert f"127.0.0.1:{port}" in str(error) and f"pid {os.getpid()}" in str(error)


def test_a_free_port_has_no_holder():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert "no process found" in ports.holder_of(port)


def test_a_port_for_a_server_is_free_outside_the_ephemeral_range_and_never_handed_out_twice():
    from devtools import localservers

    low, _high = localservers._ephemeral_range()
    picked = [localservers.free_port() for _ in range(200)]
    assert len(set(picked)) == len(picked)
    assert all(localservers._LOWEST_PORT <= port < low for port in picked)
    for port in picked[:20]:  # each one can be listened on now
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
            sock.listen()


def test_a_held_port_is_passed_over(monkeypatch):
    from devtools import localservers

    with socket.socket() as held, socket.socket() as spare:
        held.bind(("127.0.0.1", 0))
        held.listen()
        spare.bind(("127.0.0.1", 0))
        other = spare.getsockname()[1]
        spare.close()  # free again: the next candidate
        candidates = iter([held.getsockname()[1], other])
        monkeypatch.setattr(localservers.random, "randrange", lambda _low, _high: next(candidates))
        monkeypatch.setattr(localservers, "_LOWEST_PORT", 1)
        assert localservers.free_port() == other
