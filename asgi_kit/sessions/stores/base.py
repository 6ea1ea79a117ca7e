"""What a session store is, and how session data becomes bytes."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

__all__ = ["DEFAULT_TTL", "JSONSerializer", "SerializationError", "Serializer", "SessionStore"]

#: Lifetime of a server-side record when the middleware's ``max_age`` is None
#: (a browser-session cookie): 14 days, Starlette's default ``max_age``.
DEFAULT_TTL = 14 * 24 * 60 * 60


class SerializationError(TypeError):
    """The application put a value into the session that cannot be serialised.

    This is a programming error, so it propagates (from the ``send`` of the
    response start) instead of being logged like a store outage.
    """


@runtime_checkable
class Serializer(Protocol):
    """Turns session data into bytes and back (JSON by default; never pickle).

    ``loads`` may raise any :class:`Exception` on bytes it cannot read; the
    session is then treated as empty.
    """

    def dumps(self, data: dict[str, Any]) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


# Built once: json.dumps() with non-default options builds a new encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class JSONSerializer:
    """Compact UTF-8 JSON.  Values must be JSON-serialisable (str, int, list …)."""

    __slots__ = ()

    def dumps(self, data: dict[str, Any]) -> bytes:
        try:
            return _ENCODE(data).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"session data is not JSON-serialisable: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        return json.loads(data.decode("utf-8"))


class SessionStore(ABC):
    """A server-side store: the cookie carries only a signed random session id.

    Subclass it to keep sessions elsewhere.  Methods may raise on outages; the
    middleware catches every :class:`Exception`, logs it and degrades (an
    empty session on a failed load, no cookie on a failed save), so a store
    never turns a request into a 500.  ``ttl`` is the middleware's
    ``max_age`` in seconds, or None for a browser-session cookie, in which
    case the store uses its own ``default_ttl``.
    """

    @abstractmethod
    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The data saved under ``session_id``, or None when unknown or expired."""

    @abstractmethod
    async def save(self, session_id: str, data: dict[str, Any], ttl: int | None) -> None:
        """Save ``data`` under ``session_id``, expiring after ``ttl`` seconds."""

    @abstractmethod
    async def delete(self, session_id: str) -> None:
        """Delete the record (no error when it does not exist)."""

    async def touch(self, session_id: str, ttl: int | None) -> None:
        """Extend a record's lifetime to ``ttl`` (used with ``rolling=True``).

        The default loads and saves the record again; stores override it with
        a cheaper call.
        """
        data = await self.load(session_id)
        if data is not None:
            await self.save(session_id, data, ttl)


def check_positive_int(value: object, option: str = "default_ttl") -> int:
    """Validate an option that must be a positive int (seconds, counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{option} must be a positive int, got {value!r}")
    return value


def check_serializer(serializer: object) -> Serializer:
    """Validate a ``serializer`` option; None gives :class:`JSONSerializer`."""
    if serializer is None:
        return JSONSerializer()
    if not isinstance(serializer, Serializer):
        raise TypeError("serializer must have dumps(data) -> bytes and loads(bytes) methods")
    return serializer


def decode_record(serializer: Serializer, raw: bytes) -> dict[str, Any] | None:
    """Deserialize a stored record; None when it is unreadable or not a mapping."""
    try:
        data = serializer.loads(raw)
    except Exception:
        return None
    return data if isinstance(data, dict) else None
