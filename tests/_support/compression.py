"""Compression test helpers: run a test with each installed gzip codec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asgi_kit import _codings

#: Every gzip codec the middleware can use here; zlib-ng is a dev dependency.
GZIP_BACKENDS = [b for b in (_codings.ZLIB_NG, _codings.ZLIB) if b is not None]


@pytest.fixture(params=[b.name for b in GZIP_BACKENDS])
def gzip_backend(request: pytest.FixtureRequest) -> Iterator[_codings.GzipBackend]:
    """Middleware built inside the test use this gzip codec (zlib-ng, then stdlib zlib)."""
    backend = next(b for b in GZIP_BACKENDS if b.name == request.param)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_codings, "DEFAULT_GZIP_BACKEND", backend)
        yield backend
