"""CORSMiddleware around a raw ASGI app.

Run: ``uvicorn examples.cors_raw:app`` (or ``python examples/cors_raw.py``), then

    curl -si -X OPTIONS http://127.0.0.1:8000/ \\
      -H 'Origin: https://app.example.com' \\
      -H 'Access-Control-Request-Method: PUT' \\
      -H 'Access-Control-Request-Headers: authorization'
"""

from __future__ import annotations

from typing import Any

from asgi_kit import CORSMiddleware


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b'{"hello": "world"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-cost", b"1"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = CORSMiddleware(
    hello,
    allow_origins=["https://app.example.com", "http://localhost:5173"],
    allow_methods=["GET", "POST", "PUT", "DELETE"],
    allow_headers=["Authorization", "X-Requested-With"],
    allow_credentials=True,
    expose_headers=["X-Request-Cost"],
    max_age=3600,
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
