"""SessionMiddleware: signed-cookie and server-side sessions, drop-in for Starlette's."""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from asgi_kit._backend_failures import failure_log
from asgi_kit._http import (
    MutableHeaders,
    asgi3,
    cookie_attributes,
    delete_cookie_header,
    get_cookie,
    iter_cookie_pairs,
    set_cookie_header,
)
from asgi_kit._plumbing.options import check_positive_int, check_str
from asgi_kit.types import AnyASGIApp, Message, RawHeaders, Receive, Scope, Send

from .chunks import MAX_COOKIE_SIZE, SessionTooLarge, chunk_name, join_chunks, split_value
from .codec import CookieCodec, EncryptedCodec, SignedCodec
from .legacy import StarletteCookieReader
from .session import Session
from .signing import Signer, normalize_secrets
from .state import STATE_KEY, SessionState, state_of
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

#: Same-named session cookies tried after the first (stale ones from other paths).
_MAX_SAME_NAMED = 4
_SET_COOKIE = b"set-cookie"
_COOKIE = b"Cookie"
_SAME_SITE = frozenset({"lax", "strict", "none"})
_OVERSIZE = ("auto", "raise", "keep")
#: Upper bound of ``max_cookie_chunks``: browsers keep about 180 cookies per
#: site, and servers refuse request headers far smaller than 10 x 4 KB.
_MAX_CHUNKS = 10


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
        encrypt: Encrypt the cookie store's payload with AES-256-GCM (keys
            derived from ``secret_key``, rotated like signing keys), so the
            browser can neither read nor change it.  Needs the
            ``cryptography`` package (the ``encryption`` extra).  Only for
            the cookie store: server-side stores keep data off the client.
        max_cookie_chunks: Cookie store: a session too large for one cookie
            (4096 bytes) is split across up to this many cookies
            (``session``, ``session-1`` …).  The default, 2, keeps the
            ``Cookie`` request header under common server limits (nginx: 8 KB
            per header line).
        oversize: What happens when a session needs more than
            ``max_cookie_chunks`` cookies: ``"raise"`` raises
            :class:`SessionTooLarge` from the response's ``send``; ``"keep"``
            logs an error and sends no cookie, so the browser keeps its
            previous session; ``"auto"`` (default) raises under Python's
            development mode (``python -X dev``, ``PYTHONDEVMODE=1``) and
            keeps otherwise.
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
        encrypt: bool = False,
        *,
        max_cookie_chunks: int = 2,
        oversize: str = "auto",
        accept_starlette_cookies: bool = False,
    ) -> None:
        self.app = asgi3(app)
        secrets_list = normalize_secrets(secret_key)
        check_str("session_cookie", session_cookie)
        # max_age: seconds, or None for a browser-session cookie.
        check_positive_int("max_age", max_age, optional=True)
        check_str("same_site", same_site)
        if same_site.lower() not in _SAME_SITE:
            raise ValueError(f"same_site must be 'lax', 'strict' or 'none', got {same_site!r}")
        for option, flag in (
            ("https_only", https_only),
            ("partitioned", partitioned),
            ("rolling", rolling),
            ("autoload", autoload),
            ("encrypt", encrypt),
            ("accept_starlette_cookies", accept_starlette_cookies),
        ):
            if not isinstance(flag, bool):
                raise TypeError(f"{option} must be a bool, got {flag!r}")
        if domain is not None and not isinstance(domain, str):
            raise TypeError(f"domain must be a str or None, got {domain!r}")
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, got {path!r}")
        if isinstance(max_cookie_chunks, bool) or not isinstance(max_cookie_chunks, int):
            raise TypeError(f"max_cookie_chunks must be an int, got {max_cookie_chunks!r}")
        if not 1 <= max_cookie_chunks <= _MAX_CHUNKS:
            raise ValueError(
                f"max_cookie_chunks must be between 1 and {_MAX_CHUNKS}, got {max_cookie_chunks!r}"
            )
        if not isinstance(oversize, str):
            raise TypeError(f"oversize must be a str, got {oversize!r}")
        if oversize not in _OVERSIZE:
            raise ValueError(f"oversize must be 'auto', 'raise' or 'keep', got {oversize!r}")
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
        self.encrypt = encrypt
        self.max_cookie_chunks = max_cookie_chunks
        self._raise_oversize = oversize == "raise" or (oversize == "auto" and sys.flags.dev_mode)
        # Deleting a part the response no longer needs: same Path and Domain.
        self._delete_parts = tuple(
            delete_cookie_header(chunk_name(session_cookie, i), cookie_attributes(**common))
            for i in range(1, max_cookie_chunks)
        )
        self._part_heads = tuple(
            chunk_name(session_cookie, i).encode("ascii") + b"="
            for i in range(1, max_cookie_chunks)
        )
        self._server_store: SessionStore | None
        self._codec: CookieCodec
        if isinstance(store, CookieStore):
            self._server_store = None
            self._serializer: Serializer = store.serializer
            self._codec = (EncryptedCodec if encrypt else SignedCodec)(secrets_list, context)
        else:
            if encrypt:
                raise ValueError(
                    "encrypt=True applies to the cookie store only: a server-side store "
                    "keeps the data on the server and the cookie carries a random id"
                )
            self._server_store = store
            self._serializer = JSONSerializer()  # unused: the store serialises
            self._codec = SignedCodec(secrets_list, context)  # unused
        # Signs server-side session ids (the cookie store's codec binds its own keys).
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
        state = SessionState(cookie, headers)
        if not self.autoload:
            session.loaded = False

            async def load() -> None:
                await self._load(session, state)

            state.load = load
        elif cookie is not None:
            await self._load(session, state)
        scope["session"] = session
        scope[STATE_KEY] = state

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
        committed = False

        async def send_wrapper(message: Message) -> None:
            nonlocal committed
            # Once only: if committing raised (unserialisable or oversized
            # data), the app's error page must not run into it again.
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
                    current = _replacement(replaced)
                if store is None:
                    cookies = self._commit_cookie(current, state)
                else:
                    cookies = await self._commit_store(store, current, state)
                if cookies or current.accessed:
                    message, out = MutableHeaders.copy_of(message)
                    if current.accessed:
                        out.add_vary(_COOKIE)
                    for header in cookies:
                        out.add(_SET_COOKIE, header)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    # --------------------------------------------------------------- loading

    async def _load(self, session: Session, state: SessionState) -> None:
        """Decode or fetch the session named by the request's cookie (once)."""
        if state.cookie is not None:
            if self._server_store is None:
                self._load_cookie(session, state)
            else:
                await self._load_record(session, state)
        state.load = None
        session.loaded = True

    def _load_legacy(self, session: Session, raw: bytes) -> None:
        """Adopt the data of a valid Starlette cookie; it is re-issued in our format."""
        assert self._legacy is not None
        data = self._legacy.read(raw, self.max_age, int(time.time()))
        if data:
            dict.update(session, data)
            session.modified = True

    def _first_valid(
        self, raw: bytes, headers: RawHeaders, open_value: Callable[[bytes], bytes | None]
    ) -> bytes | None:
        """What ``open_value`` finds in the first same-named cookie that is ours.

        A browser may send several cookies with our name (one left over from
        another ``path``/``domain``, or written by another app); the first
        one that opens is the session, so a stale one sent first cannot log
        the user out on every request.
        """
        opened = open_value(raw)
        if opened is not None:
            return opened
        name = self.session_cookie
        seen_first = False
        budget = _MAX_SAME_NAMED  # a header full of fakes must not cost an HMAC each
        for key, value in headers:
            if len(key) != 6 or key.lower() != b"cookie":
                continue
            for cname, cval in iter_cookie_pairs(value.decode("latin-1")):
                if cname != name:
                    continue
                if not seen_first:  # that is ``raw``, already tried
                    seen_first = True
                    continue
                opened = open_value(cval.encode("latin-1"))
                if opened is not None:
                    return opened
                budget -= 1
                if not budget:
                    return None
        return None

    def _open_cookie(self, value: bytes) -> bytes | None:
        return self._codec.open(value, self.max_age)

    def _load_cookie(self, session: Session, state: SessionState) -> None:
        """Verify (or decrypt) and decode a cookie-store session into ``session``."""
        assert state.cookie is not None
        whole, state.chunks = join_chunks(
            self.session_cookie, state.cookie, state.headers, self.max_cookie_chunks
        )
        if whole is None:
            return  # a part is missing or the count is forged: an empty session
        raw = whole.encode("latin-1")
        if state.chunks == 1:
            data = self._first_valid(raw, state.headers, self._open_cookie)
        else:
            data = self._open_cookie(raw)
        if data is None:
            if self._legacy is not None:
                self._load_legacy(session, raw)
            return
        decoded = decode_record(self._serializer, data)
        if decoded:
            dict.update(session, decoded)
            state.data = data

    async def _load_record(self, session: Session, state: SessionState) -> None:
        """Fetch the record named by a signed id cookie (one store call)."""
        assert state.cookie is not None
        raw = state.cookie.encode("latin-1")
        signed = self._first_valid(raw, state.headers, self._signer.unsign)
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
            # commit neither overwrites it nor drops the browser's cookie.
            _failed(store, exc, "load")
            state.load_failed = True
            session.unavailable = True
            return
        if data:
            dict.update(session, data)
            state.session_id = session_id

    # -------------------------------------------------------------- commit

    def _cookies(self, value: bytes, state: SessionState) -> list[bytes]:
        """``Set-Cookie`` values carrying ``value``, split into parts when needed.

        Parts the request had and the new value no longer needs are deleted.
        A value beyond ``max_cookie_chunks`` raises or is dropped (the
        browser keeps its previous session), as ``oversize`` says.
        """
        parts = split_value(self.session_cookie, value, self.max_cookie_chunks)
        if parts is None:
            needed = len(self._cookie_head) + len(value)
            text = (
                f"session cookie {self.session_cookie!r} needs {needed} bytes, more than "
                f"{self.max_cookie_chunks} cookies of {MAX_COOKIE_SIZE} bytes "
                "(max_cookie_chunks); the session is not saved and the browser keeps its "
                "previous one: store less, or use a server-side store"
            )
            if self._raise_oversize:
                raise SessionTooLarge(text)
            logger.error(text)
            return []
        cookies = [self._cookie_head + parts[0] + self._cookie_tail]
        for index, part in enumerate(parts[1:]):
            cookies.append(self._part_heads[index] + part + self._cookie_tail)
        cookies.extend(self._delete_parts[len(parts) - 1 : state.chunks - 1])
        return cookies

    def _expire(self, state: SessionState) -> list[bytes]:
        """Headers that expire the session cookie and every part the request had."""
        return [self._delete_header, *self._delete_parts[: state.chunks - 1]]

    def _commit_cookie(self, session: Session, state: SessionState) -> list[bytes]:
        if session.modified:
            if dict.__len__(session):
                data = self._serializer.dumps(session)
                return self._cookies(self._codec.seal(data, int(time.time())), state)
            return self._expire(state) if state.cookie is not None else []
        if self.rolling and state.data is not None:
            # Unchanged: seal the same data again with a fresh issued-at.
            return self._cookies(self._codec.seal(state.data, int(time.time())), state)
        return []

    def _signed_id(self, session_id: str) -> list[bytes]:
        value = self._signer.sign(session_id.encode("ascii"))
        return [self._cookie_head + value + self._cookie_tail]

    async def _commit_store(
        self, store: SessionStore, session: Session, state: SessionState
    ) -> list[bytes]:
        session_id = state.session_id
        ttl = self.max_age
        if state.load_failed:
            # The app saw an empty stand-in, not the user's session: saving,
            # deleting (a clear() meant for an "anonymous" user) or a new
            # cookie would lose the real session to a transient outage.
            if session.modified:
                logger.error(
                    "session store %r: a change to a session that could not be loaded is "
                    "not saved; the stored record and the browser's cookie are kept",
                    store,
                )
            return []
        if session.modified:
            if not dict.__len__(session):
                if session_id is not None:
                    await _call(store.delete(session_id), "delete", store)
                return self._expire(state) if state.cookie is not None else []
            if session_id is None or session._regenerate:
                if session_id is not None:
                    await _call(store.delete(session_id), "delete", store)
                session_id = secrets.token_urlsafe(32)
            data = dict(dict.items(session))
            if await _call(store.save(session_id, data, ttl), "save", store):
                state.session_id = session_id
                return self._signed_id(session_id)
            return []
        if (
            self.rolling
            and session_id is not None
            and await _call(store.touch(session_id, ttl), "touch", store)
        ):
            return self._signed_id(session_id)
        return []


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


def _replacement(current: Mapping[str, Any]) -> Session:
    """The application assigned a new mapping to ``scope["session"]``: save that."""
    session = Session(dict(current))
    session.accessed = True
    session.modified = True
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
    if not session.loaded:
        state = state_of(getattr(scope, "scope", scope))
        if state is not None and state.load is not None:
            await state.load()
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
