"""Outbound HTTP for webhooks: the SSRF guard, address pinning and HMAC signatures.

The guard resolves the URL's host once (``socket.getaddrinfo``) and refuses
unless *every* address it resolves to is acceptable: not private, loopback,
link-local, multicast, reserved, unspecified or otherwise not globally
routable (IPv4-mapped IPv6 addresses are judged as their IPv4 address) —
unless the address is inside one of the ``allow`` networks. The request then
goes to the checked address itself (the URL carries the IP, the ``Host``
header and, for HTTPS, the TLS server name and certificate check carry the
original host name), so a second DNS answer cannot redirect it (DNS
rebinding). Redirects are not followed, proxies from the environment are
ignored and connections are not kept alive (a kept connection would be
pinned to another host's name).

Nothing here logs; no error message contains a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

__all__ = [
    "SIGNATURE_HEADER",
    "PinnedClient",
    "Refused",
    "ResolutionFailed",
    "parse_allow",
    "refusal",
    "resolve",
    "sign",
    "url_problem",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

SIGNATURE_HEADER = "X-Vibe-Signature"


class Refused(Exception):
    """The guard refuses the destination; the message says why and is safe to show."""


class ResolutionFailed(Exception):
    """The host name did not resolve (perhaps only for now)."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-Vibe-Signature`` value: ``sha256=<hex HMAC-SHA256 of body keyed by secret>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_allow(entries: Iterable[str]) -> tuple[Network, ...]:
    """Networks from CIDRs or single addresses; raises ValueError naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"allow: {entry!r} is not an address or CIDR network") from exc
    return tuple(networks)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook (None if it can): http(s), a host, no credentials."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        return f"invalid URL: {exc}"
    if parsed.scheme not in ("http", "https"):
        return "the URL must start with http:// or https://"
    if not parsed.raw_host:
        return "the URL has no host"
    if parsed.userinfo:
        return "the URL must not carry credentials (the secret signs each delivery)"
    return None


def _kind(ip: IPAddress) -> str | None:
    """What kind of refused address ``ip`` is ("a loopback address"...), or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _kind(ip.ipv4_mapped)
    for kind, flag in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a reserved", ip.is_reserved),
        ("a private", ip.is_private),
        ("a non-global", not ip.is_global),
    ):
        if flag:
            return f"{kind} address"
    return None


def refusal(ip: IPAddress, allow: Sequence[Network]) -> str | None:
    """Why the guard refuses ``ip`` (``"a loopback address"``...), or None if it accepts it."""
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    if any(candidate in network for candidate in candidates for network in allow):
        return None
    return _kind(ip)


def resolve(
    host: str, port: int, allow: Sequence[Network], resolver: Resolver = socket.getaddrinfo
) -> IPAddress:
    """The address to connect to for ``host``: every address it resolves to must pass.

    Raises :class:`Refused` or :class:`ResolutionFailed`.
    """
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ResolutionFailed(f"cannot resolve {host}: {exc}") from exc
    addresses = list(
        dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos)
    )
    if not addresses:
        raise ResolutionFailed(f"cannot resolve {host}: no address")
    for ip in addresses:
        reason = refusal(ip, allow)
        if reason is not None:
            what = f"{ip} is {reason}" if host == str(ip) else f"{host} resolves to {ip}, {reason}"
            raise Refused(f"{what}: refused (list it in the webhooks config 'allow' to permit it)")
    return addresses[0]


class PinnedClient:
    """POSTs to checked, pinned addresses. One per thread (it wraps an ``httpx.Client``)."""

    def __init__(
        self,
        *,
        allow: Sequence[Network],
        timeout: float,
        connect_timeout: float,
        user_agent: str,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        self._allow = tuple(allow)
        self._resolver = resolver
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": user_agent},
        )

    def close(self) -> None:
        self._client.close()

    def check(self, url: str) -> IPAddress:
        """Resolve and check ``url``'s host; raises :class:`Refused` or :class:`ResolutionFailed`."""
        target = httpx.URL(url)
        port = target.port or (443 if target.scheme == "https" else 80)
        return resolve(target.raw_host.decode("ascii"), port, self._allow, self._resolver)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST ``body`` to ``url`` at its checked address; returns the HTTP status.

        The response body is not read. Raises :class:`Refused`,
        :class:`ResolutionFailed` or ``httpx.HTTPError``.
        """
        target = httpx.URL(url)
        ip = self.check(url)
        host = target.raw_host.decode("ascii")
        extensions = {"sni_hostname": host} if target.scheme == "https" else {}
        request = self._client.build_request(
            "POST",
            target.copy_with(host=str(ip)),
            content=body,
            headers={**headers, "Host": target.netloc.decode("ascii")},
            extensions=extensions,
        )
        response = self._client.send(request, stream=True)
        response.close()
        return response.status_code
