"""FastAPI with Prometheus metrics served at /metrics.

Run: ``uvicorn metrics_fastapi:app`` (from examples/), then
``curl -s localhost:8000/items/1`` and ``curl -s localhost:8000/metrics``.

Several workers: create an empty directory, export it as
``PROMETHEUS_MULTIPROC_DIR`` before starting (``uvicorn metrics_fastapi:app
--workers 4``), and every scrape reports the total of all workers.
"""

from __future__ import annotations

from fastapi import FastAPI

from asgi_kit import MetricsMiddleware

app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


# Requests are labelled route="/items/{item_id}", never with the raw path.
app.add_middleware(MetricsMiddleware, metrics_path="/metrics")
