"""The webhooks' SSRF guard: every spelling of an address is judged by what it reaches.

IPv6 forms that embed or stand for an IPv4 address (IPv4-mapped and
-compatible, NAT64, 6to4, Teredo) are refused with the kind of the IPv4
address they carry; site-local ``fec0::/10`` is private. Hosts are IP
literals, so the resolve path needs no network.
"""

from __future__ import annotations

import ipaddress

import pytest

from vibe_actors.agents.webhooks._http_client import (
    PinnedClient,
    Refused,
    parse_allow,
    refusal,
    resolve,
)


def teredo(server: str, client: str) -> str:
    """A Teredo address (``2001::/32``): server IPv4 in bits 32-64, client IPv4 inverted last."""
    server_bits = int(ipaddress.IPv4Address(server))
    client_bits = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    prefix = 0x2001_0000 << 96
    return str(ipaddress.IPv6Address(prefix | server_bits << 64 | client_bits))


ADDRESSES = [
    # plain IPv4, and what today's guard already refused (kept refused)
    ("8.8.8.8", None),
    ("0.0.0.0", "an unspecified address"),
    ("127.0.0.1", "a loopback address"),
    ("10.0.0.1", "a private address"),
    ("169.254.169.254", "a link-local address"),
    ("224.0.0.1", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("100.64.0.1", "a non-global address"),  # shared address space (carrier-grade NAT)
    # plain IPv6
    ("2606:4700::1111", None),
    ("::", "an unspecified address"),
    ("::1", "a loopback address"),
    ("fe80::1", "a link-local address"),
    ("fc00::1", "a private address"),
    ("ff02::1", "a multicast address"),
    ("100::1", "a reserved address"),
    ("2001:db8::1", "a private address"),
    # site-local (deprecated): private
    ("fec0::1", "a private address"),
    ("feff:ffff::1", "a private address"),
    # IPv4-mapped: judged as the IPv4 address
    ("::ffff:8.8.8.8", None),
    ("::ffff:0.0.0.0", "an unspecified address"),
    ("::ffff:127.0.0.1", "a loopback address"),
    ("::ffff:10.0.0.1", "a private address"),
    ("::ffff:169.254.169.254", "a link-local address"),
    # IPv4-compatible (deprecated): the embedded kind, else reserved
    ("::127.0.0.1", "a loopback address"),
    ("::10.0.0.1", "a private address"),
    ("::8.8.8.8", "a reserved address"),
    # NAT64 well-known prefix: judged as the IPv4 address
    ("64:ff9b::8.8.8.8", None),
    ("64:ff9b::127.0.0.1", "a loopback address"),
    ("64:ff9b::10.0.0.1", "a private address"),
    ("64:ff9b::169.254.169.254", "a link-local address"),
    ("64:ff9b::100.64.0.1", "a non-global address"),
    # NAT64 local-use prefix: the embedded kind, else refused anyway
    ("64:ff9b:1::127.0.0.1", "a loopback address"),
    ("64:ff9b:1::10.0.0.1", "a private address"),
    ("64:ff9b:1::8.8.8.8", "a local-use NAT64 address"),
    # 6to4: judged as the IPv4 address of the 6to4 router
    ("2002:808:808::1", None),
    ("2002:0:0::1", "an unspecified address"),
    ("2002:7f00:1::1", "a loopback address"),
    ("2002:a00:1::1", "a private address"),
    ("2002:c0a8:101::", "a private address"),
    ("2002:a9fe:a9fe::1", "a link-local address"),
    ("2002:e000:1::1", "a multicast address"),
    ("2002:6440:1::1", "a non-global address"),
    # Teredo: the client's kind, else the server's, else refused anyway
    (teredo(server="8.8.8.8", client="127.0.0.1"), "a loopback address"),
    (teredo(server="8.8.8.8", client="10.1.2.3"), "a private address"),
    (teredo(server="169.254.169.254", client="8.8.4.4"), "a link-local address"),
    (teredo(server="8.8.8.8", client="8.8.4.4"), "a Teredo address"),
]


@pytest.mark.parametrize(("address", "kind"), ADDRESSES)
def test_every_address_form_is_refused_like_what_it_reaches(address, kind):
    assert refusal(ipaddress.ip_address(address), ()) == kind


def test_teredo_helper_matches_the_standard_library():
    server, client = ipaddress.IPv6Address(teredo(server="8.8.8.8", client="10.1.2.3")).teredo
    assert (str(server), str(client)) == ("8.8.8.8", "10.1.2.3")


@pytest.mark.parametrize(
    ("address", "allow", "kind"),
    [
        # an IPv6 network admits any form inside it
        ("2002:a00:1::1", ["2002:a00:1::/48"], None),
        ("fec0::1", ["fec0::/10"], None),
        (teredo(server="8.8.8.8", client="10.1.2.3"), ["2001::/32"], None),
        ("64:ff9b:1::10.0.0.1", ["64:ff9b:1::/48"], None),
        # a spelling of an allowed IPv4 address is admitted by the IPv4 network
        ("::ffff:10.9.8.7", ["10.0.0.0/8"], None),
        ("64:ff9b::10.9.8.7", ["10.0.0.0/8"], None),
        # a form that only routes via the IPv4 address is not
        ("2002:a00:1::1", ["10.0.0.0/8"], "a private address"),
        (teredo(server="8.8.8.8", client="10.1.2.3"), ["10.0.0.0/8"], "a private address"),
        ("64:ff9b:1::10.0.0.1", ["10.0.0.0/8"], "a private address"),
        # an allowed network admits nothing outside it
        ("64:ff9b::10.9.8.7", ["10.0.0.0/16"], "a private address"),
    ],
)
def test_the_allow_list_admits_forms_explicitly(address, allow, kind):
    assert refusal(ipaddress.ip_address(address), parse_allow(allow)) == kind


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("2002:7f00:1::1", r"^2002:7f00:1::1 is a loopback address: refused"),
        ("64:ff9b::a9fe:a9fe", r"^64:ff9b::a9fe:a9fe is a link-local address: refused"),
        ("fec0::1", r"^fec0::1 is a private address: refused"),
    ],
)
def test_resolve_refuses_embedded_addresses_given_as_literals(host, message):
    with pytest.raises(Refused, match=message):
        resolve(host, 443, ())
    assert str(resolve(host, 443, parse_allow([f"{host}/128"]))) == host


def test_the_client_checks_a_url_by_the_address_it_reaches():
    client = PinnedClient(allow=(), timeout=1.0, connect_timeout=1.0, user_agent="test")
    try:
        with pytest.raises(Refused, match="a private address"):
            client.check("https://[64:ff9b::a00:1]:8443/hook")
        with pytest.raises(Refused, match="a loopback address"):
            client.check("http://[2002:7f00:1::1]/hook")
        assert str(client.check("https://[2002:808:808::1]/hook")) == "2002:808:808::1"
        assert str(client.check("https://[64:ff9b::808:808]/hook")) == "64:ff9b::808:808"
    finally:
        client.close()
