"""ProxyHeadersMiddleware: trust, X-Forwarded-*, RFC 7239 Forwarded, hostile input."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import ProxyHeadersMiddleware
from asgi_kit.proxy import parse_forwarded, parse_node
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import call_http, http_scope, websocket, websocket_scope

seen: dict[str, Any] = {}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    seen["scope"] = scope
    seen["client"] = scope.get("client")
    seen["scheme"] = scope.get("scheme")
    seen["host"] = [v for k, v in scope["headers"] if k.lower() == b"host"]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1000})


async def run(
    headers: list[tuple[bytes, bytes]] | dict[str, str] | None = None,
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    **options: Any,
) -> dict[str, Any]:
    seen.clear()
    response = await call_http(
        ProxyHeadersMiddleware(app, **options), headers=headers, client=client
    )
    assert response.status == 200
    return dict(seen)


# --------------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("203.0.113.7", ("203.0.113.7", 0)),
        (" 203.0.113.7 ", ("203.0.113.7", 0)),
        ("203.0.113.7:8080", ("203.0.113.7", 8080)),
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("2001:DB8:0::1", ("2001:db8::1", 0)),
        ("[2001:db8::1]", ("2001:db8::1", 0)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
        ("[2001:db8::1]:_hidden", ("2001:db8::1", 0)),
        ("192.0.2.1:_port", ("192.0.2.1", 0)),
        ("::ffff:192.0.2.1", ("::ffff:c000:201", 0)),
    ],
)
def test_parse_node_valid(value: str, expected: tuple[str, int]) -> None:
    parsed = parse_node(value)
    assert parsed is not None
    assert parsed == (ipaddress.ip_address(expected[0]), expected[1])


@pytest.mark.parametrize(
    "value",
    [
        "",
        "unknown",
        "_hidden",
        "garbage",
        "example.com",
        "203.0.113.7:99999999999",
        "203.0.113.7:0",
        "203.0.113.7:",
        "203.0.113.7:80:80",
        "[2001:db8::1]:",
        "[2001:db8::1]x",
        "[2001:db8::1",
        "[203.0.113.7]",
        "2001:db8::1:80:80:80:80:80:80",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4 5",
        "1.2.3.4:_bad port",
        "1.2.3.4:_",
        "[2001:db8::1]:_a!b",
        "x" * 500,
    ],
)
def test_parse_node_rejects(value: str) -> None:
    assert parse_node(value) is None


def test_parse_forwarded() -> None:
    assert parse_forwarded("for=192.0.2.60;proto=http;by=203.0.113.43") == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}
    ]
    assert parse_forwarded('For="[2001:db8:cafe::17]:4711", for=unknown;Proto=HTTPS') == [
        {"for": "[2001:db8:cafe::17]:4711"},
        {"for": "unknown", "proto": "HTTPS"},
    ]
    assert parse_forwarded('for="a,b\\"c";host="x.com", , for=1.2.3.4') == [
        {"for": 'a,b"c', "host": "x.com"},
        {"for": "1.2.3.4"},
    ]
    # Syntax errors make the element unusable but keep its position.
    assert parse_forwarded("for=1.1.1.1;for=2.2.2.2, for=3.3.3.3") == [None, {"for": "3.3.3.3"}]
    assert parse_forwarded("garbage, for=3.3.3.3") == [None, {"for": "3.3.3.3"}]
    assert parse_forwarded('for="unterminated, for=3.3.3.3') == [None]
    assert parse_forwarded("for=, for=3.3.3.3") == [None, {"for": "3.3.3.3"}]
    assert parse_forwarded("for=1.1.1.1 junk, for=3.3.3.3") == [None, {"for": "3.3.3.3"}]
    assert parse_forwarded("") == []


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_parse_forwarded_never_raises(value: str) -> None:
    for element in parse_forwarded(value):
        assert element is None or all(k == k.lower() for k in element)


@settings(max_examples=500)
@given(st.text(max_size=120))
def test_parse_node_never_raises_and_returns_real_addresses(value: str) -> None:
    parsed = parse_node(value)
    if parsed is not None:
        ip, port = parsed
        assert ipaddress.ip_address(str(ip)) == ip
        assert 0 <= port <= 65535


# --------------------------------------------------------------------------- trust


async def test_untrusted_peer_headers_ignored() -> None:
    result = await run(
        {"x-forwarded-for": "1.2.3.4", "x-forwarded-proto": "https"}, client=("203.0.113.9", 1)
    )
    assert result["client"] == ("203.0.113.9", 1)
    assert result["scheme"] == "http"


async def test_trusted_peer_sets_client_and_scheme() -> None:
    result = await run({"x-forwarded-for": "198.51.100.4", "x-forwarded-proto": "https"})
    assert result["client"] == ("198.51.100.4", 0)
    assert result["scheme"] == "https"


async def test_forwarded_port_is_kept() -> None:
    result = await run({"x-forwarded-for": "198.51.100.4:5555"})
    assert result["client"] == ("198.51.100.4", 5555)
    result = await run({"x-forwarded-for": "[2001:db8::9]:443"})
    assert result["client"] == ("2001:db8::9", 443)


async def test_right_most_untrusted_wins() -> None:
    headers = {"x-forwarded-for": "6.6.6.6, 198.51.100.4, 10.0.0.2, 10.0.0.3"}
    result = await run(headers, trusted_hosts=["127.0.0.1", "10.0.0.0/8"])
    assert result["client"] == ("198.51.100.4", 0)
    # Only the peer trusted: the right-most hop is the client.
    result = await run(headers)
    assert result["client"] == ("10.0.0.3", 0)


async def test_all_trusted_takes_left_most() -> None:
    result = await run(
        {"x-forwarded-for": "10.1.1.1, 10.0.0.2"}, trusted_hosts="127.0.0.1, 10.0.0.0/8"
    )
    assert result["client"] == ("10.1.1.1", 0)
    result = await run({"x-forwarded-for": "1.1.1.1, 2.2.2.2"}, trusted_hosts="*")
    assert result["client"] == ("1.1.1.1", 0)


async def test_multiple_xff_headers_are_joined() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.4"), (b"X-Forwarded-For", b"10.0.0.2")]
    result = await run(headers, trusted_hosts=["127.0.0.1", "10.0.0.0/8"])
    assert result["client"] == ("198.51.100.4", 0)


@pytest.mark.parametrize(
    "value",
    [
        "unknown",
        "garbage",
        "_obfuscated",
        "198.51.100.4, unknown",
        "1.2.3.4:99999999999",
        "[::1",
        "<script>",
        "",
        " , ",
    ],
)
async def test_garbage_leaves_client_unchanged(value: str) -> None:
    result = await run({"x-forwarded-for": value})
    assert result["client"] == ("127.0.0.1", 50000)


async def test_hundreds_of_hops_are_bounded() -> None:
    hops = ", ".join(f"10.0.{i // 250}.{i % 250 + 1}" for i in range(500))
    # Every hop trusted and the chain longer than max_hops: origin unknown.
    result = await run({"x-forwarded-for": hops}, trusted_hosts=["127.0.0.1", "10.0.0.0/8"])
    assert result["client"] == ("127.0.0.1", 50000)
    # A client-supplied long chain in front of one real hop: the real hop wins.
    result = await run({"x-forwarded-for": hops + ", 198.51.100.4"}, trusted_hosts=["127.0.0.1"])
    assert result["client"] == ("198.51.100.4", 0)
    # Within max_hops it works.
    short = ", ".join(["198.51.100.4"] + [f"10.0.0.{i}" for i in range(1, 10)])
    result = await run({"x-forwarded-for": short}, trusted_hosts=["127.0.0.1", "10.0.0.0/8"])
    assert result["client"] == ("198.51.100.4", 0)
    result = await run(
        {"x-forwarded-for": short}, trusted_hosts=["127.0.0.1", "10.0.0.0/8"], max_hops=5
    )
    assert result["client"] == ("127.0.0.1", 50000)


async def test_ipv6_cidr_and_peer() -> None:
    headers = {"x-forwarded-for": "2001:db8::5, fd00::1"}
    result = await run(headers, client=("::1", 1), trusted_hosts=["::1", "fd00::/8"])
    assert result["client"] == ("2001:db8::5", 0)
    result = await run(headers, client=("fd12::9", 1), trusted_hosts=["fd00::/8"])
    assert result["client"] == ("2001:db8::5", 0)
    result = await run(headers, client=("fe80::1", 1), trusted_hosts=["fd00::/8"])
    assert result["client"] == ("fe80::1", 1)


async def test_ipv4_mapped_peer_matches_ipv4_trust() -> None:
    result = await run({"x-forwarded-for": "198.51.100.4"}, client=("::ffff:127.0.0.1", 1))
    assert result["client"] == ("198.51.100.4", 0)


async def test_ipv4_mapped_client_reads_the_same_on_every_python() -> None:
    # Python 3.13 changed str() of IPv4-mapped addresses; scope["client"] must not.
    result = await run({"x-forwarded-for": "::ffff:198.51.100.4"})
    assert result["client"] == ("::ffff:198.51.100.4", 0)
    result = await run({"forwarded": 'for="[::FFFF:c633:6404]:8080"'}, mode="forwarded")
    assert result["client"] == ("::ffff:198.51.100.4", 8080)


async def test_unix_socket_peers() -> None:
    headers = {"x-forwarded-for": "198.51.100.4", "x-forwarded-proto": "https"}
    result = await run(headers, client=None)
    assert result["client"] is None and result["scheme"] == "http"
    result = await run(headers, client=None, trusted_hosts=["unix"])
    assert result["client"] == ("198.51.100.4", 0) and result["scheme"] == "https"
    result = await run(headers, client=None, trusted_hosts="*")
    assert result["client"] == ("198.51.100.4", 0)
    # A non-IP peer name is not trusted by an address list.
    result = await run(headers, client=("testclient", 1))
    assert result["client"] == ("testclient", 1)


# --------------------------------------------------------------------------- proto and host


@pytest.mark.parametrize(
    ("value", "http_scheme", "ws_scheme"),
    [
        ("https", "https", "wss"),
        ("HTTPS", "https", "wss"),
        ("http", "http", "ws"),
        ("wss", "https", "wss"),
        ("ws", "http", "ws"),
        ("http, https", "https", "wss"),
        ("ftp", "http", "ws"),
        ("javascript:", "http", "ws"),
        ("", "http", "ws"),
    ],
)
async def test_forwarded_proto(value: str, http_scheme: str, ws_scheme: str) -> None:
    result = await run({"x-forwarded-proto": value})
    assert result["scheme"] == http_scheme
    middleware = ProxyHeadersMiddleware(app)
    scope = websocket_scope(headers={"x-forwarded-proto": value})
    async with websocket(middleware, scope) as ws:
        await ws.send_input({"type": "websocket.connect"})
        await ws.receive_output(2)
    assert seen["scheme"] == ws_scheme


async def test_forwarded_host_opt_in_and_validated() -> None:
    headers = [(b"host", b"internal:8000"), (b"x-forwarded-host", b"shop.example.com")]
    result = await run(headers)
    assert result["host"] == [b"internal:8000"]
    result = await run(headers, forwarded_host=True)
    assert result["host"] == [b"shop.example.com"]
    for bad in (b"evil.com/path", b"a b", b"x@y", b"", b"\xff", b"[zz::1]", b"ok.example:99999"):
        result = await run(
            [(b"host", b"internal"), (b"x-forwarded-host", bad)], forwarded_host=True
        )
        assert result["host"] == [b"internal"], bad
    result = await run([(b"X-Forwarded-Host", b"[2001:db8::1]:8443")], forwarded_host=True)
    assert result["host"] == [b"[2001:db8::1]:8443"]
    result = await run(
        [(b"host", b"a"), (b"Host", b"b"), (b"x-forwarded-host", b"c.example, d.example:81")],
        forwarded_host=True,
    )
    assert result["host"] == [b"d.example:81"]


async def test_forwarded_host_ignored_from_untrusted_peer() -> None:
    headers = [(b"host", b"internal"), (b"x-forwarded-host", b"evil.example")]
    result = await run(headers, client=("203.0.113.9", 1), forwarded_host=True)
    assert result["host"] == [b"internal"]


# --------------------------------------------------------------------------- RFC 7239


async def test_forwarded_mode() -> None:
    headers = {"forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https;host=shop.example'}
    result = await run(headers, mode="forwarded", forwarded_host=True)
    assert result["client"] == ("2001:db8:cafe::17", 4711)
    assert result["scheme"] == "https"
    assert result["host"] == [b"shop.example"]


async def test_forwarded_chain_picks_element_of_first_untrusted_hop() -> None:
    headers = {"forwarded": "for=6.6.6.6;proto=http, for=198.51.100.4;proto=https, for=10.0.0.2"}
    result = await run(headers, mode="forwarded", trusted_hosts=["127.0.0.1", "10.0.0.0/8"])
    assert result["client"] == ("198.51.100.4", 0)
    assert result["scheme"] == "https"


@pytest.mark.parametrize(
    "value",
    [
        "for=unknown",
        "for=_hidden",
        'for="_gazonk"',
        "for=192.0.2.60;for=198.51.100.1",
        'for="[2001:db8::1',
        "proto=https",
        "for=example.com",
        "nonsense",
    ],
)
async def test_forwarded_garbage_leaves_client_unchanged(value: str) -> None:
    result = await run({"forwarded": value}, mode="forwarded")
    assert result["client"] == ("127.0.0.1", 50000)


async def test_unknown_for_still_gives_its_proto() -> None:
    result = await run({"forwarded": "for=unknown;proto=https"}, mode="forwarded")
    assert result["client"] == ("127.0.0.1", 50000)
    assert result["scheme"] == "https"


async def test_families_are_mutually_exclusive() -> None:
    both = {
        "forwarded": "for=198.51.100.1;proto=https",
        "x-forwarded-for": "198.51.100.2",
        "x-forwarded-proto": "wss",
    }
    result = await run(both)
    assert result["client"] == ("198.51.100.2", 0)
    result = await run(both, mode="forwarded")
    assert result["client"] == ("198.51.100.1", 0) and result["scheme"] == "https"
    # No silent fallback: a mode's missing header does not open the other family.
    result = await run({"x-forwarded-for": "198.51.100.2"}, mode="forwarded")
    assert result["client"] == ("127.0.0.1", 50000)
    result = await run({"forwarded": "for=198.51.100.1"}, mode="x-forwarded")
    assert result["client"] == ("127.0.0.1", 50000)


async def test_default_mode_reads_forwarded_when_no_x_forwarded_header() -> None:
    result = await run({"forwarded": "for=198.51.100.1;proto=https"})
    assert result["client"] == ("198.51.100.1", 0)
    assert result["scheme"] == "https"
    scope = websocket_scope(headers=[(b"Forwarded", b'for="[2001:db8::7]:99";proto=https')])
    seen.clear()
    async with websocket(ProxyHeadersMiddleware(app), scope) as ws:
        await ws.send_input({"type": "websocket.connect"})
        await ws.receive_output(2)
    assert seen["client"] == ("2001:db8::7", 99) and seen["scheme"] == "wss"
    # Untrusted peer: nothing is read, whatever the family.
    result = await run({"forwarded": "for=198.51.100.1"}, client=("203.0.113.9", 1))
    assert result["client"] == ("203.0.113.9", 1)


@pytest.mark.parametrize(
    "x_header",
    [
        ("x-forwarded-for", "198.51.100.2"),
        ("x-forwarded-proto", "http"),
        ("X-Forwarded-Host", "shop.example"),
    ],
)
async def test_default_mode_never_combines_the_families(x_header: tuple[str, str]) -> None:
    # A proxy that sets any X-Forwarded-* header makes a client's Forwarded worthless.
    headers = {"forwarded": "for=6.6.6.6;proto=https", x_header[0]: x_header[1]}
    result = await run(headers)
    assert result["client"] != ("6.6.6.6", 0)
    assert result["scheme"] != "https"


# --------------------------------------------------------------------------- scope hygiene


async def test_callers_scope_is_not_mutated() -> None:
    scope = http_scope(
        headers=[
            (b"host", b"internal"),
            (b"x-forwarded-for", b"198.51.100.4"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"ext.example"),
        ]
    )
    original_headers = list(scope["headers"])
    await call_http(ProxyHeadersMiddleware(app, forwarded_host=True), scope=scope)
    assert scope["client"] == ("127.0.0.1", 50000)
    assert scope["scheme"] == "http"
    assert scope["headers"] == original_headers
    assert seen["scope"] is not scope
    assert seen["scope"]["state"] is scope["state"]  # shared per-request state survives


async def test_scope_untouched_when_nothing_applies() -> None:
    scope = http_scope()
    await call_http(ProxyHeadersMiddleware(app), scope=scope)
    assert seen["scope"] is scope


async def test_lifespan_and_asgi2() -> None:
    calls: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await ProxyHeadersMiddleware(lifespan_app, trusted_hosts="*")(
        {"type": "lifespan"}, receive, send
    )
    assert calls == ["lifespan"]

    class Legacy:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

        async def __call__(self, receive: Receive, send: Send) -> None:
            await app(self.scope, receive, send)

    await call_http(ProxyHeadersMiddleware(Legacy), headers={"x-forwarded-for": "198.51.100.4"})
    assert seen["client"] == ("198.51.100.4", 0)


def test_option_validation() -> None:
    # Host names and socket paths are literals (as in Uvicorn); a mistyped
    # address or network is refused rather than kept as a literal that never matches.
    for bad in (["10.0.0.1/8"], ["300.1.1.1"], "1.2.3.4, 10.0.0.0/33", ["2001:db8::12345"]):
        with pytest.raises(ValueError, match="trusted_hosts"):
            ProxyHeadersMiddleware(app, trusted_hosts=bad)
    with pytest.raises(TypeError, match="trusted_hosts"):
        ProxyHeadersMiddleware(app, trusted_hosts=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="trusted_hosts"):
        ProxyHeadersMiddleware(app, trusted_hosts=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        ProxyHeadersMiddleware(app, mode="both")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_hops"):
        ProxyHeadersMiddleware(app, max_hops=0)
    ProxyHeadersMiddleware(app, trusted_hosts=["[::1]", "unix", "UNIX", "fd00::/8"])
    middleware = ProxyHeadersMiddleware(app, trusted_hosts=(h for h in ["10.0.0.0/8", "::1"]))
    assert middleware.trusted_hosts == ("10.0.0.0/8", "::1")


# --------------------------------------------------------------------------- hypothesis

HOST_OK = re.compile(rb"[A-Za-z0-9_][A-Za-z0-9._-]*(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?")
hop = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]:{1 + hash(ip) % 65535}"),
    st.sampled_from(["unknown", "_hidden", "", " ", "garbage", "1.2.3.4:0", "[::1"]),
    st.text(max_size=20),
)
header_value = st.one_of(
    st.lists(hop, max_size=12).map(", ".join),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    xff=header_value,
    forwarded=header_value,
    proto=st.one_of(st.sampled_from(["http", "https", "ws", "wss", "HTTPS"]), st.text(max_size=10)),
    host=header_value,
    mode=st.sampled_from(["auto", "x-forwarded", "forwarded"]),
    trusted=st.sampled_from([("127.0.0.1",), ("127.0.0.1", "10.0.0.0/8", "::/0"), ("*",)]),
)
async def test_hostile_headers_never_crash(
    xff: str, forwarded: str, proto: str, host: str, mode: str, trusted: tuple[str, ...]
) -> None:
    headers = [
        (b"host", b"internal"),
        (b"x-forwarded-for", xff.encode("latin-1", "replace")),
        (b"forwarded", forwarded.encode("latin-1", "replace")),
        (b"x-forwarded-proto", proto.encode("latin-1", "replace")),
        (b"x-forwarded-host", host.encode("latin-1", "replace")),
    ]
    result = await run(headers, trusted_hosts=trusted, mode=mode, forwarded_host=True)
    client = result["client"]
    if client != ("127.0.0.1", 50000):
        ipaddress.ip_address(client[0])
        assert 0 <= client[1] <= 65535
    assert result["scheme"] in ("http", "https")
    [host_value] = result["host"]
    assert HOST_OK.fullmatch(host_value), host_value
