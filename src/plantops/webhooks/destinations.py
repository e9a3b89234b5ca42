"""Where webhooks may be delivered: public addresses, and the networks a platform
engineer allows (``plantops serve --webhook-allow-network CIDR``).

A webhook URL is typed by a user of the API; without a rule the server would POST
signed platform events to anything it can reach — the cloud metadata endpoint
(169.254.169.254), the database on localhost, the cluster's internal services (the
server-side request forgery of OWASP's API7:2023). Every address the host name
resolves to is checked right before each request (a name that resolves to a private
address later is caught then); IP literals are also refused at registration.

Pure apart from :func:`resolve` (``socket.getaddrinfo``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from plantops.errors import UserError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``--webhook-allow-network`` values (``10.20.0.0/16``, ``127.0.0.1``, ``::1``)."""
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v.strip(), strict=False))
        except ValueError as exc:
            raise UserError(f"--webhook-allow-network {v!r}: not an IP network ({exc})") from exc
    return tuple(out)


def _why_internal(addr: IPAddress) -> str:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return _why_internal(addr.ipv4_mapped)
    for test, words in (
        (addr.is_loopback, "a loopback address"),
        (addr.is_link_local, "a link-local address (cloud metadata lives there)"),
        (addr.is_private, "a private address"),
        (addr.is_multicast, "a multicast address"),
        (addr.is_unspecified, "the unspecified address"),
        (addr.is_reserved, "a reserved address"),
    ):
        if test:
            return words
    return ""


@dataclass(frozen=True)
class Destinations:
    """The rule: public addresses, plus ``allowed`` networks."""

    allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, addr: IPAddress) -> str:
        """Why ``addr`` may not be sent to, or "" when it may."""
        if any(addr in net for net in self.allowed):
            return ""
        why = _why_internal(addr)
        if not why:
            return ""
        return (
            f"{addr} is {why}; webhooks go to public addresses unless the server allows the"
            " network (plantops serve --webhook-allow-network CIDR)"
        )

    def check_literal(self, url: str) -> None:
        """At registration: a URL whose host is an IP literal the rule refuses."""
        host = urlsplit(url).hostname or ""
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: checked at each delivery, on what it resolves to
        why = self.refusal(addr)
        if why:
            raise UserError(f"webhook URL: {why}")

    def check_resolved(self, addresses: Sequence[str]) -> str:
        """Before a request: "" when every address the name resolved to may be used."""
        if not addresses:
            return "the host name resolved to no address"
        for a in addresses:
            why = self.refusal(ipaddress.ip_address(a.split("%", 1)[0]))
            if why:
                return why
        return ""


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


Resolver = Callable[[str, int], list[str]]
# Tests and benchmarks on one machine: receivers on 127.0.0.0/8 and ::1.
LOOPBACK = Destinations(parse_networks(["127.0.0.0/8", "::1/128"]))
