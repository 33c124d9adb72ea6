"""HTTP client sessions for the tests and the bench, talking to orderdesk's gateway and console.

The servers close a keep-alive connection after it has been idle ORDERDESK_GATEWAY_KEEPALIVE_SECONDS (5 s).
aiohttp keeps idle connections 15 s by default, so a request sent on a connection at the moment the server
closes it fails ("Cannot write to closing transport"), and aiohttp never retries a POST. A client that drops
its idle connections sooner never meets that race: partners are told the same in the README.
"""

from __future__ import annotations

import aiohttp

# Below the servers' idle limit with room for a slow, loaded machine.
IDLE_CONNECTION_SECONDS = 2.0


def client_session(*, total: float = 30, connections: int = 100, **kwargs) -> aiohttp.ClientSession:
    """An aiohttp session that reuses a connection only while the server surely still holds it open;
    `total` is each request's time limit in seconds, `kwargs` go to aiohttp (cookie_jar, headers)."""
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=IDLE_CONNECTION_SECONDS)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=total), **kwargs)
