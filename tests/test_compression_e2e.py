"""CompressionMiddleware over real sockets under Uvicorn, Hypercorn, Daphne and Granian."""

from __future__ import annotations

import gzip
import time

import httpx
import pytest

from tests.apps.compression_app import EVENT_DELAY, EVENTS, PAYLOAD

from ._support.servers import LiveServerFactory

pytestmark = pytest.mark.e2e


def test_compressed_responses_sse_and_request_decoding(live_server: LiveServerFactory) -> None:
    server = live_server("tests.apps.compression_app:app")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for coding in ("br", "gzip"):
            response = client.get("/", headers={"accept-encoding": coding})
            assert response.status_code == 200
            assert response.headers["content-encoding"] == coding
            assert response.headers["vary"] == "Accept-Encoding"
            assert int(response.headers["content-length"]) < len(PAYLOAD)
            assert response.content == PAYLOAD  # httpx decoded it

        response = client.get("/", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in response.headers
        assert response.content == PAYLOAD

        # Server-Sent Events: each event must reach the client as it is produced.
        started = time.monotonic()
        seen_at: dict[int, float] = {}
        text = ""
        with client.stream("GET", "/events", headers={"accept-encoding": "br"}) as stream:
            assert stream.headers["content-encoding"] == "br"
            for piece in stream.iter_text():
                text += piece
                for i in range(len(EVENTS)):
                    if i not in seen_at and f"id: {i}\n" in text:
                        seen_at[i] = time.monotonic() - started
        assert text.encode() == b"".join(EVENTS)
        assert sorted(seen_at) == list(range(len(EVENTS)))
        # Events are produced EVENT_DELAY apart; a buffering middleware would
        # deliver them together at the end.  Generous margin for a loaded machine.
        span = (len(EVENTS) - 1) * EVENT_DELAY
        assert seen_at[len(EVENTS) - 1] - seen_at[0] > span * 0.5

        # A gzip request body is decoded before the app reads it.
        raw = PAYLOAD * 3
        response = client.post(
            "/echo", content=gzip.compress(raw), headers={"content-encoding": "gzip"}
        )
        assert response.status_code == 200
        assert response.content == raw

        bomb = gzip.compress(b"\0" * (32 * 1024 * 1024))
        response = client.post("/echo", content=bomb, headers={"content-encoding": "gzip"})
        assert response.status_code == 413
