"""A structlog-style logger that keeps every event, for checking what the access log says."""

from __future__ import annotations

from typing import Any


class RecordingLogger:
    """Any level method (``info``, ``error`` ...) records ``{"event", "level", **fields}``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __getattr__(self, level: str) -> Any:
        if level.startswith("_"):
            raise AttributeError(level)

        def log(event: str, **fields: Any) -> None:
            self.events.append({"event": event, "level": level, **fields})

        return log
