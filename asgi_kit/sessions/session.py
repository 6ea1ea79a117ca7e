"""The session mapping: a ``dict`` that records when it is read and changed.

``scope["session"]`` is a :class:`Session`.  It is a real ``dict`` subclass, so
Starlette's ``request.session``, ``json.dumps(session)``, ``dict(session)`` and
every ``dict`` method keep working; the middleware reads the two flags it keeps
(:attr:`Session.accessed`, :attr:`Session.modified`) when the response starts.

Only changes made through the mapping's own methods are seen.  Mutating a value
stored inside the session (``session["cart"].append(item)``) changes an object
the session merely refers to, so call :meth:`Session.mark_modified` afterwards
(or assign the value again: ``session["cart"] = cart``).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, ValuesView
from typing import Any

__all__ = ["Session", "SessionNotLoaded"]


class SessionNotLoaded(RuntimeError):
    """The session was used before ``await load_session(scope)``.

    Raised by every read and write of ``scope["session"]`` when the middleware
    runs with ``autoload=False`` and the application has not loaded the
    session yet.
    """


_NOT_LOADED = (
    "the session has not been loaded: SessionMiddleware runs with autoload=False, "
    "so call `await asgi_kit.sessions.load_session(scope)` (or request.scope) before "
    "using the session"
)


class Session(dict[str, Any]):
    """A ``dict`` of session data that tracks reads and changes.

    Attributes:
        accessed: True once the application read or changed the session; the
            middleware then adds ``Vary: Cookie`` to the response.
        modified: True once the application changed the session; the
            middleware then saves it and sends the cookie.
        unavailable: True when the request carried a session but the
            server-side store failed to load it (an outage).  The session
            is then empty, and nothing done to it is saved (not even
            ``clear()``), so the stored record and the browser's cookie
            survive the outage.
    """

    __slots__ = ("_ready", "_regenerate", "accessed", "loaded", "modified", "unavailable")

    def __init__(self, data: Iterable[tuple[str, Any]] | dict[str, Any] = (), /) -> None:
        dict.__init__(self, data)
        #: False only while the middleware waits for ``load_session``.
        self.loaded = True
        self.accessed = False
        self.modified = False
        self.unavailable = False
        # Fast-path flag: loaded and already marked accessed.
        self._ready = False
        self._regenerate = False

    # ------------------------------------------------------------------ flags

    def _touch(self) -> None:
        if not self.loaded:
            raise SessionNotLoaded(_NOT_LOADED)
        self.accessed = True
        self._ready = True

    def mark_modified(self) -> None:
        """Mark the session as changed, so it is saved and the cookie is sent.

        Call this after changing an object stored *inside* the session (a list
        or dict value), which the session cannot see by itself.
        """
        self._touch()
        self.modified = True

    def regenerate_id(self) -> None:
        """Give the session a new id when the response is sent (server-side stores).

        Call it when the privilege level changes (log-in, log-out, sudo mode):
        the data is kept, saved under a fresh random id, the old record is
        deleted and the browser receives the new id.  This defeats session
        fixation.  With the cookie store there is no id; the cookie is simply
        re-issued.  Same as :func:`asgi_kit.sessions.regenerate_id`.
        """
        self.mark_modified()
        self._regenerate = True

    # ------------------------------------------------------------------ reads

    def __getitem__(self, key: str) -> Any:
        if not self._ready:
            self._touch()
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None, /) -> Any:
        if not self._ready:
            self._touch()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        if not self._ready:
            self._touch()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        if not self._ready:
            self._touch()
        return dict.__iter__(self)

    def __len__(self) -> int:
        if not self._ready:
            self._touch()
        return dict.__len__(self)

    def keys(self) -> KeysView[str]:  # type: ignore[override]
        if not self._ready:
            self._touch()
        return dict.keys(self)

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        if not self._ready:
            self._touch()
        return dict.values(self)

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        if not self._ready:
            self._touch()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` copy of the data."""
        if not self._ready:
            self._touch()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        if not self._ready:
            self._touch()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        result = self.copy()
        result.update(other)
        return result

    def __ror__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        if not self._ready:
            self._touch()
        result = dict(other)
        result.update(dict.items(self))
        return result

    def __reversed__(self) -> Iterator[str]:
        if not self._ready:
            self._touch()
        return dict.__reversed__(self)

    def __repr__(self) -> str:
        if not self.loaded:
            return "Session(<not loaded>)"
        return f"Session({dict.__repr__(self)})"

    # ----------------------------------------------------------------- writes

    def __setitem__(self, key: str, value: Any) -> None:
        self.mark_modified()
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self._touch()
        dict.__delitem__(self, key)
        self.modified = True

    def clear(self) -> None:
        """Remove everything: the cookie is expired and a stored record deleted.

        Data added after ``clear()`` in the same request is saved under a new
        id (server-side stores), as after :meth:`regenerate_id`.
        """
        self.mark_modified()
        self._regenerate = True
        dict.clear(self)

    def pop(self, key: str, *default: Any) -> Any:
        self._touch()
        if dict.__contains__(self, key):
            self.modified = True
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._touch()
        item = dict.popitem(self)
        self.modified = True
        return item

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        self._touch()
        if not dict.__contains__(self, key):
            self.modified = True
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.mark_modified()
        dict.update(self, *args, **kwargs)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override]
        self.mark_modified()
        dict.update(self, other)
        return self

    # ----------------------------------------------------------------- pickling

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(dict.items(self)),))
