"""Rate-limit storage backends."""

from .base import Backend, BackendError, Outcome
from .memory import MemoryBackend
from .redis import RedisBackend

__all__ = ["Backend", "BackendError", "MemoryBackend", "Outcome", "RedisBackend"]
