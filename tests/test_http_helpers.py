"""Shared helpers in asgi_kit._http, including hostile input."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._http import (
    MutableHeaders,
    PathMatcher,
    client_host,
    cookie_attributes,
    copy_start,
    delete_cookie_header,
    get_cookie,
    header_list,
    header_value,
    header_values,
    iter_cookie_pairs,
    normalize_header_name,
    parse_qvalues,
    refuse_websocket,
    scope_scheme,
    send_json,
    send_response,
    set_cookie_header,
    split_comma_list,
)

from ._support.asgi import websocket_scope

HEADERS = [
    (b"host", b"example.com"),
    (b"Content-Type", b"text/html"),
    (b"accept", b"a"),
    (b"ACCEPT", b"b"),
]


# ----------------------------------------------------------------- header access


def test_header_value_is_case_insensitive_on_stored_names() -> None:
    assert header_value(HEADERS, b"content-type") == b"text/html"
    assert header_value(HEADERS, b"host") == b"example.com"
    assert header_value(HEADERS, b"missing") is None


def test_header_values_and_list() -> None:
    assert header_values(HEADERS, b"accept") == [b"a", b"b"]
    assert header_list(HEADERS, b"accept") == b"a, b"
    assert header_list(HEADERS, b"host") == b"example.com"
    assert header_list(HEADERS, b"nope") is None


def test_split_comma_list_bounds_items() -> None:
    assert split_comma_list(b" a, ,b ,, c") == ["a", "b", "c"]
    assert len(split_comma_list("x," * 10_000)) == 64
    assert split_comma_list("x," * 10_000, max_items=3) == ["x", "x", "x"]


@pytest.mark.parametrize("bad", ["", "bad header", "x\r\ny", "é", "a:b"])
def test_normalize_header_name_rejects_invalid(bad: str) -> None:
    with pytest.raises(ValueError, match="my_option"):
        normalize_header_name(bad, "my_option")


def test_normalize_header_name_lowercases() -> None:
    assert normalize_header_name("X-Request-ID", "o") == b"x-request-id"


# ----------------------------------------------------------------- MutableHeaders


def test_mutable_headers_copy_of_never_changes_the_apps_message() -> None:
    original_headers = ((b"Content-Length", b"10"),)
    message = {"type": "http.response.start", "headers": original_headers}
    copied, headers = MutableHeaders.copy_of(message)
    assert copied is not message
    assert isinstance(copied["headers"], list)
    headers.set(b"content-length", b"5")
    assert copied["headers"] == [(b"content-length", b"5")]
    assert message["headers"] is original_headers
    headers.add(b"x-a", b"1")
    headers.add(b"X-A", b"2")
    assert headers.get_all(b"x-a") == [b"1", b"2"]
    assert b"x-a" in headers
    assert headers.remove(b"x-a") is True
    assert headers.remove(b"x-a") is False
    assert headers.setdefault(b"content-length", b"9") == b"5"
    assert headers.setdefault(b"etag", b'"x"') == b'"x"'
    assert len(headers) == 2


def test_copy_start_copies_a_list_the_app_owns() -> None:
    shared = [(b"content-type", b"text/plain")]
    message = {"type": "http.response.start", "status": 200, "headers": shared}
    copied, raw = copy_start(message)
    raw.append((b"set-cookie", b"a=b"))
    copied["status"] = 500
    assert shared == [(b"content-type", b"text/plain")]
    assert message == {"type": "http.response.start", "status": 200, "headers": shared}


def test_copy_of_without_headers() -> None:
    message: dict[str, object] = {"type": "http.response.start", "status": 200}
    copied, headers = MutableHeaders.copy_of(message)
    headers.add(b"a", b"b")
    assert copied["headers"] == [(b"a", b"b")]
    assert "headers" not in message


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], [(b"vary", b"Origin")]),
        ([(b"Vary", b"Accept-Encoding")], [(b"vary", b"Accept-Encoding, Origin")]),
        ([(b"vary", b"origin")], [(b"vary", b"origin")]),
        ([(b"vary", b"*")], [(b"vary", b"*")]),
        ([(b"vary", b"a"), (b"vary", b"b")], [(b"vary", b"a, b, Origin")]),
        ([(b"vary", b"a"), (b"Vary", b"Origin")], [(b"vary", b"a, Origin")]),
    ],
)
def test_add_vary_merges(existing: list[tuple[bytes, bytes]], expected: object) -> None:
    headers = MutableHeaders(list(existing))
    headers.add_vary(b"Origin")
    assert headers.raw == expected


# ----------------------------------------------------------------- q-values


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip, br", [("gzip", 1.0), ("br", 1.0)]),
        ("GZIP;q=0.5, br;Q=1", [("gzip", 0.5), ("br", 1.0)]),
        ("gzip;q=0, *;q=0.1", [("gzip", 0.0), ("*", 0.1)]),
        ("identity;q=0", [("identity", 0.0)]),
        ("gzip;q=1.000, br;q=0.999", [("gzip", 1.0), ("br", 0.999)]),
        ("gzip;q=1.5, br;q=-1, zstd;q=0.1234, deflate;q=abc, x;q", []),
        ("gzip ; q=0.8 ; foo=bar", [("gzip", 0.8)]),
        ("text/html;level=1, */*;q=0.1", [("text/html", 1.0), ("*/*", 0.1)]),
        ("", []),
        (",,,", []),
        ("bad token, ok", [("ok", 1.0)]),
        ("0.", [("0.", 1.0)]),
        ("a;q=0., b;q=1.", [("a", 0.0), ("b", 1.0)]),
        ("a;q=0.٣", []),
    ],
)
def test_parse_qvalues(value: str, expected: list[tuple[str, float]]) -> None:
    assert parse_qvalues(value) == expected


@given(st.binary(max_size=2048))
def test_parse_qvalues_never_raises_on_bytes(raw: bytes) -> None:
    for token, q in parse_qvalues(raw):
        assert token and token == token.lower()
        assert 0.0 <= q <= 1.0


@given(st.text(max_size=512))
def test_parse_qvalues_never_raises_on_text(raw: str) -> None:
    parse_qvalues(raw)


def test_parse_qvalues_caps_items() -> None:
    assert len(parse_qvalues("a, " * 100_000)) == 64


# ----------------------------------------------------------------- cookies


def first_cookies(value: str | bytes) -> dict[str, str]:
    """Every cookie of one header, the first occurrence of a name winning."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    cookies: dict[str, str] = {}
    for name, val in iter_cookie_pairs(text):
        cookies.setdefault(name, val)
    return cookies


def test_iter_cookie_pairs_tolerates_garbage() -> None:
    raw = 'a=1; b="quoted"; =nameless; novalue; c = 3 ;; a=second; d=x=y'
    assert list(iter_cookie_pairs(raw)) == [
        ("a", "1"),
        ("b", "quoted"),
        ("c", "3"),
        ("a", "second"),
        ("d", "x=y"),
    ]
    assert first_cookies(raw) == {"a": "1", "b": "quoted", "c": "3", "d": "x=y"}


def test_get_cookie_searches_every_cookie_header() -> None:
    headers = [(b"cookie", b"a=1"), (b"Cookie", b"session=abc; z=2")]
    assert get_cookie(headers, "session") == "abc"
    assert get_cookie(headers, "a") == "1"
    assert get_cookie(headers, "sess") is None
    assert get_cookie([], "a") is None


@given(st.binary(max_size=1024))
def test_cookie_parsers_never_raise(raw: bytes) -> None:
    cookies = first_cookies(raw)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in cookies.items())
    get_cookie([(b"cookie", raw)], "session")


@given(
    st.lists(
        st.text(alphabet=' =;"abs\t', max_size=12).map(lambda t: t.encode("latin-1")),
        max_size=3,
    ),
    st.sampled_from(["a", "s", "ab", " a", ""]),
)
def test_get_cookie_agrees_with_iter_cookie_pairs(values: list[bytes], name: str) -> None:
    headers = [(b"cookie", v) for v in values]
    expected = None
    for value in values:
        if name in (found := first_cookies(value)):
            expected = found[name]
            break
    assert get_cookie(headers, name) == expected


def test_set_cookie_header_all_attributes() -> None:
    value = set_cookie_header(
        "sid",
        "abc",
        max_age=60,
        expires=0,
        path="/app",
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="strict",
        partitioned=True,
    )
    assert value == (
        b"sid=abc; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/app; "
        b"Domain=example.com; Secure; HttpOnly; SameSite=Strict; Partitioned"
    )


def test_cookie_attributes_samesite_none_forces_secure() -> None:
    assert cookie_attributes(samesite="none", httponly=False, path=None) == b"Secure; SameSite=None"
    assert cookie_attributes(samesite=None, httponly=False, path=None) == b""


def test_cookie_attributes_datetime_expires() -> None:
    attrs = cookie_attributes(expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert attrs.startswith(b"Expires=Wed, 02 Jan 2030 03:04:05 GMT")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samesite": "sometimes"}, "same_site"),
        ({"path": "/a;b"}, "path"),
        ({"domain": "ex\r\nample"}, "domain"),
        ({"max_age": "10"}, "max_age"),
    ],
)
def test_cookie_attributes_validation(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cookie_attributes(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "value"), [("", "x"), ("a b", "x"), ("a", "x;y"), ("a", 'x"')])
def test_set_cookie_header_rejects_bad_name_or_value(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        set_cookie_header(name, value)


def test_delete_cookie_header() -> None:
    value = delete_cookie_header("sid", path="/", domain="example.com", max_age=5)
    assert value.startswith(b"sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; ")
    assert b"Path=/; Domain=example.com" in value


# ----------------------------------------------------------------- paths


def test_path_matcher() -> None:
    match = PathMatcher(["/health", "/static/*", "/api/*/private", "*.png"])
    assert match("/health")
    assert not match("/healthz")
    assert match("/static/css/site.css")
    assert match("/static")  # "/static/" is the same path
    assert not match("/staticfiles")
    assert match("/api/v1/private")
    assert match("/img/logo.png")
    assert not match("/api/v1/public")
    assert bool(match) and not bool(PathMatcher([]))


@pytest.mark.parametrize("bad", [["health"], [""], [3]])
def test_path_matcher_validation(bad: list[object]) -> None:
    with pytest.raises(ValueError, match="exclude_paths"):
        PathMatcher(bad, "exclude_paths")  # type: ignore[arg-type]


def test_path_matcher_rejects_a_single_string() -> None:
    with pytest.raises(TypeError, match="exclude_paths"):
        PathMatcher("/health", "exclude_paths")


def test_path_matcher_names_the_option_for_non_iterables() -> None:
    with pytest.raises(TypeError, match="excluded_paths must be a list of paths, got int"):
        PathMatcher(5, "excluded_paths")  # type: ignore[arg-type]


@given(st.text(max_size=300))
def test_path_matcher_never_raises(path: str) -> None:
    PathMatcher(["/a", "/b/*", "/c/*.x"])(path)


# ----------------------------------------------------------------- scope helpers


def test_client_host_and_scheme() -> None:
    assert client_host({"client": ("1.2.3.4", 5)}) == "1.2.3.4"
    assert client_host({"client": None}) is None
    assert client_host({}) is None
    assert scope_scheme({"type": "http"}) == "http"
    assert scope_scheme({"type": "websocket"}) == "ws"
    assert scope_scheme({"type": "http", "scheme": "https"}) == "https"


# ----------------------------------------------------------------- responses


async def test_send_response_and_json() -> None:
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await send_response(send, 400, b"bad", headers=[(b"x-a", b"1")])
    assert sent[0] == {
        "type": "http.response.start",
        "status": 400,
        "headers": [
            (b"content-length", b"3"),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"x-a", b"1"),
        ],
    }
    assert sent[1] == {"type": "http.response.body", "body": b"bad", "more_body": False}
    sent.clear()
    await send_json(send, 429, {"detail": "é"})
    assert sent[1]["body"] == '{"detail":"é"}'.encode()


@pytest.mark.parametrize("extension", [True, False])
async def test_refuse_websocket(extension: bool) -> None:
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = websocket_scope(http_response_extension=extension)
    await refuse_websocket(scope, receive, send, 403, b"forbidden")
    if extension:
        assert sent[0]["type"] == "websocket.http.response.start"
        assert sent[0]["status"] == 403
        assert sent[1]["body"] == b"forbidden"
    else:
        assert sent == [{"type": "websocket.close", "code": 1008}]
