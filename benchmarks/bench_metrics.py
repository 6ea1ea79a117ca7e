"""MetricsMiddleware against starlette-exporter and prometheus-fastapi-instrumentator.

Every candidate wraps its own instance of the same FastAPI app (added with
``app.add_middleware``, as users do) and records into its own registry or
metric prefix, so the three never clash inside one process.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from asgi_kit.metrics import MetricsMiddleware

from .driver import App, Scenario, make_scope, optional


def fastapi_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    return app


def ours() -> App:
    app = fastapi_app()
    app.add_middleware(MetricsMiddleware, registry=CollectorRegistry())
    return app  # type: ignore[no-any-return]


def starlette_exporter() -> App:
    from starlette_exporter import PrometheusMiddleware

    app = fastapi_app()
    # starlette-exporter keeps its metrics on the class in the default registry:
    # a prefix of its own keeps it apart from everything else in this process.
    app.add_middleware(PrometheusMiddleware, prefix="bench_se", app_name="bench")
    return app  # type: ignore[no-any-return]


def instrumentator() -> App:
    from prometheus_fastapi_instrumentator import Instrumentator

    app = fastapi_app()
    Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app  # type: ignore[no-any-return]


def scenarios() -> list[Scenario]:
    anchors: dict[str, Any] = {
        "starlette-exporter": optional(starlette_exporter),
        "prometheus-fastapi-instrumentator": optional(instrumentator),
    }
    return [
        Scenario(
            "metrics: FastAPI GET /items/{item_id}",
            bare=fastapi_app(),
            ours=ours(),
            anchors=anchors,
            scope=make_scope("GET", "/items/42"),
            goal=0.5,
        ),
        Scenario(
            "metrics: FastAPI 404 (unmatched path)",
            bare=fastapi_app(),
            ours=ours(),
            anchors={
                "starlette-exporter": optional(starlette_exporter),
                "prometheus-fastapi-instrumentator": optional(instrumentator),
            },
            scope=make_scope("GET", "/wp-admin/setup-config.php"),
            goal=0.5,
        ),
    ]
