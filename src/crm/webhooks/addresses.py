"""Where a webhook may be sent: http(s) URLs of hosts with public addresses only.

Checked when a subscription is made or changed (a 422 naming `url`) and again before every
attempt, because DNS can change after the check. The attempt then connects to the address
that passed, not to whatever a second lookup would answer (DNS rebinding): the request goes to
the IP with the original Host header and, for https, the original name for SNI and the
certificate check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_RESOLVE_TIMEOUT = 5.0


class Refused(Exception):
    """The URL may not be sent to; the message says why (it is shown to admins)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL pinned to the address that passed the check."""

    url: httpx.URL  # the IP in place of the host name
    host_header: str
    sni_hostname: str | None  # https only


def shape(url: str) -> httpx.URL:
    """The URL parsed, if it is an absolute http(s) URL with a host (else Refused)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise Refused("is not a URL") from None
    if parsed.scheme not in {"http", "https"}:
        raise Refused("must be an http:// or https:// URL")
    if not parsed.host:
        raise Refused("has no host")
    if parsed.userinfo:
        raise Refused("may not carry a user name or password")
    return parsed


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be sent to, or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    )
    kind = next((kind for kind, applies in kinds if applies), None)
    if kind is None:
        return None
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, port: int) -> list[IPAddress]:
    if _is_literal(host):
        return [ipaddress.ip_address(host)]
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise Refused(f"host {host} does not resolve ({exc or 'timed out'})") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused(f"host {host} has no address")
    return addresses


async def check(url: str, *, allow_private: bool) -> Target:
    """The URL pinned to a checked address; Refused if any address of its host is not public.

    Any, not all: a name answering both a public and a private address would otherwise let
    the connection land on the private one.
    """
    parsed = shape(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve(parsed.host, port)
    if not allow_private:
        literal = _is_literal(parsed.host)
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise Refused(
                    f"{parsed.host} is {reason}" if literal else f"{parsed.host} resolves to {address}, {reason}"
                )
    address = addresses[0]
    host_header = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
    if ":" in parsed.host:  # an IPv6 literal keeps its brackets in Host
        host_header = f"[{parsed.host}]" if parsed.port is None else f"[{parsed.host}]:{parsed.port}"
    return Target(
        url=parsed.copy_with(host=str(address)),
        host_header=host_header,
        sni_hostname=parsed.host if parsed.scheme == "https" else None,
    )
