"""What the middleware remembers about one request's session, outside the session.

The application's ``scope["session"]`` holds the user's data and the flags
the application sets (read, changed, regenerate).  Everything else the
middleware needs between loading and committing (the cookie it came from,
the record id, the verified payload, how many cookie parts it spanned, and
how to load it later with ``autoload=False``) lives here, in the scope under
:data:`STATE_KEY`, so the session module needs nothing from the middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgi_kit.types import RawHeaders

__all__ = ["STATE_KEY", "SessionState"]

#: Scope key of the per-request :class:`SessionState`.
STATE_KEY = "asgi_kit.session_state"


class SessionState:
    """Per-request bookkeeping of one ``SessionMiddleware``."""

    __slots__ = ("chunks", "cookie", "data", "headers", "load", "load_failed", "session_id")

    def __init__(self, cookie: str | None, headers: RawHeaders) -> None:
        #: The session cookie's value as the browser sent it (None: no cookie).
        self.cookie = cookie
        #: The request headers (other same-named cookies, cookie parts).
        self.headers = headers
        #: Server-side stores: the id the session was loaded from (None: new).
        self.session_id: str | None = None
        #: Cookie store: the verified serialised data, re-sealed by rolling sessions.
        self.data: bytes | None = None
        #: How many cookies the request's session spanned (parts to delete).
        self.chunks = 1
        #: True when a store failed to load the record: the session must not
        #: be written back over it, nor its cookie cleared.
        self.load_failed = False
        #: With ``autoload=False``: loads the session (set by the middleware).
        self.load: Callable[[], Awaitable[None]] | None = None

    def __repr__(self) -> str:
        return f"SessionState(session_id={self.session_id!r}, chunks={self.chunks})"


def state_of(scope: Any) -> SessionState | None:
    """The :class:`SessionState` in ``scope``, if a SessionMiddleware put one there."""
    state = scope.get(STATE_KEY) if hasattr(scope, "get") else None
    return state if isinstance(state, SessionState) else None
