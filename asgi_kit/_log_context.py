"""structlog context plumbing: bind one key cheaply, restore the context after a request.

:class:`asgi_kit.request_id.RequestIDMiddleware` binds ``request_id`` for
the duration of a request and then puts every structlog contextvar back to
what it was, so keys the app bound do not leak into the next request on the
same task.
"""

from __future__ import annotations

from contextvars import Context, ContextVar, copy_context
from typing import Any

import structlog

__all__ = ["STRUCTLOG_VARS", "restore_by_prefix", "restore_structlog", "structlog_var"]


def structlog_var(key: str) -> ContextVar[Any]:
    """structlog's own ContextVar for ``key``, so binding is a single ``set``.

    ``bind_contextvars`` returns tokens; a token knows its variable, which is
    the public way to reach the variable structlog's ``merge_contextvars``
    reads.  Binding then resetting leaves the current context unchanged.
    """
    token = structlog.contextvars.bind_contextvars(**{key: ...})[key]
    var: ContextVar[Any] = token.var
    var.reset(token)
    return var


# The one private name of structlog asgi_kit reads: its registry of per-key
# variables (``structlog.contextvars._CONTEXT_VARS``, a dict since 21.1).
# Why: structlog has no public API listing the variables it bound; the public
# ways (``get_contextvars()``, or scanning ``copy_context()`` for its key
# prefix) walk every variable of the whole context on every request, about
# 1 us with a handful bound, where the registry costs one step per key ever
# bound and nothing while only ``request_id`` exists.  When the name moves,
# the public prefix scan below takes over (slower, same behaviour), and
# tests/test_log_context.py fails so the move is noticed.
STRUCTLOG_VARS: dict[str, ContextVar[Any]] | None = getattr(
    structlog.contextvars, "_CONTEXT_VARS", None
)
if not isinstance(STRUCTLOG_VARS, dict) or not all(
    isinstance(v, ContextVar) for v in STRUCTLOG_VARS.values()
):  # pragma: no cover - a structlog without the registry
    STRUCTLOG_VARS = None
_STRUCTLOG_PREFIX: str = getattr(structlog.contextvars, "STRUCTLOG_KEY_PREFIX", "structlog_")


def restore_structlog(before: Context) -> None:
    """Put every structlog contextvar back to its value in ``before``.

    Keys the app bound during the request are unbound again (structlog's
    "unbound" value is ``...``), so nothing leaks into whatever runs next on
    the same task; the copy of the context taken before the request is O(1).
    ``request_id`` itself is reset by its token before this runs.
    """
    variables = STRUCTLOG_VARS
    if variables is None:
        restore_by_prefix(before)
        return
    if len(variables) == 1:
        return  # only request_id has ever been bound in this process
    try:
        for var in variables.values():
            old = before.get(var, ...)
            if var.get(...) is not old:
                var.set(old)
    except RuntimeError:  # another thread bound a new key meanwhile: walk a copy
        for var in tuple(variables.values()):
            _restore_var(var, before)


def _restore_var(var: ContextVar[Any], before: Context) -> None:
    old = before.get(var, ...)
    if var.get(...) is not old:
        var.set(old)


def restore_by_prefix(before: Context) -> None:
    """The public-API way of :func:`restore_structlog`: every variable of the context."""
    for var in [v for v in copy_context() if v.name.startswith(_STRUCTLOG_PREFIX)]:
        _restore_var(var, before)
