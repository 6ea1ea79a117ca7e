"""TracingMiddleware around a raw ASGI app, with an explicit tracer provider.

Run: ``python examples/tracing_raw.py`` then
``curl -H 'traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' http://127.0.0.1:8000/orders/7``
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from asgi_kit import TracingMiddleware

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))


async def orders(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    # A raw app (or a router of your own) can name its route template here.
    if scope["path"].startswith("/orders/"):
        scope["asgi_kit.route"] = "/orders/{order_id}"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


app = TracingMiddleware(orders, tracer_provider=provider, traceresponse=True)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
