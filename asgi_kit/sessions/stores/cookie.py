"""The default store: all session data in the signed cookie itself."""

from __future__ import annotations

from .base import Serializer, check_serializer

__all__ = ["CookieStore"]


class CookieStore:
    """Keep the whole session in the cookie (signed, not encrypted).

    The cookie is ``base64url(JSON) . issued-at . HMAC-SHA256``: anyone can
    read the data but nobody without the secret can change it, and the
    issued-at timestamp lets the server refuse cookies older than ``max_age``.
    Browsers drop cookies over 4096 bytes; such a session is logged as an
    error with its size, and you should switch to a server-side store.

    Args:
        serializer: Turns the session into bytes and back (default: JSON).
    """

    __slots__ = ("serializer",)

    def __init__(self, *, serializer: Serializer | None = None) -> None:
        self.serializer = check_serializer(serializer)

    def __repr__(self) -> str:
        return "CookieStore()"
