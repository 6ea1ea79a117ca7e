"""Request ids and one structured access-log event per request.

The two middleware live in their own modules, :mod:`asgi_kit.request_id`
(:class:`RequestIDMiddleware`, :func:`get_request_id`) and
:mod:`asgi_kit.access_log` (:class:`AccessLogMiddleware`); this module keeps
the import path ``asgi_kit.logging`` working for both.
"""

from __future__ import annotations

from .access_log import DEFAULT_LEVELS, AccessLogMiddleware
from .request_id import (
    MAX_ID_LENGTH,
    REQUEST_ID_KEY,
    RequestIDMiddleware,
    get_request_id,
    is_valid_request_id,
    uuid4_hex,
)

__all__ = [
    "DEFAULT_LEVELS",
    "MAX_ID_LENGTH",
    "REQUEST_ID_KEY",
    "AccessLogMiddleware",
    "RequestIDMiddleware",
    "get_request_id",
    "is_valid_request_id",
    "uuid4_hex",
]
