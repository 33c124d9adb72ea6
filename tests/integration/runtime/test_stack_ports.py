"""The dev/test suite's start-up (devtools/devstack.py) on a crowded machine: a port picked for a process and
taken by another run before the process binds it costs a second start, not the run."""

from __future__ import annotations

import socket
import urllib.request

from devtools.devstack import Stack


def test_a_port_taken_before_its_process_binds_it_is_picked_again(tmp_path):
    stack = Stack(data_dir=tmp_path)
    squatter = socket.socket()  # another run binds the port picked for intake before intake does
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    stack.ports["intake"] = taken
    try:
        stack.start()
        assert stack.ports["intake"] != taken
        assert "intake exited during start-up" not in stack.tail("gateway")
        with urllib.request.urlopen(f"{stack.gateway_url}/healthz", timeout=10) as answer:
            assert answer.status == 200  # every service answers the gateway's health checks, intake too
    finally:
        stack.stop()
        squatter.close()
