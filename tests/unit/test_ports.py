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
