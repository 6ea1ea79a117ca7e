"""The storage interface every rate-limit backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

from asgi_kit.ratelimit.rule import Rule

__all__ = ["Backend", "BackendError", "Outcome"]


class Outcome(NamedTuple):
    """The decision of one rule for one request.

    ``reset`` is the delay in seconds until the quota is fully restored when
    the request was admitted, and until the request could be admitted when
    it was denied (then it equals ``retry_after``, as the IETF draft asks).
    """

    allowed: bool
    remaining: int
    reset: float
    retry_after: float


class BackendError(Exception):
    """The backend could not decide (unreachable, timed out, script error)."""


class Backend(ABC):
    """Stores rate-limit state and takes decisions atomically.

    :meth:`hit` receives every rule that applies to one request with the
    request's key for that rule, and decides them as one unit: when any rule
    denies, no rule's quota is consumed.  Implementations raise
    :class:`BackendError` (or any exception) when they cannot decide; the
    middleware then follows its ``on_backend_error`` option.
    """

    @abstractmethod
    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> Sequence[Outcome]:
        """Decide ``checks`` (``(rule, key)`` pairs) atomically; one outcome each."""

    async def close(self) -> None:  # noqa: B027 (optional hook, nothing to do by default)
        """Release connections (the middleware never calls this for you)."""
