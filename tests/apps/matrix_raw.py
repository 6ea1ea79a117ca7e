"""The matrix app as a raw ASGI callable, wrapped by hand (docs/stack.md, "Raw ASGI").

A raw app has no router to report route templates, so its own tiny router
records the template in ``scope["asgi_kit.route"]``, the key every asgi_kit
middleware reads (docs/metrics.md, docs/tracing.md).
"""

from __future__ import annotations

from asgi_kit._http import send_json
from asgi_kit.types import ASGIApp, Receive, Scope, Send

from .matrix_common import big_payload, inspect_data, install_sdk, stack

install_sdk()


async def router(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # no lifespan support: the servers carry on without it
    path: str = scope["path"]
    if path == "/":
        scope["asgi_kit.route"] = "/"
        await send_json(send, 200, big_payload())
    elif path.startswith("/items/") and path[7:].isdigit():
        scope["asgi_kit.route"] = "/items/{item_id}"
        await send_json(send, 200, {"id": int(path[7:])})
    elif path == "/counter":
        scope["asgi_kit.route"] = "/counter"
        session = scope["session"]
        session["count"] = session.get("count", 0) + 1
        await send_json(send, 200, {"count": session["count"]})
    elif path == "/limited":
        scope["asgi_kit.route"] = "/limited"
        await send_json(send, 200, {"ok": True})
    elif path == "/boom":
        scope["asgi_kit.route"] = "/boom"
        raise RuntimeError("boom")
    elif path == "/inspect":
        await send_json(send, 200, inspect_data())
    else:
        await send_json(send, 404, {"detail": "Not Found"})


def build() -> ASGIApp:
    """Wrap inside out: the last wrapper is the outermost."""
    app: ASGIApp = router
    for cls, options in reversed(stack()):
        app = cls(app, **options)
    return app


app = build()
