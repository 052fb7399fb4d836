"""The client's address: the socket peer, or what trusted proxies say it is in X-Forwarded-For.

A peer not in `general_settings.trusted_proxies` is the client, whatever headers it sends (else anyone could
claim to be 127.0.0.1). From a trusted peer, X-Forwarded-For is read right to left and the first address that
is not itself a trusted proxy is the client: the left part of the header is whatever the client wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from keymux.config.access import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(addr: Address, proxies: Iterable[Network]) -> bool:
    return any(addr.version == net.version and addr in net for net in proxies)


def client_address(request: web.Request, proxies: tuple[Network, ...]) -> Address | None:
    """None when the peer is not an IP (a Unix socket) or a trusted proxy forwarded garbage."""
    peer = _parse(request.remote or "")
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h for line in request.headers.getall("X-Forwarded-For", ()) for h in line.split(",")]
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            return None
        if not _trusted(addr, proxies):
            return addr
    return peer if not hops else _parse(hops[0])


def is_loopback(request: web.Request, proxies: tuple[Network, ...]) -> bool:
    addr = client_address(request, proxies)
    return addr is not None and addr.is_loopback
