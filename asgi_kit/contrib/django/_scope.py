"""The ASGI scope an adapter's middleware sees for a Django request."""

from __future__ import annotations

from typing import Any

from django.utils.encoding import escape_uri_path  # type: ignore[import-untyped]

from asgi_kit.types import Headers, Scope

_ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}


def build_scope(request: Any) -> Scope:
    """The ASGI ``http`` scope the wrapped middleware sees for ``request``.

    An outer adapter's scope (``request.asgi_scope``) or the ASGI server's own
    scope (``request.scope`` under Django's ASGI handler) is reused, shallow
    copied; under WSGI the scope is built from ``request.META``.
    """
    base = getattr(request, "asgi_scope", None)
    if base is None:
        base = getattr(request, "scope", None)
    if isinstance(base, dict) and base.get("type") == "http":
        scope = dict(base)
        scope.setdefault("root_path", "")
        scope.setdefault("query_string", b"")
        scope.setdefault("headers", [])
        # Server extensions (trailers, pathsend, zero-copy ...) are not
        # something Django's response path can carry.
        scope["extensions"] = {}
        state = base.get("state")
        scope["state"] = dict(state) if state else {}
        return scope
    return _scope_from_meta(request)


def _scope_from_meta(request: Any) -> Scope:
    meta = request.META
    headers: Headers = []
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not value:
                continue
            name = key.replace("_", "-").lower()
        else:
            continue
        headers.append((name.encode("latin-1"), _wsgi_bytes(value)))
    protocol = str(meta.get("SERVER_PROTOCOL") or "HTTP/1.1")
    remote = meta.get("REMOTE_ADDR")
    client = (str(remote), _port(meta.get("REMOTE_PORT"))) if remote else None
    server_name = meta.get("SERVER_NAME")
    server = (str(server_name), _port(meta.get("SERVER_PORT"))) if server_name else None
    path = request.path
    return {
        "type": "http",
        "asgi": dict(_ASGI_VERSION),
        "http_version": protocol.partition("/")[2] or "1.1",
        "method": request.method,
        "scheme": str(meta.get("wsgi.url_scheme") or "http"),
        "path": path,
        "raw_path": escape_uri_path(path).encode("ascii"),
        "query_string": _wsgi_bytes(meta.get("QUERY_STRING") or ""),
        "root_path": str(meta.get("SCRIPT_NAME") or ""),
        "headers": headers,
        "client": client,
        "server": server,
        "extensions": {},
        "state": {},
    }


def _wsgi_bytes(value: object) -> bytes:
    # PEP 3333 strings carry bytes as latin-1; test clients may pass any text.
    text = str(value)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _port(value: object) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0
