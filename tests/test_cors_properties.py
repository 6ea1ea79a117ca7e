"""Hypothesis: hostile Origin / Access-Control-Request-* headers never break CORSMiddleware."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import CORSMiddleware
from asgi_kit.cors import normalize_origin
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import CapturedResponse, call_http

CONFIGS: list[dict[str, Any]] = [
    {"allow_origins": ["*"]},
    {"allow_origins": ["*"], "allow_credentials": True, "allow_headers": ["*"]},
    {
        "allow_origins": ["https://a.test", "null"],
        "allow_headers": ["X-A"],
        "expose_headers": ["X"],
    },
    {"allow_origin_regex": r"https?://.*", "allow_credentials": True, "allow_methods": ["*"]},
    {"allow_origin_func": lambda origin: len(origin) % 2 == 0, "allow_private_network": True},
]

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def plain(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"vary", b"Cookie")]})
    await send({"type": "http.response.body", "body": b"ok"})


APPS = [CORSMiddleware(plain, **config) for config in CONFIGS]

header_bytes = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda s: s.encode("utf-8")),
    st.sampled_from(
        [b"https://a.test", b"null", b"https://A.TEST:443", b"*", b"https://a.test/", b""]
    ),
)
request_headers = st.one_of(
    header_bytes,
    st.lists(st.sampled_from(["x-a", "X-A", "content-type", "authorization", " ", ""]), max_size=80)
    .map(", ".join)
    .map(str.encode),
)


def check_invariants(response: CapturedResponse, origin: bytes) -> None:
    names = [k.lower() for k, _ in response.headers]
    assert len(names) == len(set(names)), response.headers
    for _, value in response.headers:
        assert not any(c in value for c in b"\r\n\x00")
    acao = response.header("access-control-allow-origin")
    if acao is not None:
        assert acao == "*" or acao.encode("latin-1") == origin
        assert acao == "*" or normalize_origin(acao) is not None
    if response.header("access-control-allow-credentials") is not None:
        assert acao is not None and acao != "*"


@SETTINGS
@given(
    app_index=st.integers(0, len(APPS) - 1),
    origin=header_bytes,
    method=st.one_of(header_bytes, st.sampled_from([b"GET", b"POST", b"get", b"PURGE"])),
    requested=st.one_of(st.none(), request_headers),
    private_network=st.one_of(st.none(), header_bytes),
)
async def test_hostile_preflight(
    app_index: int,
    origin: bytes,
    method: bytes,
    requested: bytes | None,
    private_network: bytes | None,
) -> None:
    headers = [(b"origin", origin), (b"access-control-request-method", method)]
    if requested is not None:
        headers.append((b"access-control-request-headers", requested))
    if private_network is not None:
        headers.append((b"access-control-request-private-network", private_network))
    response = await call_http(APPS[app_index], "OPTIONS", headers=headers)
    assert response.status in (200, 400)
    check_invariants(response, origin)
    if response.status == 400:
        assert response.body.startswith(b"Disallowed CORS ")
        assert response.header("access-control-allow-origin") is None
        return
    # What a browser checks: the method and every requested header are allowed.
    allowed_methods = response.header("access-control-allow-methods") or ""
    assert method.decode("latin-1") in [m.strip() for m in allowed_methods.split(",")]
    if requested:
        allowed = {
            h.strip() for h in (response.header("access-control-allow-headers") or "").split(",")
        }
        for name in requested.decode("latin-1").split(","):
            if name.strip(" \t"):
                assert name.strip(" \t").lower() in allowed


@SETTINGS
@given(app_index=st.integers(0, len(APPS) - 1), origin=header_bytes, cookie=st.booleans())
async def test_hostile_origin_on_actual_request(
    app_index: int, origin: bytes, cookie: bool
) -> None:
    headers = [(b"origin", origin)]
    if cookie:
        headers.append((b"cookie", b"session=1"))
    response = await call_http(APPS[app_index], "POST", headers=headers)
    assert response.status == 200
    assert response.body == b"ok"
    check_invariants(response, origin)
    vary = response.header_all("vary")
    assert len(vary) == 1 and vary[0].startswith("Cookie")


hosts = st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z]{2,5}){1,2}", fullmatch=True)


@SETTINGS
@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    data=st.data(),
)
async def test_case_and_default_port_variants_are_the_same_origin(
    scheme: str, host: str, data: st.DataObject
) -> None:
    app = CORSMiddleware(plain, allow_origins=[f"{scheme}://{host}"], allow_credentials=True)
    default_port = {"http": 80, "https": 443}[scheme]
    port = data.draw(st.sampled_from(["", f":{default_port}"]))
    variant = (
        "".join(c.upper() if data.draw(st.booleans()) else c for c in f"{scheme}://{host}") + port
    )
    response = await call_http(app, headers={"Origin": variant})
    assert response.header("access-control-allow-origin") == variant
    other = f"{scheme}://{host}:{default_port + 1}"
    response = await call_http(app, headers={"Origin": other})
    assert response.header("access-control-allow-origin") is None


async def test_hostile_origins_do_not_pin_memory() -> None:
    # Each distinct Origin's decision is remembered; huge made-up ones must
    # not stay in that memory (1024 x 16 KiB would pin 16 MiB per worker).
    import tracemalloc

    app = CORSMiddleware(plain, allow_origins=["https://a.test"])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1100):
            origin = b"https://%d.test" % i + b"x" * 16384
            response = await call_http(app, headers=[(b"origin", origin)])
            assert response.status == 200
            assert response.header("access-control-allow-origin") is None
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert retained < 2 * 1024 * 1024, retained
