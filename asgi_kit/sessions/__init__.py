"""Sessions for any ASGI app: signed cookies or server-side stores (memory, Redis).

``SessionMiddleware`` is a drop-in replacement for Starlette's; see
``docs/sessions.md``.
"""

from .chunks import SessionTooLarge
from .middleware import SessionMiddleware, load_session, regenerate_id
from .session import Session, SessionNotLoaded
from .stores import (
    CookieStore,
    JSONSerializer,
    MemoryStore,
    RedisStore,
    SerializationError,
    Serializer,
    SessionStore,
)

__all__ = [
    "CookieStore",
    "JSONSerializer",
    "MemoryStore",
    "RedisStore",
    "SerializationError",
    "Serializer",
    "Session",
    "SessionMiddleware",
    "SessionNotLoaded",
    "SessionStore",
    "SessionTooLarge",
    "load_session",
    "regenerate_id",
]
