"""RequestIDMiddleware against asgi-correlation-id; AccessLogMiddleware's own cost."""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

import structlog

from asgi_kit import AccessLogMiddleware, RequestIDMiddleware

from .driver import App, Scenario, json_app, make_scope, optional

INCOMING_ID = uuid.uuid4().hex


def _correlation_id(app: App) -> App:
    from asgi_correlation_id import CorrelationIdMiddleware

    return CorrelationIdMiddleware(app)


def _dropping_logger() -> Any:
    """A structlog logger that filters out everything below critical (all access events)."""
    # .bind() resolves the lazy proxy once, as cache_logger_on_first_use would.
    return structlog.wrap_logger(
        structlog.ReturnLogger(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
    ).bind()


def _json_logger() -> Any:
    """A realistic set-up: merge contextvars, level, JSON, written to /dev/null."""
    return structlog.wrap_logger(
        structlog.PrintLogger(open(os.devnull, "w")),  # open for the whole run
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    ).bind()


class _NullLogger:
    """Accepts events and drops them: building every field is still paid for."""

    def info(self, event: str, **fields: Any) -> None:
        return None

    def error(self, event: str, **fields: Any) -> None:
        return None


def scenarios() -> list[Scenario]:
    bare = json_app()
    return [
        Scenario(
            "request id: new id",
            bare=bare,
            ours=RequestIDMiddleware(bare),
            anchors={"asgi-correlation-id": optional(lambda: _correlation_id(bare))},
            goal=0.7,
        ),
        Scenario(
            "request id: incoming uuid4 reused",
            bare=bare,
            ours=RequestIDMiddleware(bare),
            anchors={"asgi-correlation-id": optional(lambda: _correlation_id(bare))},
            scope=make_scope(extra_headers=[(b"x-request-id", INCOMING_ID.encode())]),
            goal=0.7,
        ),
        Scenario(
            "access log: null logger (fields built)",
            bare=bare,
            ours=AccessLogMiddleware(bare, logger=_NullLogger()),
        ),
        Scenario(
            "access log: structlog logger filtering the level out",
            bare=bare,
            ours=AccessLogMiddleware(bare, logger=_dropping_logger()),
        ),
        Scenario(
            "access log: structlog JSON to /dev/null",
            bare=bare,
            ours=AccessLogMiddleware(bare, logger=_json_logger()),
        ),
    ]
