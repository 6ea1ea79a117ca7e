"""Request ids, JSON access logs and proxy headers for a FastAPI app.

Run it with ``uvicorn logging_fastapi:app --no-proxy-headers`` from this
directory (``LOG_VIA_STDLIB=1`` routes structlog through the standard
library), then::

    curl -s -H 'X-Forwarded-For: 198.51.100.4' -H 'X-Request-ID: demo-1' localhost:8000/items/7

Every log line, the app's own and the access event, is one JSON object
carrying the request id.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog
from fastapi import FastAPI, Request

from asgi_kit import AccessLogMiddleware, ProxyHeadersMiddleware, RequestIDMiddleware


def configure_logging(*, via_stdlib: bool = False, stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stderr), with structlog alone or through stdlib logging."""
    stream = stream or sys.stderr
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,  # request_id and anything else bound
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not via_stdlib:
        structlog.configure(
            processors=[
                *shared,
                structlog.processors.dict_tracebacks,
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=structlog.PrintLoggerFactory(stream),
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            cache_logger_on_first_use=True,
        )
        return
    # structlog -> stdlib: events become LogRecords of the stdlib logger named
    # after the structlog logger ("asgi_kit.access"); one formatter renders both
    # them and plain stdlib records (uvicorn, libraries) as JSON.
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.dict_tracebacks,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


configure_logging(via_stdlib=os.environ.get("LOG_VIA_STDLIB") == "1")

app = FastAPI()
log = structlog.get_logger("shop")


@app.get("/items/{item_id}")
async def item(item_id: int, request: Request) -> dict[str, Any]:
    log.info("item viewed", item_id=item_id)  # carries request_id automatically
    return {
        "item": item_id,
        "request_id": request.state.request_id,
        "client": request.client.host if request.client else None,
    }


# add_middleware wraps outside-in in reverse order: the last added runs first.
app.add_middleware(AccessLogMiddleware, exclude_paths=["/health"])
app.add_middleware(RequestIDMiddleware)
app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=["127.0.0.1"])
