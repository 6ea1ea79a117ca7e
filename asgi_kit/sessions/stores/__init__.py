"""Session stores: the signed cookie itself, process memory, Redis."""

from .base import DEFAULT_TTL, JSONSerializer, SerializationError, Serializer, SessionStore
from .cookie import CookieStore
from .memory import MemoryStore
from .redis import RedisStore

__all__ = [
    "DEFAULT_TTL",
    "CookieStore",
    "JSONSerializer",
    "MemoryStore",
    "RedisStore",
    "SerializationError",
    "Serializer",
    "SessionStore",
]
