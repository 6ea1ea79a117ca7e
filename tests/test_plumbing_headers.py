"""asgi_kit._plumbing.headers: the one-pass request header scan."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._plumbing.headers import HeaderScan, header_value, normalize_header_name

BROWSER = [
    (b"host", b"example.com"),
    (b"user-agent", b"Mozilla/5.0"),
    (b"Origin", b"https://a.example"),
    (b"accept", b"*/*"),
    (b"access-control-request-headers", b"x-a"),
    (b"Access-Control-Request-Headers", b"x-b"),
    (b"origin", b"https://second.example"),
]


def test_scan_finds_every_wanted_name_in_any_case() -> None:
    scan = HeaderScan((b"origin", b"host", b"access-control-request-headers"))
    found = scan.scan(BROWSER)
    assert found == {
        b"host": b"example.com",
        b"origin": b"https://a.example",  # the first value wins
        b"access-control-request-headers": b"x-a",
    }


def test_scan_joins_list_valued_headers() -> None:
    name = b"access-control-request-headers"
    found = HeaderScan((b"origin", name), lists=(name,)).scan(BROWSER)
    assert found is not None and found[name] == b"x-a, x-b"
    cookies = HeaderScan((b"cookie",), lists=(b"cookie",), sep=b"; ")
    assert cookies.scan([(b"cookie", b"a=1"), (b"cookie", b"b=2")]) == {b"cookie": b"a=1; b=2"}


def test_scan_allocates_nothing_when_nothing_matches() -> None:
    assert HeaderScan((b"x-missing", b"range")).scan(BROWSER) is None
    assert HeaderScan((b"origin",)).scan([]) is None


@pytest.mark.parametrize(
    ("names", "lists"), [((b"Origin",), ()), (("origin",), ()), ((b"",), ()), ((b"a",), (b"b",))]
)
def test_scan_refuses_bad_configuration(names: tuple[object, ...], lists: tuple[bytes]) -> None:
    with pytest.raises(ValueError, match="HeaderScan"):
        HeaderScan(names, lists)  # type: ignore[arg-type]


@given(
    st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=12)), max_size=20),
    st.sets(st.sampled_from([b"a", b"ab", b"origin", b"host", b"x"]), min_size=1),
)
def test_scan_agrees_with_header_value(
    headers: list[tuple[bytes, bytes]], names: set[bytes]
) -> None:
    found = HeaderScan(names).scan(headers) or {}
    for name in names:
        assert found.get(name) == header_value(headers, name)


def test_normalize_header_name_types() -> None:
    with pytest.raises(TypeError, match="expose_headers"):
        normalize_header_name(3, "expose_headers")  # type: ignore[arg-type]
    assert normalize_header_name("X-Total", "expose_headers") == b"x-total"
