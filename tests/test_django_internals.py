"""The Django private names the adapters rely on (asgi_kit.contrib.django._internals).

Each test states one assumption about the installed Django; a Django release
that moves a name fails here, naming it, before the adapters misbehave.
"""

from __future__ import annotations

import io

import pytest
from django.http import HttpResponse, StreamingHttpResponse
from django.test import AsyncRequestFactory, RequestFactory

from asgi_kit.contrib.django._internals import (
    body_stream_started,
    first_closer,
    preread_body,
    replace_body,
    take_over_closers,
)
from tests.apps.django_project import configure


@pytest.fixture(autouse=True)
def _django() -> None:
    configure()


def _requests() -> list[object]:
    return [
        RequestFactory().post(
            "/x", data=b"a=1&b=2", content_type="application/x-www-form-urlencoded"
        ),
        AsyncRequestFactory().post(
            "/x", data=b"a=1&b=2", content_type="application/x-www-form-urlencoded"
        ),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["wsgi", "asgi"])
def test_read_state_follows_django(index: int) -> None:
    request = _requests()[index]
    assert preread_body(request) is None
    assert not body_stream_started(request)
    assert request.read(1) == b"a"  # type: ignore[attr-defined]
    assert body_stream_started(request)
    other = _requests()[index]
    assert other.body == b"a=1&b=2"  # type: ignore[attr-defined]
    assert preread_body(other) == b"a=1&b=2"


@pytest.mark.parametrize("index", [0, 1], ids=["wsgi", "asgi"])
def test_replace_body_is_what_the_view_reads(index: int) -> None:
    request = _requests()[index]
    assert request.POST["a"] == "1"  # type: ignore[attr-defined]
    replace_body(request, io.BytesIO(b"a=9"), 3)
    assert not body_stream_started(request)
    assert request.POST["a"] == "9"  # type: ignore[attr-defined]
    assert request.META["CONTENT_LENGTH"] == "3"  # type: ignore[attr-defined]
    again = _requests()[index]
    replace_body(again, io.BytesIO(b"new body"), 8)
    assert again.body == b"new body"  # type: ignore[attr-defined]


def test_closers_run_first_and_move_to_the_replacement() -> None:
    calls: list[str] = []
    replaced = HttpResponse(b"x")
    replaced._resource_closers.append(lambda: calls.append("replaced"))
    response = StreamingHttpResponse(iter([b"x"]))
    take_over_closers(response, replaced)
    first_closer(response, lambda: calls.append("first"))
    replaced.close()
    assert calls == []
    response.close()
    assert calls == ["first", "replaced"]
