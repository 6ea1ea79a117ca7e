"""The full asgi_kit stack around a small raw-ASGI app.

Run it with ``make demo`` (or ``python examples/full_stack.py``) and try the
URLs it prints.  Every middleware the toolkit ships is applied here with
in-memory backends.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_app import demo_app

HOST = os.environ.get("DEMO_HOST", "127.0.0.1")
PORT = int(os.environ.get("DEMO_PORT", "8000"))

app = demo_app

URLS = [
    ("JSON", f"curl -s http://{HOST}:{PORT}/"),
    ("streamed text", f"curl -sN http://{HOST}:{PORT}/stream"),
    ("Server-Sent Events", f"curl -sN http://{HOST}:{PORT}/events"),
    ("WebSocket echo", f"python -m websockets ws://{HOST}:{PORT}/ws"),
]


def main() -> None:
    import uvicorn

    print("asgi_kit demo: try")
    for label, command in URLS:
        print(f"  {label:<20} {command}")
    sys.stdout.flush()
    uvicorn.run(app, host=HOST, port=PORT, log_level="info")


if __name__ == "__main__":
    main()
