"""ConditionalGetMiddleware in-process: ETags, If-None-Match, If-Modified-Since, 304s."""

from __future__ import annotations

import calendar
import email.utils
import gzip
import sys
import time
from hashlib import blake2b
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit import CompressionMiddleware, ConditionalGetMiddleware
from asgi_kit.conditional import etag_matches, parse_http_date
from asgi_kit.types import Message, Receive, Scope, Send

from ._support.asgi import call_http, http_scope

BODY = b'{"items": [' + b", ".join(b'{"id": %d, "name": "item"}' % i for i in range(100)) + b"]}"
LAST_MODIFIED = b"Wed, 21 Oct 2015 07:28:00 GMT"
# Apps reuse one module-level header list and start message, names in mixed case.
HEADERS = [
    (b"Content-Type", b"application/json"),
    (b"Content-Length", b"%d" % len(BODY)),
    (b"Cache-Control", b"max-age=60"),
    (b"Vary", b"Accept"),
    (b"Date", b"Thu, 04 Dec 2026 03:00:00 GMT"),
    (b"Expires", b"Thu, 04 Dec 2026 03:01:00 GMT"),
    (b"Content-Location", b"/items.json"),
    (b"X-Custom", b"kept"),
]
HEADERS_SNAPSHOT = list(HEADERS)
START = {"type": "http.response.start", "status": 200, "headers": HEADERS}
BODY_MESSAGE = {"type": "http.response.body", "body": BODY, "more_body": False}
TAG = b'"' + blake2b(BODY, digest_size=16).hexdigest().encode() + b'"'


async def json_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send(START)
    await send(BODY_MESSAGE)


def with_headers(*extra: tuple[bytes, bytes], status: int = 200, chunks: Any = None) -> Any:
    headers = [*HEADERS, *extra]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for chunk in chunks or [BODY]:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    if chunks is None:

        async def single(scope: Scope, receive: Receive, send: Send) -> None:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": BODY})

        return single
    return app


def cond(app: Any = json_app, **options: Any) -> ConditionalGetMiddleware:
    return ConditionalGetMiddleware(app, **options)


@pytest.fixture(autouse=True)
def _app_headers_untouched() -> Any:
    yield
    assert HEADERS == HEADERS_SNAPSHOT
    assert START["headers"] is HEADERS


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"max_body_size": "1"}, TypeError, "max_body_size"),
        ({"max_body_size": True}, TypeError, "max_body_size"),
        ({"max_body_size": -1}, ValueError, "max_body_size"),
        ({"exclude_paths": "/x"}, TypeError, "exclude_paths"),
        ({"exclude_paths": ["x"]}, ValueError, "exclude_paths"),
    ],
)
def test_bad_options_name_the_option(
    options: dict[str, Any], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=name):
        ConditionalGetMiddleware(json_app, **options)


def test_non_callable_app_is_refused() -> None:
    with pytest.raises(TypeError, match="app"):
        ConditionalGetMiddleware(None)  # type: ignore[arg-type]


def test_positional_order_matches_the_design() -> None:
    mw = ConditionalGetMiddleware(json_app, 10, ["/raw/*"])
    assert (mw.max_body_size, mw.exclude_paths) == (10, ("/raw/*",))


# --------------------------------------------------------------------------- ETags


async def test_complete_200_gets_a_strong_etag_from_its_body() -> None:
    response = await call_http(cond(), "GET", "/")
    assert response.status == 200
    assert response.body == BODY
    assert response.header("etag") == TAG.decode()
    assert response.header("content-length") == str(len(BODY))


async def test_the_etag_depends_only_on_the_body() -> None:
    first = await call_http(cond(), "GET", "/a")
    second = await call_http(cond(), "HEAD", "/b")  # the app sends the body on HEAD too
    assert first.header("etag") == second.header("etag") == TAG.decode()


@pytest.mark.parametrize("name", [b"etag", b"ETag"])
async def test_an_etag_the_app_set_is_used_as_is(name: bytes) -> None:
    app = with_headers((name, b'W/"v7"'))
    response = await call_http(cond(app), "GET", "/")
    assert response.header_all("etag") == ['W/"v7"']
    matched = await call_http(cond(app), "GET", "/", headers={"if-none-match": '"v7"'})
    assert matched.status == 304


async def test_no_etag_for_non_200_no_store_or_large_bodies() -> None:
    for app in (
        with_headers(status=201),
        with_headers(status=404),
        with_headers((b"Cache-Control", b"private, no-store")),
    ):
        response = await call_http(cond(app), "GET", "/")
        assert response.header("etag") is None
        assert response.body == BODY
    small = await call_http(cond(max_body_size=len(BODY) - 1), "GET", "/")
    assert small.header("etag") is None
    exact = await call_http(cond(max_body_size=len(BODY)), "GET", "/")
    assert exact.header("etag") == TAG.decode()
    off = await call_http(cond(max_body_size=0), "GET", "/")
    assert off.header("etag") is None


async def test_large_declared_length_is_not_held() -> None:
    big = [(b"content-length", b"2000000")]
    order: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": big})
        order.append("start sent")
        await send({"type": "http.response.body", "body": b"x" * 10, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def on_send(message: Message) -> None:
        order.append(message["type"])

    response = await call_http(cond(app), "GET", "/", on_send=on_send)
    assert response.header("etag") is None
    # Too big to hash: the start went out before the app sent any body.
    assert order[:2] == ["http.response.start", "start sent"]


async def test_streaming_passes_through_unbuffered() -> None:
    seen: list[str] = []
    headers = [(b"content-type", b"text/event-stream")]

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": True})  # empty chunk
        seen.append("before first")
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        seen.append("after first")
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    def on_send(message: Message) -> None:
        seen.append(f"out {message['type']} {message.get('body', b'')!r}")

    response = await call_http(cond(stream), "GET", "/events", on_send=on_send)
    assert response.header("etag") is None
    assert response.body == b"data: 1\n\ndata: 2\n\n"
    # The first real chunk is released at once, with the start it was held for.
    assert seen[:4] == [
        "before first",
        "out http.response.start b''",
        "out http.response.body b'data: 1\\n\\n'",
        "after first",
    ]


async def test_an_empty_chunk_before_a_complete_body_still_gets_an_etag() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await send(BODY_MESSAGE)

    response = await call_http(cond(app), "GET", "/")
    assert response.header("etag") == TAG.decode()
    assert response.body == BODY


async def test_head_without_its_body_gets_no_guessed_etag() -> None:
    async def head_app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(START)  # Content-Length of the GET body, and no body
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(cond(head_app), "HEAD", "/")
    assert response.header("etag") is None
    assert response.header("content-length") == str(len(BODY))


async def test_other_methods_and_scopes_pass_through() -> None:
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        response = await call_http(cond(), method, "/", headers={"if-none-match": TAG.decode()})
        assert response.status == 200
        assert response.header("etag") is None
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    await cond(app)({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await cond(app)({"type": "websocket", "path": "/", "headers": []}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan", "websocket"]


async def test_lower_case_method_is_a_get_as_everywhere_in_asgi_kit() -> None:
    response = await call_http(cond(), "get", "/", headers={"if-none-match": TAG.decode()})
    assert response.status == 304


async def test_excluded_paths_are_untouched() -> None:
    mw = cond(exclude_paths=["/raw/*"])
    response = await call_http(mw, "GET", "/raw/x", headers={"if-none-match": TAG.decode()})
    assert response.status == 200
    assert response.header("etag") is None


# --------------------------------------------------------------------------- 304


def assert_not_modified(response: Any, etag: str) -> None:
    assert response.status == 304
    assert response.body == b""
    assert response.header_all("etag") == [etag]
    for name in ("content-type", "content-length", "content-encoding"):
        assert response.header(name) is None, name
    for name, value in (
        ("cache-control", "max-age=60"),
        ("vary", "Accept"),
        ("date", "Thu, 04 Dec 2026 03:00:00 GMT"),
        ("expires", "Thu, 04 Dec 2026 03:01:00 GMT"),
        ("content-location", "/items.json"),
        ("x-custom", "kept"),
    ):
        assert response.header(name) == value, name


@pytest.mark.parametrize(
    "if_none_match",
    [
        TAG.decode(),
        "W/" + TAG.decode(),
        f'"other", {TAG.decode()}',
        f'W/"a", "b,c" ,{TAG.decode()} , "d"',
        "*",
        " * ",
    ],
)
async def test_if_none_match_matching_gives_304(if_none_match: str) -> None:
    response = await call_http(cond(), "GET", "/", headers={"if-none-match": if_none_match})
    echoed = "W/" + TAG.decode() if if_none_match.startswith("W/" + TAG.decode()) else TAG.decode()
    assert_not_modified(response, echoed)


async def test_if_none_match_split_over_several_headers() -> None:
    headers = [("if-none-match", '"x"'), ("If-None-Match", TAG.decode())]
    response = await call_http(cond(), "GET", "/", headers=headers)
    assert response.status == 304


@pytest.mark.parametrize(
    "if_none_match",
    ['"other"', TAG.decode()[:-2] + '"', "W/", '"', "", ", ,", '*, "x"', TAG.decode()[1:]],
)
async def test_if_none_match_not_matching_gives_the_200(if_none_match: str) -> None:
    response = await call_http(cond(), "GET", "/", headers={"if-none-match": if_none_match})
    assert response.status == 200
    assert response.body == BODY
    assert response.header("etag") == TAG.decode()


async def test_weak_tag_from_the_client_is_echoed_in_the_304() -> None:
    response = await call_http(cond(), "GET", "/", headers={"if-none-match": "W/" + TAG.decode()})
    assert response.status == 304
    assert response.header("etag") == "W/" + TAG.decode()


async def test_app_etag_gives_a_304_without_reading_a_streamed_body() -> None:
    produced: list[int] = []

    async def big_stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"ETag", b'"big-v1"')]}
        )
        for i in range(3):
            produced.append(i)
            await send({"type": "http.response.body", "body": b"x" * 10**6, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    response = await call_http(cond(big_stream), "GET", "/", headers={"if-none-match": '"big-v1"'})
    assert response.status == 304
    assert response.header("etag") == '"big-v1"'
    assert [m["type"] for m in response.messages] == ["http.response.start", "http.response.body"]


async def test_set_cookie_is_kept_on_the_304() -> None:
    app = with_headers((b"Set-Cookie", b"session=abc; Path=/; HttpOnly"))
    response = await call_http(cond(app), "GET", "/", headers={"if-none-match": TAG.decode()})
    assert response.status == 304
    assert response.header("set-cookie") == "session=abc; Path=/; HttpOnly"


async def test_representation_headers_are_dropped_from_the_304() -> None:
    app = with_headers(
        (b"ETag", b'"v1"'),
        (b"Content-Encoding", b"gzip"),
        (b"Content-Language", b"en"),
        (b"Content-Digest", b"sha-256=:abc=:"),
    )
    response = await call_http(cond(app), "GET", "/", headers={"if-none-match": '"v1"'})
    assert response.status == 304
    for name in ("content-encoding", "content-language", "content-digest", "content-type"):
        assert response.header(name) is None


# --------------------------------------------------------------------------- If-Modified-Since


def lm_app(last_modified: bytes = LAST_MODIFIED, *extra: tuple[bytes, bytes]) -> Any:
    return with_headers((b"Last-Modified", last_modified), *extra)


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 304),  # equal
        ("Thu, 22 Oct 2015 07:28:00 GMT", 304),  # later
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 304),  # RFC 850
        ("Wed Oct 21 07:28:00 2015", 304),  # asctime
        ("Wed, 21 Oct 2015 07:27:59 GMT", 200),  # earlier: modified since
        ("Wed, 21 Oct 2015 07:28:00 +0000", 200),  # not an HTTP-date: ignored
        ("yesterday", 200),
        ("", 200),
    ],
)
async def test_if_modified_since(since: str, status: int) -> None:
    response = await call_http(cond(lm_app()), "GET", "/", headers={"if-modified-since": since})
    assert response.status == status
    if status == 304:
        assert response.header("last-modified") == LAST_MODIFIED.decode()
        assert response.header("etag") == TAG.decode()  # the tag the 200 would carry
        assert response.body == b""


async def test_if_modified_since_is_ignored_when_if_none_match_is_present() -> None:
    headers = {"if-modified-since": "Thu, 22 Oct 2015 07:28:00 GMT", "if-none-match": '"old"'}
    response = await call_http(cond(lm_app()), "GET", "/", headers=headers)
    assert response.status == 200


async def test_if_modified_since_for_other_methods_is_ignored() -> None:
    headers = {"if-modified-since": "Thu, 22 Oct 2015 07:28:00 GMT"}
    response = await call_http(cond(lm_app()), "POST", "/", headers=headers)
    assert response.status == 200


async def test_if_modified_since_with_an_app_etag_decides_at_the_start() -> None:
    app = with_headers((b"Last-Modified", LAST_MODIFIED), (b"ETag", b'"v2"'), chunks=[b"a", b"b"])
    headers = {"if-modified-since": "Thu, 22 Oct 2015 07:28:00 GMT"}
    response = await call_http(cond(app), "GET", "/", headers=headers)
    assert response.status == 304
    assert response.header("etag") == '"v2"'


async def test_unreadable_last_modified_is_never_a_match() -> None:
    headers = {"if-modified-since": "Thu, 22 Oct 2015 07:28:00 GMT"}
    response = await call_http(cond(lm_app(b"garbage")), "GET", "/", headers=headers)
    assert response.status == 200


# --------------------------------------------------------------------------- HTTP dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784111777),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 784111777),
        ("Sun Nov  6 08:49:37 1994", 784111777),
        ("  Sun, 06 Nov 1994 08:49:37 GMT\t", 784111777),
        ("Sun, 06 Nov 1994 08:49:60 GMT", 784111800),  # leap second, as the grammar allows
        ("Sun, 6 Nov 1994 08:49:37 GMT", None),  # two-digit day required
        ("Sun, 06 Nov 1994 08:49:37 UTC", None),
        ("Sun, 06 nov 1994 08:49:37 GMT", None),  # case-sensitive, as the grammar is
        ("sun, 06 Nov 1994 08:49:37 GMT", None),
        ("Sun, 31 Feb 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 1994 24:00:00 GMT", None),
        ("Sun, 06 Nov 1994 08:60:00 GMT", None),
        ("Sun, 00 Nov 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 0000 08:49:37 GMT", None),
        ("Sun Nov 6 08:49:37 1994", None),  # asctime pads with a space
        ("Sun, 06 Nov 1994 08:49:37", None),
        ("1994-11-06T08:49:37Z", None),
        ("Sun, 06 Nov 1994 08:49:37 GMT GMT", None),
        ("", None),
        ("\uff33un, 06 Nov 1994 08:49:37 GMT", None),  # a full-width S
    ],
)
def test_parse_http_date(text: str, expected: int | None) -> None:
    assert parse_http_date(text) == expected
    if not any(ord(c) > 127 for c in text):
        assert parse_http_date(text.encode()) == expected


def test_rfc850_two_digit_years_are_read_in_a_50_year_window() -> None:
    now = calendar.timegm((2026, 12, 4, 0, 0, 0, 0, 0, 0))
    year = time.gmtime(parse_http_date("Friday, 01-Jan-76 00:00:00 GMT", now)).tm_year
    assert year == 2076  # exactly 50 years ahead: still the future
    year = time.gmtime(parse_http_date("Saturday, 01-Jan-77 00:00:00 GMT", now)).tm_year
    assert year == 1977  # more than 50 years ahead: the past century
    year = time.gmtime(parse_http_date("Monday, 01-Jan-24 00:00:00 GMT", now)).tm_year
    assert year == 2024


_timestamps = st.integers(min_value=0, max_value=253402300799)  # up to 9999-12-31


@given(_timestamps)
def test_imf_fixdate_round_trips(ts: int) -> None:
    assert parse_http_date(email.utils.formatdate(ts, usegmt=True)) == ts


@given(_timestamps)
def test_asctime_round_trips(ts: int) -> None:
    assert parse_http_date(time.asctime(time.gmtime(ts))) == ts


_NOW = time.time()
_YEAR = 365 * 86400


@given(st.integers(min_value=int(_NOW) - 48 * _YEAR, max_value=int(_NOW) + 48 * _YEAR))
def test_rfc850_round_trips_within_its_window(ts: int) -> None:
    now = _NOW
    parsed = time.gmtime(ts)
    text = time.strftime("%A, %d-%b-%y %H:%M:%S GMT", parsed)
    assert parse_http_date(text, now) == ts


@given(st.one_of(st.binary(max_size=60), st.text(max_size=60)))
def test_parse_http_date_never_raises(value: bytes | str) -> None:
    result = parse_http_date(value)
    assert result is None or result >= 0 or result < 0


# --------------------------------------------------------------------------- entity tags

_etagc = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"'),
    max_size=20,
)


@given(_etagc, st.lists(_etagc, max_size=5), st.integers(min_value=0, max_value=5), st.booleans())
def test_a_tag_anywhere_in_a_list_matches(
    opaque: str, others: list[str], at: int, weak: bool
) -> None:
    etag = f'"{opaque}"'.encode()
    items = [f'"{o}"' for o in others if o != opaque]
    client = ("W/" if weak else "") + etag.decode()
    items.insert(min(at, len(items)), client)
    assert etag_matches(", ".join(items).encode(), etag) == client.encode()
    assert etag_matches(", ".join(items).encode(), b"W/" + etag) == client.encode()


@given(st.binary(max_size=200), _etagc)
def test_etag_matches_never_raises(value: bytes, opaque: str) -> None:
    etag = f'"{opaque}"'.encode()
    result = etag_matches(value, etag)
    assert result is None or isinstance(result, bytes)
    if result is not None and value.strip() != b"*":
        # A match is always the client naming exactly this opaque tag.
        assert result in value and result.removeprefix(b"W/") == etag


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.binary(max_size=40), max_size=3),
    st.lists(st.binary(max_size=40), max_size=2),
)
async def test_hostile_conditional_headers_give_200_or_304(
    inm: list[bytes], ims: list[bytes]
) -> None:
    scope = http_scope("GET", "/")
    scope["headers"] = [(b"If-None-Match", v) for v in inm] + [
        (b"if-modified-since", v) for v in ims
    ]
    response = await call_http(cond(lm_app()), scope=scope)
    assert response.status in (200, 304)
    if response.status == 200:
        assert response.body == BODY


# --------------------------------------------------------------------------- with compression


def _gzip_accepting(**headers: str) -> dict[str, str]:
    return {"accept-encoding": "gzip", **headers}


async def test_compression_outside_weakens_the_tag_and_the_304_still_matches() -> None:
    stack = CompressionMiddleware(ConditionalGetMiddleware(json_app), encodings=("gzip",))
    first = await call_http(stack, "GET", "/", headers=_gzip_accepting())
    assert first.header("content-encoding") == "gzip"
    assert gzip.decompress(first.body) == BODY
    weak = first.header("etag")
    assert weak == "W/" + TAG.decode()
    again = await call_http(stack, "GET", "/", headers=_gzip_accepting(**{"if-none-match": weak}))
    assert again.status == 304
    assert again.header("etag") == weak  # what the client stored
    assert again.header("content-encoding") is None
    assert again.body == b""
    # A client that had the identity body (strong tag) matches the same way.
    plain = await call_http(stack, "GET", "/", headers={"if-none-match": TAG.decode()})
    assert plain.status == 304


async def test_compression_inside_hashes_the_encoded_body_as_a_weak_tag() -> None:
    stack = ConditionalGetMiddleware(CompressionMiddleware(json_app, encodings=("gzip",)))
    first = await call_http(stack, "GET", "/", headers=_gzip_accepting())
    assert first.header("content-encoding") == "gzip"
    weak = first.header("etag")
    assert weak is not None and weak.startswith('W/"')
    assert "accept-encoding" in (first.header("vary") or "").lower()
    again = await call_http(stack, "GET", "/", headers=_gzip_accepting(**{"if-none-match": weak}))
    assert again.status == 304
    assert "accept-encoding" in (again.header("vary") or "").lower()
    # The identity representation has its own, strong tag.
    identity = await call_http(stack, "GET", "/")
    assert identity.header("etag") == TAG.decode()


@pytest.mark.parametrize("order", ["compression outside", "compression inside"])
async def test_app_etag_with_compression_in_either_order(order: str) -> None:
    app = with_headers((b"ETag", b'"v1"'))
    if order == "compression outside":
        stack: Any = CompressionMiddleware(ConditionalGetMiddleware(app), encodings=("gzip",))
    else:
        stack = ConditionalGetMiddleware(CompressionMiddleware(app, encodings=("gzip",)))
    first = await call_http(stack, "GET", "/", headers=_gzip_accepting())
    assert first.header("etag") == 'W/"v1"'
    for sent in ('W/"v1"', '"v1"'):
        again = await call_http(
            stack, "GET", "/", headers=_gzip_accepting(**{"if-none-match": sent})
        )
        assert again.status == 304, sent


# --------------------------------------------------------------------------- hashes


async def test_xxh3_tags_on_request() -> None:
    import xxhash

    mw = cond(etag_hash="xxh3")
    response = await call_http(mw, "GET", "/")
    assert response.header("etag") == f'"{xxhash.xxh3_128_hexdigest(BODY)}"'
    again = await call_http(mw, "GET", "/", headers={"if-none-match": response.header("etag")})
    assert again.status == 304


def test_etag_hash_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="etag_hash"):
        cond(etag_hash="md5")
    with pytest.raises(TypeError, match="etag_hash"):
        cond(etag_hash=None)
    monkeypatch.setitem(sys.modules, "xxhash", None)  # not installed
    with pytest.raises(ValueError, match="xxhash"):
        cond(etag_hash="xxh3")
