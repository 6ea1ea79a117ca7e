"""A FastAPI app instrumented by MetricsMiddleware, for the end-to-end metrics tests.

With ``PROMETHEUS_MULTIPROC_DIR`` set before the server starts, every worker
writes its samples there and ``/metrics`` reports the total of all workers.
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI, WebSocket

from asgi_kit.metrics import MetricsMiddleware

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int, block: float = 0.0) -> dict[str, int]:
    if block:
        # Deliberately blocks this worker's loop so the next connection goes to another worker.
        time.sleep(min(block, 0.2))
    return {"item_id": item_id, "pid": os.getpid()}


@app.websocket("/ws/{room}")
async def echo(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"{room}:{text}")


app.add_middleware(MetricsMiddleware, metrics_path="/metrics")
