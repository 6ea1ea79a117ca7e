"""Backend-failure reporting shared by rate limiting and sessions.

When Redis goes away under a flood, one log line per failed request is an
outage of its own (thousands of lines a second).  A :class:`FailureLog`
collapses them: the first failure of each kind is logged at once, with its
details; further failures of that kind are counted, and one summary line
per interval reports how many there were and the last error.  A quiet
interval ends the episode, so the next failure is again logged at once.

Every failure also increments the Prometheus counter
``asgi_kit_backend_failures_total{component, backend, outcome}``:
``component`` is ``ratelimit`` or ``sessions``, ``backend`` the backend's or
store's class name, ``outcome`` what the request got: ``allow`` or ``deny``
(the rate limiter's ``on_backend_error``), or for sessions ``load`` (the
request ran with an empty session), ``save`` (the change was not saved),
``delete`` and ``touch``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter

__all__ = [
    "DEFAULT_INTERVAL",
    "METRIC_NAME",
    "FailureLog",
    "check_interval",
    "check_registry",
    "failure_counter",
    "failure_log",
]

METRIC_NAME = "asgi_kit_backend_failures_total"
#: Seconds between summary lines while a backend keeps failing.
DEFAULT_INTERVAL = 10.0

_counters: dict[int, Counter] = {}
_logs: weakref.WeakKeyDictionary[object, FailureLog] = weakref.WeakKeyDictionary()
_by_class: dict[tuple[str, type], FailureLog] = {}


def check_interval(value: object) -> float:
    """Validate a ``failure_log_interval`` option (positive seconds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"failure_log_interval must be a number of seconds, got {value!r}")
    if not value > 0:
        raise ValueError(f"failure_log_interval must be positive, got {value!r}")
    return float(value)


def check_registry(registry: object) -> CollectorRegistry | None:
    """Validate a ``registry`` option (None: prometheus_client's default REGISTRY)."""
    if registry is not None and not isinstance(registry, CollectorRegistry):
        raise TypeError(f"registry must be a prometheus_client CollectorRegistry, got {registry!r}")
    return registry


def failure_counter(registry: CollectorRegistry | None = None) -> Counter:
    """The failure counter registered on ``registry`` (default: the global REGISTRY).

    Registered once per registry; a counter of that name already registered
    there (another import of this module, a second app) is reused rather
    than raising ``Duplicated timeseries``.
    """
    registry = REGISTRY if registry is None else registry
    counter = _counters.get(id(registry))
    if counter is not None:
        return counter
    try:
        counter = Counter(
            METRIC_NAME.removesuffix("_total"),
            "Backend (Redis) calls that failed, by component, backend and what the request got",
            ("component", "backend", "outcome"),
            registry=registry,
        )
    except ValueError:
        names = getattr(registry, "_names_to_collectors", {})
        existing = names.get(METRIC_NAME)
        if not isinstance(existing, Counter):
            raise
        counter = existing
    _counters[id(registry)] = counter
    return counter


class _Episode:
    __slots__ = ("ends", "last", "scheduled", "suppressed")

    def __init__(self, ends: float) -> None:
        self.ends = ends
        self.suppressed = 0
        self.last = ""
        self.scheduled = False


class FailureLog:
    """Collapsed logging and counting of one backend's failures.

    Args:
        component: ``"ratelimit"`` or ``"sessions"`` (a metric label, and the
            logger ``asgi_kit.<component>``).
        backend: The backend or store (its class name is the ``backend`` label).
        event: The log message, e.g. ``"rate limit backend failed"``.
        interval: Seconds between summary lines while failures continue.
        registry: Where the counter lives (default: prometheus_client's REGISTRY).
        traceback: Log the first failure's traceback (stdlib logging only).
        use_structlog: Log through structlog when the application configured
            it (else, and when False, through stdlib logging).
    """

    def __init__(
        self,
        component: str,
        backend: object,
        event: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        registry: CollectorRegistry | None = None,
        traceback: bool = False,
        use_structlog: bool = True,
    ) -> None:
        self.component = component
        self.traceback = traceback
        self.use_structlog = use_structlog
        self.backend = type(backend).__name__
        self.event = event
        self.interval = interval
        self._counter = failure_counter(registry)
        self._children: dict[str, Any] = {}
        self._episodes: dict[str, _Episode] = {}
        self._logger = logging.getLogger(f"asgi_kit.{component}")
        self._structlog = structlog.get_logger(f"asgi_kit.{component}")

    def failed(self, exc: BaseException, outcome: str, **fields: Any) -> None:
        """Count one failure; log it now, or fold it into the next summary."""
        child = self._children.get(outcome)
        if child is None:
            child = self._counter.labels(self.component, self.backend, outcome)
            self._children[outcome] = child
        child.inc()
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        now = time.monotonic()
        episode = self._episodes.get(outcome)
        if episode is not None and now >= episode.ends:
            # The timer did not run (its loop ended): summarise now.
            self._flush(outcome, episode)
            episode = self._episodes.get(outcome)
        if episode is None:
            self._episodes[outcome] = _Episode(now + self.interval)
            self._emit(
                self.event,
                exc,
                {
                    "backend": self.backend,
                    "error": str(exc) or type(exc).__name__,
                    "error_type": type(exc).__name__,
                    "outcome": outcome,
                    **fields,
                },
            )
            return
        episode.suppressed += 1
        episode.last = error
        if not episode.scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # pragma: no cover - always called from a request
                return
            episode.scheduled = True
            loop.call_at(
                loop.time() + max(0.0, episode.ends - now), self._on_timer, outcome, episode
            )

    def _on_timer(self, outcome: str, episode: _Episode) -> None:
        if self._episodes.get(outcome) is episode:
            self._flush(outcome, episode)

    def _flush(self, outcome: str, episode: _Episode) -> None:
        """End ``episode``: one summary if failures were folded, and a new window then."""
        if episode.suppressed == 0:
            del self._episodes[outcome]  # a quiet interval: the next failure logs at once
            return
        fields = {
            "backend": self.backend,
            "outcome": outcome,
            "failures": episode.suppressed,
            "interval": self.interval,
            "last_error": episode.last,
        }
        self._emit(f"{self.event} (repeated)", None, fields)
        self._episodes[outcome] = _Episode(time.monotonic() + self.interval)
        # Keep summarising while failures continue; a quiet window ends it.
        self._episodes[outcome].scheduled = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._episodes[outcome].scheduled = False
            return
        loop.call_at(loop.time() + self.interval, self._on_timer, outcome, self._episodes[outcome])

    def _emit(self, event: str, exc: BaseException | None, fields: dict[str, Any]) -> None:
        if self.use_structlog and structlog.is_configured():
            # The application's structlog pipeline (which may feed stdlib logging).
            self._structlog.error(event, **fields)
            return
        # Unconfigured structlog only prints to stdout, where logging handlers
        # (and pytest's caplog) never see it: use stdlib logging, with the
        # fields in the message and as record attributes.
        if exc is not None:
            details = ", ".join(
                f"{k}={v}" for k, v in fields.items() if k not in ("error", "error_type", "backend")
            )
            message = (
                f"{event}: {type(exc).__name__}: {fields['error']} ({fields['backend']}, {details})"
            )
        else:
            message = (
                f"{event}: {fields['failures']} more failures in the last "
                f"{fields['interval']:g}s ({fields['backend']}, outcome={fields['outcome']}; "
                f"last error: {fields['last_error']})"
            )
        self._logger.error(message, exc_info=exc if self.traceback else None, extra=fields)


def failure_log(
    component: str,
    backend: object,
    event: str,
    *,
    traceback: bool = False,
    use_structlog: bool = True,
) -> FailureLog:
    """The one :class:`FailureLog` of ``backend`` (created on first use).

    Reads the backend's ``registry`` and ``failure_log_interval`` attributes
    when it has them (``RedisBackend``, ``RedisStore``), so a custom
    backend gets the defaults.
    """
    try:
        log = _logs.get(backend)
    except TypeError:  # not weak-referenceable (__slots__): one log per class then
        key = (component, type(backend))
        log = _by_class.get(key)
        if log is None:
            log = _by_class[key] = FailureLog(
                component, backend, event, traceback=traceback, use_structlog=use_structlog
            )
        return log
    if log is None:
        log = FailureLog(
            component,
            backend,
            event,
            interval=getattr(backend, "failure_log_interval", DEFAULT_INTERVAL),
            registry=getattr(backend, "registry", None),
            traceback=traceback,
            use_structlog=use_structlog,
        )
        _logs[backend] = log
    return log
