"""Cookie codecs: signed (default) and AES-256-GCM encrypted (``encrypt=True``)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_kit import MemoryStore, SessionMiddleware
from asgi_kit.sessions.codec import CLOCK_SKEW, EncryptedCodec, SignedCodec
from asgi_kit.types import Receive, Scope, Send

from ._support.asgi import call_http

SECRET = "example-secret-key"


def app_that(action: Any) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        action(scope["session"])
        body = json.dumps(dict(scope["session"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def cookie_of(response: Any, name: str = "session") -> str | None:
    for header in response.header_all("set-cookie"):
        pair = header.split(";", 1)[0]
        if pair.startswith(name + "="):
            return pair.split("=", 1)[1]
    return None


async def write(data: dict[str, Any], **options: Any) -> str:
    response = await call_http(SessionMiddleware(app_that(lambda s: s.update(data)), **options))
    value = cookie_of(response)
    assert value is not None
    return value


async def read(value: str, **options: Any) -> dict[str, Any]:
    mw = SessionMiddleware(app_that(lambda s: None), **options)
    response = await call_http(mw, headers={"cookie": f"session={value}"})
    return dict(json.loads(response.text))


# ------------------------------------------------------------------ the codecs


@pytest.mark.parametrize("codec_type", [SignedCodec, EncryptedCodec])
def test_codecs_round_trip_and_refuse_other_contexts(codec_type: Any) -> None:
    codec = codec_type([b"k1"], b"session")
    value = codec.seal(b'{"a":1}', int(time.time()))
    assert codec.open(value, 60) == b'{"a":1}'
    assert codec_type([b"k1"], b"other").open(value, 60) is None
    assert codec_type([b"k2"], b"session").open(value, 60) is None


@pytest.mark.parametrize("codec_type", [SignedCodec, EncryptedCodec])
def test_codecs_enforce_max_age_and_clock_skew(codec_type: Any) -> None:
    codec = codec_type([b"k"], b"session")
    now = int(time.time())
    assert codec.open(codec.seal(b"x", now - 100), 50) is None
    assert codec.open(codec.seal(b"x", now - 100), None) == b"x"
    assert codec.open(codec.seal(b"x", now + CLOCK_SKEW + 60), 50) is None
    assert codec.open(codec.seal(b"x", now + 10), 50) == b"x"


def test_encrypted_values_hide_the_data_and_use_fresh_nonces() -> None:
    codec = EncryptedCodec([b"k"], b"session")
    first = codec.seal(b'{"user":"alice"}', 0)
    second = codec.seal(b'{"user":"alice"}', 0)
    assert first != second
    raw = base64.urlsafe_b64decode(first + b"=" * (-len(first) % 4))
    assert b"alice" not in raw and b"alice" not in first


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_encrypted_codec_never_raises_on_hostile_values(value: bytes) -> None:
    assert EncryptedCodec([b"k"], b"session").open(value, 60) is None


# ------------------------------------------------------------ encrypt=True


async def test_encrypted_session_round_trips_and_is_unreadable() -> None:
    value = await write({"user": "alice", "roles": ["admin"]}, secret_key=SECRET, encrypt=True)
    assert "alice" not in value
    assert "alice" not in base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode(
        "latin-1"
    )
    assert await read(value, secret_key=SECRET, encrypt=True) == {
        "user": "alice",
        "roles": ["admin"],
    }


async def test_signed_and_encrypted_cookies_do_not_open_each_other() -> None:
    signed = await write({"a": 1}, secret_key=SECRET)
    encrypted = await write({"a": 1}, secret_key=SECRET, encrypt=True)
    assert await read(signed, secret_key=SECRET, encrypt=True) == {}
    assert await read(encrypted, secret_key=SECRET) == {}


async def test_encryption_key_rotation_encrypts_with_first_and_accepts_all() -> None:
    old = await write({"v": "old"}, secret_key="old-secret", encrypt=True)
    rotated = {"secret_key": ["new-secret", "old-secret"], "encrypt": True}
    assert await read(old, **rotated) == {"v": "old"}
    new = await write({"v": "new"}, **rotated)
    assert await read(new, secret_key="new-secret", encrypt=True) == {"v": "new"}
    assert await read(new, secret_key="old-secret", encrypt=True) == {}


async def test_tampered_encrypted_cookie_gives_an_empty_session() -> None:
    value = await write({"user": "alice"}, secret_key=SECRET, encrypt=True)
    for i in range(0, len(value), 7):
        flipped = value[:i] + ("A" if value[i] != "A" else "B") + value[i + 1 :]
        assert await read(flipped, secret_key=SECRET, encrypt=True) == {}
    assert await read(value[:-5], secret_key=SECRET, encrypt=True) == {}


async def test_encrypted_cookie_expires_on_the_server() -> None:
    codec = EncryptedCodec([SECRET.encode()], b"session")
    stale = codec.seal(b'{"user":"alice"}', int(time.time()) - 7200).decode()
    assert await read(stale, secret_key=SECRET, encrypt=True, max_age=3600) == {}
    fresh = codec.seal(b'{"user":"alice"}', int(time.time())).decode()
    assert await read(fresh, secret_key=SECRET, encrypt=True, max_age=3600) == {"user": "alice"}


async def test_rolling_reencrypts_an_unchanged_session() -> None:
    value = await write({"user": "alice"}, secret_key=SECRET, encrypt=True)
    mw = SessionMiddleware(app_that(lambda s: None), SECRET, encrypt=True, rolling=True)
    response = await call_http(mw, headers={"cookie": f"session={value}"})
    renewed = cookie_of(response)
    assert renewed is not None and renewed != value
    assert await read(renewed, secret_key=SECRET, encrypt=True) == {"user": "alice"}


def test_encrypt_is_for_the_cookie_store_only() -> None:
    with pytest.raises(ValueError, match="encrypt"):
        SessionMiddleware(app_that(lambda s: None), SECRET, store=MemoryStore(), encrypt=True)
    with pytest.raises(TypeError, match="encrypt"):
        SessionMiddleware(app_that(lambda s: None), SECRET, encrypt="yes")  # type: ignore[arg-type]
