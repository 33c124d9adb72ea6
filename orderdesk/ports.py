"""Saying who holds a port we could not bind, so a failed start names its cause."""

from __future__ import annotations


def holder_of(port: int) -> str:
    """A description of the process(es) using local `port` ("pid 123 (python3, listening)"),
    or why it cannot be told. Outgoing connections count: an ephemeral port of someone's
    connection blocks a listener just as well."""
    try:
        import psutil

        found = []
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port:
                try:
                    name = psutil.Process(conn.pid).name() if conn.pid else "?"
                except psutil.Error:
                    name = "?"
                state = (
                    "listening"
                    if conn.status == psutil.CONN_LISTEN
                    else f"a connection, {conn.status.lower()}"
                )
                found.append(f"pid {conn.pid or '?'} ({name}, {state})")
        return "; ".join(sorted(set(found))) or "no process found (a socket still closing, TIME_WAIT?)"
    except Exception as exc:  # no permission to read other users' sockets, or no psutil support
        return f"unknown ({type(exc).__name__})"


def bind_error(addr: str, cause: BaseException) -> RuntimeError:
    port = addr.rsplit(":", 1)[-1]
    holder = holder_of(int(port)) if port.isdecimal() else "unknown"
    return RuntimeError(
        f"cannot listen on {addr}: {cause}. Held by: {holder}. Free the port or choose another "
        f"address (ORDERDESK_<SERVICE>_ADDR)"
    )
