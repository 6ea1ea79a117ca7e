"""ProxyHeadersMiddleware accepts what Uvicorn's proxy headers accept, with the same results.

Uvicorn's own proxy-header test cases, re-expressed against asgi_kit where
the behaviour overlaps: the same ``trusted_hosts`` spellings (addresses,
networks, ``"*"``, literals such as host names and Unix socket paths), the
same client for well-formed chains, and the same treatment of empty
``X-Forwarded-For`` entries (an empty hop is an untrusted hop without an
address: the client stays the peer).  Where Uvicorn would put a
non-address into ``scope["client"]`` (``"1.2.3.4:notaport"``), asgi_kit
leaves the peer; those rows say so.
"""

from __future__ import annotations

from typing import Any

import pytest

from asgi_kit import ProxyHeadersMiddleware

from ._support.asgi import call_http, http_scope, websocket_scope

PEER = ("127.0.0.1", 123)

NOTHING: list[str] = []
EVERYTHING = "*"
EVERYTHING_LIST = ["*"]
IPV4_ADDRESSES = "127.0.0.1, 10.0.0.1"
IPV4_NETWORKS = ["127.0.0.0/8", "10.0.0.0/8"]
IPV6_ADDRESSES = [
    "2001:db8::",
    "2001:0db8:0001:0000:0000:0ab9:C0A8:0102",
    "2001:db8:3333:4444:5555:6666:1.2.3.4",  # an embedded IPv4 address
    "::11.22.33.44",
]
IPV6_NETWORKS = "2001:db8:abcd:0012::0/64"
LITERALS = "some-literal , unix:///foo/bar  ,  /foo/bar, garba*gewith*"

IPV4_PEERS = [
    "127.0.0.0",
    "127.0.0.1",
    "127.1.1.1",
    "127.255.255.255",
    "10.0.0.0",
    "10.0.0.1",
    "10.1.1.1",
    "10.255.255.255",
    "192.168.0.0",
    "192.168.0.1",
    "1.1.1.1",
]
IPV6_PEERS = [
    "2001:db8::",
    "2001:db8:abcd:0012::0",
    "2001:db8:abcd:0012::1:1",
    "::",
    "::1",
    "2001:db8:3333:4444:5555:6666:102:304",  # = ...:1.2.3.4
    "::b16:212c",  # = ::11.22.33.44
    "a:b:c:d::",
    "::a:b:c:d",
]
LITERAL_PEERS = [
    "some-literal",
    "unix:///foo/bar",
    "/foo/bar",
    "*",
    "another-literal",
    "unix:///another/path",
    "/another/path",
    "",
]
TRUSTED = {
    "nothing": (NOTHING, set()),
    "everything": (EVERYTHING, set(IPV4_PEERS + IPV6_PEERS + LITERAL_PEERS)),
    "everything-list": (EVERYTHING_LIST, set(IPV4_PEERS + IPV6_PEERS + LITERAL_PEERS)),
    "ipv4-addresses": (IPV4_ADDRESSES, {"127.0.0.1", "10.0.0.1"}),
    "ipv6-addresses": (
        IPV6_ADDRESSES,
        {"2001:db8::", "2001:db8:3333:4444:5555:6666:102:304", "::b16:212c"},
    ),
    "ipv4-networks": (
        IPV4_NETWORKS,
        {p for p in IPV4_PEERS if p.startswith(("127.", "10."))},
    ),
    "ipv6-networks": (IPV6_NETWORKS, {"2001:db8:abcd:0012::0", "2001:db8:abcd:0012::1:1"}),
    "literals": (LITERALS, {"some-literal", "unix:///foo/bar", "/foo/bar"}),
}


async def observed(
    trusted_hosts: Any,
    headers: list[tuple[bytes, bytes]] | dict[str, str],
    client: tuple[str, int] | None = PEER,
) -> str:
    """``scheme://host:port`` as the app sees it (IPv6 hosts in brackets)."""
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = ProxyHeadersMiddleware(app, trusted_hosts=trusted_hosts)
    scope = http_scope("GET", "/", client=client)
    scope["headers"] = (
        [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
        if isinstance(headers, dict)
        else headers
    )
    await call_http(middleware, scope=scope)
    if seen["client"] is None:
        return f"{seen['scheme']}://NONE"
    host, port = seen["client"]
    host = f"[{host}]" if ":" in host else host
    return f"{seen['scheme']}://{host}:{port}"


@pytest.mark.parametrize("name", list(TRUSTED))
@pytest.mark.parametrize("peer", IPV4_PEERS + IPV6_PEERS + LITERAL_PEERS)
async def test_which_peers_are_trusted(name: str, peer: str) -> None:
    trusted_hosts, expected = TRUSTED[name]
    headers = {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"}
    result = await observed(trusted_hosts, headers, client=(peer, 123))
    assert (result == "https://1.2.3.4:0") is (peer in expected), result


@pytest.mark.parametrize(
    ("trusted_hosts", "expected"),
    [
        ("*", "https://1.2.3.4:0"),
        ("127.0.0.1", "https://1.2.3.4:0"),
        (["127.0.0.1"], "https://1.2.3.4:0"),
        (["127.0.0.1", "10.0.0.1"], "https://1.2.3.4:0"),
        ("127.0.0.1, 10.0.0.1", "https://1.2.3.4:0"),
        ("127.0.0.0/24, 10.0.0.1", "https://1.2.3.4:0"),
        ("192.168.0.1", "http://127.0.0.1:123"),  # the peer is not a trusted proxy
        ("192.168.0.0/16", "http://127.0.0.1:123"),
        # A client on the proxy host itself: every hop trusted, the left-most wins.
        (["127.0.0.1", "1.2.3.4"], "https://1.2.3.4:0"),
    ],
)
async def test_trusted_hosts_spellings(trusted_hosts: Any, expected: str) -> None:
    headers = {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"}
    assert await observed(trusted_hosts, headers) == expected


@pytest.mark.parametrize(
    ("forwarded_for", "forwarded_proto", "expected"),
    [
        ("", "", "http://127.0.0.1:123"),
        ("", None, "http://127.0.0.1:123"),
        ("", "asdf", "http://127.0.0.1:123"),
        (" , ", "https", "https://127.0.0.1:123"),
        (", , ", "https", "https://127.0.0.1:123"),
        # An empty hop right of trusted proxies: the client is unknown.
        (" , 10.0.0.1", "https", "https://127.0.0.1:123"),
        ("9.9.9.9 , , , 10.0.0.1", "https", "https://127.0.0.1:123"),
        (", , 9.9.9.9", "https", "https://9.9.9.9:0"),
        (", , 9.9.9.9, , ", "https", "https://127.0.0.1:123"),
    ],
)
async def test_empty_and_malformed_entries(
    forwarded_for: str, forwarded_proto: str | None, expected: str
) -> None:
    headers = {"x-forwarded-for": forwarded_for}
    if forwarded_proto is not None:
        headers["x-forwarded-proto"] = forwarded_proto
    assert await observed("127.0.0.1, 10.0.0.0/8", headers) == expected


@pytest.mark.parametrize(
    ("trusted_hosts", "expected"),
    [
        ("*", "https://1.2.3.4:0"),
        (["127.0.0.1", "10.0.2.1", "192.168.0.2"], "https://1.2.3.4:0"),
        (["10.0.2.1", "192.168.0.2", "127.0.0.1"], "https://1.2.3.4:0"),
        (["192.168.0.2", "127.0.0.1"], "https://10.0.2.1:0"),
        (["127.0.0.1", "10.0.0.0/8", "192.168.0.2"], "https://1.2.3.4:0"),
    ],
)
async def test_chain_of_proxies(trusted_hosts: Any, expected: str) -> None:
    headers = {"x-forwarded-for": "1.2.3.4, 10.0.2.1, 192.168.0.2", "x-forwarded-proto": "https"}
    assert await observed(trusted_hosts, headers) == expected


@pytest.mark.parametrize(
    ("trusted_hosts", "expected"),
    [
        ("*", "https://1.2.3.4:1234"),
        (["127.0.0.1", "2001:db8::1", "192.168.0.2"], "https://1.2.3.4:1234"),
        (["192.168.0.2", "127.0.0.1"], "https://[2001:db8::1]:8080"),
        (["127.0.0.1", "2001:db8::/32", "192.168.0.2"], "https://1.2.3.4:1234"),
    ],
)
async def test_chain_of_proxies_with_ports(trusted_hosts: Any, expected: str) -> None:
    headers = {
        "x-forwarded-for": "1.2.3.4:1234, [2001:db8::1]:8080, 192.168.0.2:9000",
        "x-forwarded-proto": "https",
    }
    assert await observed(trusted_hosts, headers) == expected


async def test_garbage_between_hops_under_trust_everything() -> None:
    headers = [
        (b"x-forwarded-for", "1.2.3.4, \xf0\xfd\xfd\xfd, unix:, ::1".encode("latin-1")),
        (b"x-forwarded-proto", b"https"),
    ]
    assert await observed("*", headers) == "https://1.2.3.4:0"


@pytest.mark.parametrize(
    ("forwarded_for", "expected"),
    [
        ("1.2.3.4", "https://1.2.3.4:0"),
        ("1.2.3.4:1234", "https://1.2.3.4:1234"),
        ("[2001:db8::1]:443", "https://[2001:db8::1]:443"),
        ("[2001:db8::1]", "https://[2001:db8::1]:0"),
        ("2001:db8::1", "https://[2001:db8::1]:0"),
        # Uvicorn makes "1.2.3.4:notaport", "[2001:db8::1]extra" and "[2001:db8::1"
        # the client's host, and drops the bad port of "[2001:db8::1]:notaport";
        # asgi_kit believes no malformed hop and keeps the peer.
        ("1.2.3.4:notaport", "https://127.0.0.1:123"),
        ("[2001:db8::1]:notaport", "https://127.0.0.1:123"),
        ("[2001:db8::1]extra", "https://127.0.0.1:123"),
        ("[2001:db8::1", "https://127.0.0.1:123"),
    ],
)
async def test_address_shapes(forwarded_for: str, expected: str) -> None:
    headers = {"x-forwarded-for": forwarded_for, "x-forwarded-proto": "https"}
    assert await observed("*", headers) == expected


async def test_empty_header_under_trust_everything() -> None:
    headers = {"x-forwarded-for": "", "x-forwarded-proto": "https"}
    assert await observed("*", headers) == "https://127.0.0.1:123"


async def test_repeated_x_forwarded_for_headers_are_one_chain() -> None:
    headers = [
        (b"x-forwarded-for", b"203.0.113.66, 198.51.100.23"),
        (b"x-forwarded-for", b"127.0.0.1"),
    ]
    assert await observed("127.0.0.1", headers) == "http://198.51.100.23:0"


@pytest.mark.parametrize(
    ("values", "expected"), [(("https", "http"), "http"), (("http", "https"), "https")]
)
async def test_the_last_x_forwarded_proto_header_wins(
    values: tuple[str, str], expected: str
) -> None:
    headers = [(b"x-forwarded-proto", v.encode()) for v in values]
    assert (await observed("127.0.0.1", headers)).startswith(f"{expected}://")


async def test_haproxy_behind_a_load_balancer() -> None:
    headers = [
        (b"x-forwarded-for", b"1.2.3.4"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-proto", b"https"),
    ]
    assert await observed(["127.0.0.1", "10.0.0.1"], headers) == "https://1.2.3.4:0"


@pytest.mark.parametrize(
    ("proto", "expected"), [("http", "ws"), ("https", "wss"), ("ws", "ws"), ("wss", "wss")]
)
async def test_websocket_scheme(proto: str, expected: str) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)

    scope = websocket_scope("/", client=PEER)
    scope["headers"] = [(b"x-forwarded-for", b"1.2.3.4"), (b"x-forwarded-proto", proto.encode())]

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    await ProxyHeadersMiddleware(app, trusted_hosts="*")(scope, receive, send)
    assert (seen["scheme"], seen["client"]) == (expected, ("1.2.3.4", 0))


# --------------------------------------------------------------------------- Unix sockets


@pytest.mark.parametrize("literal", ["unix:///run/app.sock", "/run/app.sock", "unix"])
async def test_unix_socket_literals_trust_peers_without_an_address(literal: str) -> None:
    headers = {"x-forwarded-for": "198.51.100.4", "x-forwarded-proto": "https"}
    assert await observed([literal], headers, client=None) == "https://198.51.100.4:0"
    # And a peer reported by that name, as some servers do.
    assert await observed([literal], headers, client=(literal, 0)) == "https://198.51.100.4:0"
    # A TCP peer is not trusted by a socket literal.
    assert await observed([literal], headers) == "http://127.0.0.1:123"


async def test_a_host_name_literal_trusts_a_hop_of_that_name() -> None:
    headers = {"x-forwarded-for": "198.51.100.4, edge-proxy"}
    assert await observed(["127.0.0.1", "edge-proxy"], headers) == "http://198.51.100.4:0"
    # Without it the named hop is no address: the client stays the peer.
    assert await observed(["127.0.0.1"], headers) == "http://127.0.0.1:123"
