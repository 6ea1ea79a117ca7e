"""asgi_kit._plumbing.hosts: ports, Host parsing, the client address."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._plumbing.hosts import client_host, default_port, server_address, split_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("example.com", ("example.com", None)),
        ("example.com:8080", ("example.com", 8080)),
        ("[::1]:8000", ("::1", 8000)),
        ("[::1]", ("::1", None)),
        ("[::1", ("[::1", None)),
        ("example.com:99999", ("example.com", None)),
        ("example.com:", ("example.com", None)),
        ("a:b", ("a", None)),
    ],
)
def test_split_host(host: str, expected: tuple[str, int | None]) -> None:
    assert split_host(host) == expected


@given(st.text(max_size=40))
def test_split_host_never_raises(host: str) -> None:
    address, port = split_host(host)
    assert isinstance(address, str) and (port is None or 0 <= port <= 65535)


def test_server_address_prefers_host_then_scope_server() -> None:
    https = {"type": "http", "scheme": "https", "server": ("10.0.0.1", 8443)}
    assert server_address(https, b"Example.com") == ("Example.com", 443)
    assert server_address(https, b"[::1]:9000") == ("::1", 9000)
    assert server_address(https, None) == ("10.0.0.1", 8443)
    assert server_address({"type": "websocket"}, b"h") == ("h", 80)
    assert server_address({"type": "http"}, None) == ("", None)


def test_default_port_and_client() -> None:
    assert default_port("wss") == 443 and default_port("ftp") is None
    assert client_host({"client": ("1.2.3.4", 5)}) == "1.2.3.4"
    assert client_host({"client": ("", 5)}) is None
