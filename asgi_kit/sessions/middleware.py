"""SessionMiddleware: signed-cookie and server-side sessions, drop-in for Starlette's."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from asgi_kit._backend_failures import failure_log
from asgi_kit._http import (
    MutableHeaders,
    _iter_cookie_pairs,
    asgi3,
    cookie_attributes,
    delete_cookie_header,
    get_cookie,
    set_cookie_header,
)
from asgi_kit.types import AnyASGIApp, Message, RawHeaders, Receive, Scope, Send

from .legacy import StarletteCookieReader
from .session import Session
from .signing import Signer, b64encode, normalize_secrets, safe_b64decode
from .stores.base import (
    JSONSerializer,
    SerializationError,
    Serializer,
    SessionStore,
    decode_record,
)
from .stores.cookie import CookieStore

__all__ = ["SessionMiddleware", "load_session", "regenerate_id"]

logger = logging.getLogger("asgi_kit.sessions")

#: Browsers drop a cookie whose name and value exceed this many bytes.
MAX_COOKIE_SIZE = 4096
#: Issued-at timestamps this far in the future (clock skew between hosts) are accepted.
CLOCK_SKEW = 300
#: Same-named session cookies tried after the first (stale ones from other paths).
_MAX_SAME_NAMED = 4
_SET_COOKIE = b"set-cookie"
_COOKIE = b"Cookie"
_SAME_SITE = frozenset({"lax", "strict", "none"})


class SessionMiddleware:
    """Put a dict-like session into ``scope["session"]`` for HTTP and WebSocket.

    A drop-in replacement for Starlette's ``SessionMiddleware`` (same
    parameters, in the same order), with server-side stores, lazy loading and
    key rotation.

    Args:
        app: The ASGI application to wrap (ASGI 3, or ASGI 2 double-callable).
        secret_key: Secret used to sign cookies (str or bytes), or a list of
            them: the first signs, every one verifies (key rotation).
        session_cookie: Name of the cookie.
        max_age: Lifetime in seconds, enforced by the server (the signed
            issued-at timestamp, the store's TTL) and sent as the cookie's
            ``Max-Age``; None makes a browser-session cookie.
        path: Cookie ``Path``.
        same_site: ``"lax"``, ``"strict"`` or ``"none"`` (``none`` implies Secure).
        https_only: Send the cookie with ``Secure``.
        domain: Cookie ``Domain`` (None: the request's host only).
        partitioned: Send the cookie with ``Partitioned`` (CHIPS; implies Secure).
        store: None or :class:`CookieStore` keeps the session in the signed
            cookie; a :class:`MemoryStore`, :class:`RedisStore` or any
            :class:`SessionStore` keeps it on the server and the cookie only
            carries a signed random id.
        rolling: Re-send the cookie (and extend the stored record) on every
            response to a request with a session, so ``max_age`` counts from
            the last request instead of the last change.
        autoload: Load the session before the application runs.  With False
            nothing is decoded or fetched until the application awaits
            :func:`load_session`; using the session before raises
            :class:`SessionNotLoaded`.
        accept_starlette_cookies: Migration aid: also accept session cookies
            written by Starlette's ``SessionMiddleware`` with the same
            ``secret_key`` and cookie name, and re-issue them in this
            middleware's format (or move them into the server-side store) on
            the same response.  Turn it off after ``max_age``.
    """

    def __init__(
        self,
        app: AnyASGIApp,
        secret_key: str | bytes | Sequence[str | bytes],
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        same_site: str = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
        store: CookieStore | SessionStore | None = None,
        rolling: bool = False,
        autoload: bool = True,
        *,
        accept_starlette_cookies: bool = False,
    ) -> None:
        self.app = asgi3(app)
        secrets_list = normalize_secrets(secret_key)
        if not isinstance(session_cookie, str) or not session_cookie:
            raise ValueError(f"session_cookie must be a non-empty str, got {session_cookie!r}")
        if max_age is not None and (
            isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0
        ):
            raise ValueError(
                f"max_age must be a positive number of seconds, or None for a "
                f"browser-session cookie; got {max_age!r}"
            )
        if not isinstance(same_site, str) or same_site.lower() not in _SAME_SITE:
            raise ValueError(f"same_site must be 'lax', 'strict' or 'none', got {same_site!r}")
        for option, flag in (
            ("https_only", https_only),
            ("partitioned", partitioned),
            ("rolling", rolling),
            ("autoload", autoload),
            ("accept_starlette_cookies", accept_starlette_cookies),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{option} must be a bool, got {flag!r}")
        if domain is not None and not isinstance(domain, str):
            raise TypeError(f"domain must be a str or None, got {domain!r}")
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, got {path!r}")
        if store is None:
            store = CookieStore()
        if not isinstance(store, (CookieStore, SessionStore)):
            raise TypeError(
                "store must be None, CookieStore(), MemoryStore(), RedisStore(...) or a "
                f"SessionStore subclass, got {store!r}"
            )

        self.session_cookie = session_cookie
        self.max_age = max_age
        self.rolling = rolling
        self.autoload = autoload
        self.store = store
        same_site = same_site.lower()
        common: dict[str, Any] = {
            "path": path,
            "domain": domain,
            "secure": https_only,
            "httponly": True,
            "samesite": same_site,
            "partitioned": partitioned,
        }
        try:
            self._attributes = cookie_attributes(max_age=max_age, **common)
            # Validates the cookie name too.
            self._delete_header = delete_cookie_header(session_cookie, cookie_attributes(**common))
        except ValueError as exc:
            raise ValueError(f"SessionMiddleware: {exc}") from exc
        self._legacy = StarletteCookieReader(secrets_list) if accept_starlette_cookies else None
        # "name=" + value + "; attributes", split once from the shared builder
        # so the hot path only concatenates (values are base64url, always valid).
        template = set_cookie_header(session_cookie, "", self._attributes)
        split = len(session_cookie) + 1
        self._cookie_head, self._cookie_tail = template[:split], template[split:]
        context = session_cookie.encode("ascii")
        self._server_store: SessionStore | None
        if isinstance(store, CookieStore):
            self._server_store = None
            self._serializer: Serializer = store.serializer
            self._signer = Signer(secrets_list, b"cookie/" + context)
        else:
            self._server_store = store
            self._serializer = JSONSerializer()  # unused: the store serialises
            self._signer = Signer(secrets_list, b"id/" + context)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type != "http" and scope_type != "websocket":
            await self.app(scope, receive, send)
            return

        headers = scope["headers"]
        cookie = get_cookie(headers, self.session_cookie)
        session = Session()
        if not self.autoload:
            session.loaded = False
            session._middleware = self
            session._cookie = cookie
            session._headers = headers
        elif cookie is not None:
            if self._server_store is None:
                self._load_cookie(session, cookie, headers)
            else:
                await self._load_record(session, cookie, headers)
        scope["session"] = session

        if scope_type == "websocket":
            # A WebSocket cannot set cookies: the session is read-only there.
            await self.app(scope, receive, send)
            if session.modified and session.accessed:  # changed by the app
                logger.warning(
                    "session changed during a WebSocket connection (path %s); the change "
                    "is not saved because a WebSocket cannot set cookies",
                    scope.get("path"),
                )
            return

        store = self._server_store
        had_cookie = cookie is not None

        committed = False

        async def send_wrapper(message: Message) -> None:
            nonlocal committed
            # Once only: if committing raised (unserialisable data), the app's
            # error page must not run into the same error again.
            if message["type"] == "http.response.start" and not committed:
                committed = True
                current = session
                replaced = scope.get("session")
                if (
                    replaced is not session
                    and isinstance(replaced, Mapping)
                    # Another SessionMiddleware nested inside owns that one.
                    and not isinstance(replaced, Session)
                ):
                    current = _replacement(session, replaced)
                if store is None:
                    header = self._commit_cookie(current, had_cookie)
                else:
                    header = await self._commit_store(store, current, had_cookie)
                if header is not None or current.accessed:
                    message, headers = MutableHeaders.copy_of(message)
                    if current.accessed:
                        headers.add_vary(_COOKIE)
                    if header is not None:
                        headers.add(_SET_COOKIE, header)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    # --------------------------------------------------------------- loading

    async def load(self, session: Session) -> None:
        """Load a session created with ``autoload=False`` (see :func:`load_session`)."""
        if session.loaded:
            return
        cookie = session._cookie
        if cookie is not None:
            headers = session._headers or ()
            if self._server_store is None:
                self._load_cookie(session, cookie, headers)
            else:
                await self._load_record(session, cookie, headers)
        session._headers = None
        session.loaded = True

    def _load_legacy(self, session: Session, raw: bytes) -> None:
        """Adopt the data of a valid Starlette cookie; it is re-issued in our format."""
        assert self._legacy is not None
        data = self._legacy.read(raw, self.max_age, int(time.time()))
        if data:
            dict.update(session, data)
            session.modified = True

    def _unsign(self, cookie: str, headers: RawHeaders) -> tuple[bytes, bytes | None]:
        """``cookie`` as bytes, and the message of the first same-named cookie we signed.

        A browser may send several cookies with our name (one left over from
        another ``path``/``domain``, or written by another app); the first
        one that carries our signature is the session, so a stale one sent
        first cannot log the user out on every request.
        """
        raw = cookie.encode("latin-1")
        message = self._signer.unsign(raw)
        if message is None:
            name = self.session_cookie
            seen_first = False
            budget = _MAX_SAME_NAMED  # a header full of fakes must not cost an HMAC each
            for key, value in headers:
                if len(key) != 6 or key.lower() != b"cookie":
                    continue
                for cname, cval in _iter_cookie_pairs(value.decode("latin-1")):
                    if cname != name:
                        continue
                    if not seen_first:  # that is ``cookie``, already tried
                        seen_first = True
                        continue
                    message = self._signer.unsign(cval.encode("latin-1"))
                    if message is not None:
                        return raw, message
                    budget -= 1
                    if not budget:
                        return raw, None
        return raw, message

    def _load_cookie(self, session: Session, cookie: str, headers: RawHeaders) -> None:
        """Verify and decode a cookie-store cookie into ``session`` (or leave it empty)."""
        raw, message = self._unsign(cookie, headers)
        if message is None:
            if self._legacy is not None:
                self._load_legacy(session, raw)
            return
        payload, dot, issued = message.rpartition(b".")
        if not dot or not issued.isdigit() or len(issued) > 12:
            return
        if self.max_age is not None:
            age = int(time.time()) - int(issued)
            if age > self.max_age or age < -CLOCK_SKEW:
                return
        decoded = safe_b64decode(payload)
        if decoded is None:
            return
        data = decode_record(self._serializer, decoded)
        if data:
            dict.update(session, data)
            session._payload = payload

    async def _load_record(self, session: Session, cookie: str, headers: RawHeaders) -> None:
        """Fetch the record named by a signed id cookie (one store call)."""
        raw, signed = self._unsign(cookie, headers)
        if signed is None:
            if self._legacy is not None:
                self._load_legacy(session, raw)  # saved under a new id
            return  # forged or foreign: no store call, never adopted
        session_id = signed.decode("ascii", "replace")
        store = self._server_store
        assert store is not None
        try:
            data = await store.load(session_id)
        except Exception as exc:
            # Not "no session": the record may well exist.  Flag it so the
            # commit neither overwrites nor deletes it, nor drops the cookie.
            session.store_failed = True
            _failed(store, exc, "load")
            return
        if data:
            dict.update(session, data)
            session._session_id = session_id

    # -------------------------------------------------------------- commit

    def _set_cookie(self, value: bytes) -> bytes:
        """The ``Set-Cookie`` value for a signed cookie ``value``."""
        size = len(self._cookie_head) + len(value)
        if size > MAX_COOKIE_SIZE:
            logger.error(
                "session cookie %r is %d bytes; browsers drop cookies over %d bytes, so the "
                "session will not be saved: store less, or use a server-side store",
                self.session_cookie,
                size,
                MAX_COOKIE_SIZE,
            )
        return self._cookie_head + value + self._cookie_tail

    def _sign_payload(self, payload: bytes, issued: int) -> bytes:
        return self._signer.sign(payload + b".%d" % issued)

    def _commit_cookie(self, session: Session, had_cookie: bool) -> bytes | None:
        if session.modified:
            if dict.__len__(session):
                payload = b64encode(self._serializer.dumps(session))
                return self._set_cookie(self._sign_payload(payload, int(time.time())))
            return self._delete_header if had_cookie else None
        if self.rolling and session._payload is not None:
            # Unchanged: re-sign the same payload with a fresh issued-at.
            return self._set_cookie(self._sign_payload(session._payload, int(time.time())))
        return None

    async def _commit_store(
        self, store: SessionStore, session: Session, had_cookie: bool
    ) -> bytes | None:
        session_id = session._session_id
        ttl = self.max_age
        if session.store_failed:
            if session.modified:
                logger.warning(
                    "session changed while its store was unavailable; the change is not "
                    "saved and the stored session is kept"
                )
            return None
        if session.modified:
            if not dict.__len__(session):
                if session_id is not None:
                    await _call(store.delete(session_id), "delete", store)
                return self._delete_header if had_cookie else None
            if session_id is None or session._regenerate:
                if session_id is not None:
                    await _call(store.delete(session_id), "delete", store)
                session_id = secrets.token_urlsafe(32)
            data = dict(dict.items(session))
            if await _call(store.save(session_id, data, ttl), "save", store):
                session._session_id = session_id
                return self._set_cookie(self._signer.sign(session_id.encode("ascii")))
            return None
        if (
            self.rolling
            and session_id is not None
            and await _call(store.touch(session_id, ttl), "touch", store)
        ):
            return self._set_cookie(self._signer.sign(session_id.encode("ascii")))
        return None


async def _call(awaitable: Awaitable[Any], operation: str, store: SessionStore) -> bool:
    """Run one store call; log and report failure instead of raising (never a 500)."""
    try:
        await awaitable
    except SerializationError:
        raise
    except Exception as exc:
        _failed(store, exc, operation)
        return False
    return True


def _failed(store: SessionStore, exc: Exception, operation: str) -> None:
    # Collapsed logging (first failure at once, then a summary per interval)
    # and asgi_kit_backend_failures_total{component="sessions",outcome=operation}.
    failure_log(
        "sessions", store, "session store failed", traceback=True, use_structlog=False
    ).failed(exc, operation, operation=f"failed to {operation} a session")


def _replacement(original: Session, current: Mapping[str, Any]) -> Session:
    """The application assigned a new mapping to ``scope["session"]``: save that."""
    session = Session(dict(current))
    session.accessed = True
    session.modified = True
    session._session_id = original._session_id
    session._payload = original._payload
    session.store_failed = original.store_failed
    return session


def _session_of(scope_or_connection: Any) -> Session:
    scope = getattr(scope_or_connection, "scope", scope_or_connection)
    if not isinstance(scope, Mapping):
        raise TypeError(f"expected an ASGI scope or a request, got {scope_or_connection!r}")
    session = scope.get("session")
    if not isinstance(session, Session):
        raise RuntimeError(
            "scope['session'] was not set by asgi_kit's SessionMiddleware: "
            "is the middleware installed around this application?"
        )
    return session


async def load_session(scope: Any) -> Session:
    """Load the session of this request (needed with ``autoload=False``).

    Makes at most one store call (none without a valid session cookie) and
    does nothing when the session is already loaded, so it is safe to call
    from several places.  Accepts the ASGI scope or any object with a
    ``.scope`` (Starlette/FastAPI ``Request``, ``WebSocket``).

    Returns:
        The loaded session (the same object as ``scope["session"]``).

    Raises:
        RuntimeError: ``SessionMiddleware`` is not installed.
    """
    session = _session_of(scope)
    middleware = session._middleware
    if not session.loaded and middleware is not None:
        await middleware.load(session)
    return session


def regenerate_id(scope: Any) -> None:
    """Give this request's session a new id when the response starts.

    Call it at log-in and log-out (any change of privilege).  With a
    server-side store the data is saved under a fresh random id, the old
    record is deleted and the browser gets the new id, which defeats session
    fixation.  With the cookie store the cookie is re-issued.  Accepts the
    scope or a request; same as ``scope["session"].regenerate_id()``.

    Raises:
        SessionNotLoaded: with ``autoload=False``, before :func:`load_session`.
    """
    _session_of(scope).regenerate_id()
