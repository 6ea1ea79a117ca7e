"""asgi_kit.logging keeps every name it had before request ids and the access log moved out."""

from __future__ import annotations

import asgi_kit
import asgi_kit.access_log
import asgi_kit.logging
import asgi_kit.request_id


def test_logging_reexports_the_request_id_and_access_log_modules() -> None:
    from asgi_kit.logging import AccessLogMiddleware, RequestIDMiddleware, get_request_id

    assert RequestIDMiddleware is asgi_kit.request_id.RequestIDMiddleware
    assert get_request_id is asgi_kit.request_id.get_request_id
    assert AccessLogMiddleware is asgi_kit.access_log.AccessLogMiddleware
    for name in asgi_kit.logging.__all__:
        assert getattr(asgi_kit.logging, name) is not None
    assert asgi_kit.AccessLogMiddleware is AccessLogMiddleware
    assert asgi_kit.RequestIDMiddleware is RequestIDMiddleware
