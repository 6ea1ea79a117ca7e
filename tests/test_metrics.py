"""asgi_kit.metrics, the package: its public names, from its modules."""

from __future__ import annotations

import asgi_kit


def test_metrics_package_keeps_its_public_names() -> None:
    import asgi_kit.metrics as metrics
    from asgi_kit.metrics.exposition import metrics_app
    from asgi_kit.metrics.middleware import MetricsMiddleware

    assert metrics.MetricsMiddleware is MetricsMiddleware is asgi_kit.MetricsMiddleware
    assert metrics.metrics_app is metrics_app is asgi_kit.metrics_app
    for name in metrics.__all__:
        assert getattr(metrics, name) is not None
