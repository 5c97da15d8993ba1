"""Outbound HTTP for webhooks: the SSRF guard, address pinning and HMAC signatures.

The guard resolves the URL's host once (``socket.getaddrinfo``) and refuses
unless *every* address it resolves to is acceptable: not private, loopback,
link-local, multicast, reserved, unspecified or otherwise not globally
routable — unless the address is inside one of the ``allow`` networks.
IPv6 addresses that embed an IPv4 address are judged by it (:func:`refusal`
lists them), so ``::ffff:127.0.0.1``, ``64:ff9b::a00:1`` or ``2002:a9fe:a9fe::``
cannot reach what ``127.0.0.1``, ``10.0.0.1`` or ``169.254.169.254`` could
not. The request then
goes to the checked address itself (the URL carries the IP, the ``Host``
header and, for HTTPS, the TLS server name and certificate check carry the
original host name), so a second DNS answer cannot redirect it (DNS
rebinding). Redirects are not followed, proxies from the environment are
ignored and connections are not kept alive (a kept connection would be
pinned to another host's name).

Nothing here logs; no error message contains a secret.
"""

from __future__ import annotations

import base64
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
    "secret_problem",
    "sign",
    "standard_signature",
    "url_problem",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

SIGNATURE_HEADER = "X-Vibe-Signature"
_STANDARD_PREFIX = "whsec_"


class Refused(Exception):
    """The guard refuses the destination; the message says why and is safe to show."""


class ResolutionFailed(Exception):
    """The host name did not resolve (perhaps only for now)."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-Vibe-Signature`` value: ``sha256=<hex HMAC-SHA256 of body keyed by secret>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` cannot sign deliveries (None if it can): not empty, and a
    ``whsec_`` secret is base64."""
    if not secret:
        return "the secret must not be empty"
    if secret.startswith(_STANDARD_PREFIX):
        try:
            key = base64.b64decode(secret.removeprefix(_STANDARD_PREFIX), validate=True)
        except ValueError:
            return "a secret of the form whsec_... must be base64 after the prefix"
        if not key:
            return "the secret must not be empty"
    return None


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of the Standard Webhooks specification.

    ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``. The key is the
    secret's bytes: decoded from base64 when the secret has the specification's
    form (``whsec_<base64>``), else its UTF-8 encoding (so a receiver verifying
    with a Standard Webhooks library passes it ``base64(secret)``). Raises
    ValueError for a ``whsec_`` secret that is not base64.
    """
    key = (
        base64.b64decode(secret.removeprefix(_STANDARD_PREFIX), validate=True)
        if secret.startswith(_STANDARD_PREFIX)
        else secret.encode()
    )
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


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


#: NAT64's well-known prefix (RFC 6052): ``64:ff9b::a.b.c.d`` is IPv4 ``a.b.c.d``, reached
#: through a translator.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
#: NAT64's local-use prefix (RFC 8215): not globally reachable, and where the IPv4 address
#: sits depends on the operator's prefix length (RFC 6052), so no address in it is trusted.
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
#: The deprecated IPv4-compatible addresses ``::a.b.c.d`` (RFC 4291; ``::`` and ``::1`` aside).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _last_32_bits(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def _stands_for(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address that ``ip`` is only another spelling of, or None.

    IPv4-mapped ``::ffff:a.b.c.d`` (the kernel connects to ``a.b.c.d``) and
    NAT64 ``64:ff9b::a.b.c.d`` (the translator does).
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64_WELL_KNOWN:
        return _last_32_bits(ip)
    return None


def _flagged_kind(ip: IPAddress) -> str | None:
    """The kind ``ipaddress``'s own classification gives ``ip``, or None if it is global."""
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


def _kind(ip: IPAddress) -> str | None:
    """What kind of refused address ``ip`` is ("a loopback address"...), or None.

    An IPv6 address that embeds an IPv4 address is refused with the kind of
    that IPv4 address when it is refused: IPv4-mapped, NAT64 well-known
    prefix and 6to4 (``2002:a.b.c.d::/48``, the 6to4 router at ``a.b.c.d``
    carries the traffic) are otherwise allowed, as their IPv4 address would
    be. Teredo (``2001::/32``: server and client IPv4 inside), NAT64
    local-use and IPv4-compatible addresses are always refused: not
    reachable from the internet at large. Site-local ``fec0::/10``
    (deprecated, but still routed inside some sites) is private.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _flagged_kind(ip)
    stand_in = _stands_for(ip)
    if stand_in is not None:
        return _kind(stand_in)
    if ip.sixtofour is not None:
        return _kind(ip.sixtofour)
    if ip.teredo is not None:
        server, client = ip.teredo
        return _kind(client) or _kind(server) or "a Teredo address"
    if ip in _NAT64_LOCAL_USE:
        return _kind(_last_32_bits(ip)) or "a local-use NAT64 address"
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return _kind(_last_32_bits(ip)) or "a reserved address"
    if ip.is_site_local:
        return "a private address"
    return _flagged_kind(ip)


def refusal(ip: IPAddress, allow: Sequence[Network]) -> str | None:
    """Why the guard refuses ``ip`` (``"a loopback address"``...), or None if it accepts it.

    ``ip`` is accepted if it, or the IPv4 address it is another spelling of
    (IPv4-mapped, NAT64 well-known prefix), is in an ``allow`` network; any
    other IPv6 form (6to4, Teredo, ``fec0::/10``...) is admitted only by an
    IPv6 network that contains it. Otherwise see :func:`_kind`.
    """
    candidates = [ip]
    stand_in = _stands_for(ip)
    if stand_in is not None:
        candidates.append(stand_in)
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
