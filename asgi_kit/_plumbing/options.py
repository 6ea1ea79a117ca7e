"""Option validation for middleware ``__init__``: one set of rules, one wording.

Every asgi_kit middleware validates its options when it is built, so a typo
fails at start-up rather than on the first request:

* a value of the wrong type raises :class:`TypeError`;
* a value of the right type that is out of range or malformed raises
  :class:`ValueError`;
* both messages start with the option's name, and show the value given.

``bool`` is never accepted where a number is expected (``True`` is an
``int`` to Python, never a sensible ``max_age``), and a single string is
never silently split into characters where a list of strings is expected.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asgiref.compatibility import guarantee_single_callable

from asgi_kit.types import AnyASGIApp, ASGIApp

if TYPE_CHECKING:
    from asgi_kit._http import PathMatcher

__all__ = [
    "asgi3",
    "check_app",
    "check_bool",
    "check_callable",
    "check_choice",
    "check_exclude_paths",
    "check_float",
    "check_int",
    "check_positive_int",
    "check_str",
    "check_str_items",
    "check_type",
    "resolve_alias",
]

T = TypeVar("T")


def check_app(app: object, option: str = "app") -> ASGIApp:
    """The wrapped application as an ASGI 3 callable; ``TypeError`` when not callable.

    ASGI 2 (double-callable) apps are adapted.  Without the check a typo
    (``CompressionMiddleware("app")``) is accepted and fails on the first
    request, far from the mistake.
    """
    if not callable(app):
        raise TypeError(f"{option} must be an ASGI application (a callable), got {app!r}")
    return cast(ASGIApp, guarantee_single_callable(app))  # type: ignore[no-untyped-call]


def asgi3(app: AnyASGIApp) -> ASGIApp:
    """Return ``app`` as an ASGI 3 single callable (ASGI 2 apps are adapted).

    The name every middleware has called since the first release: it is
    :func:`check_app`, so a non-callable ``app`` is refused everywhere.
    """
    return check_app(app)


def check_bool(option: str, value: object) -> bool:
    """``value`` when it is a bool; ``TypeError`` otherwise (no truthiness guessing)."""
    if not isinstance(value, bool):
        raise TypeError(f"{option} must be a bool, got {value!r}")
    return value


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f">= {low}"
    return f"<= {high}"


def check_int(
    option: str,
    value: object,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    optional: bool = False,
) -> Any:
    """``value`` as an int in ``[minimum, maximum]``; None passes when ``optional``.

    ``TypeError`` for a non-int (``"600"``, ``1.5``, ``True``), ``ValueError``
    out of range.  Typed ``Any`` so ``optional`` callers keep ``int | None``.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{option} must be {kind}, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{option} must be {_bounds(minimum, maximum)}, got {value!r}")
    return value


def check_positive_int(option: str, value: object, *, optional: bool = False) -> Any:
    """``value`` as an int >= 1 (None passes when ``optional``)."""
    return check_int(option, value, 1, optional=optional)


def check_float(
    option: str,
    value: object,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    optional: bool = False,
    exclusive_minimum: bool = False,
) -> Any:
    """``value`` (int or float, never bool) as a float in range; None when ``optional``.

    ``exclusive_minimum`` makes ``minimum`` itself invalid (a timeout of 0).
    NaN is always invalid.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number or None" if optional else "a number"
        raise TypeError(f"{option} must be {kind}, got {value!r}")
    number = float(value)
    low_bad = minimum is not None and (number <= minimum if exclusive_minimum else number < minimum)
    if number != number or low_bad or (maximum is not None and number > maximum):
        bound = _bounds(minimum, maximum)
        if exclusive_minimum and minimum is not None:
            bound = f"> {minimum}" if maximum is None else f"> {minimum} and <= {maximum}"
        raise ValueError(f"{option} must be {bound}, got {value!r}")
    return number


def check_str(
    option: str, value: object, *, optional: bool = False, allow_empty: bool = False
) -> Any:
    """``value`` as a str (non-empty unless ``allow_empty``); None when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        kind = "a str or None" if optional else "a str"
        raise TypeError(f"{option} must be {kind}, got {value!r}")
    if not value and not allow_empty:
        raise ValueError(f"{option} must not be empty")
    return value


def check_callable(option: str, value: object, *, optional: bool = True) -> Any:
    """``value`` when callable (or None when ``optional``); ``TypeError`` otherwise."""
    if value is None and optional:
        return None
    if not callable(value):
        kind = "a callable or None" if optional else "a callable"
        raise TypeError(f"{option} must be {kind}, got {value!r}")
    return value


def check_choice(option: str, value: object, choices: Collection[object] | type[enum.Enum]) -> Any:
    """``value`` when it is one of ``choices`` (a collection or an :class:`enum.Enum`).

    A value of a type no choice has raises ``TypeError``; a value of the
    right type that is not a choice raises ``ValueError`` listing them.
    An enum accepts its members and their values.
    """
    if isinstance(choices, type) and issubclass(choices, enum.Enum):
        if isinstance(value, choices):
            return value
        allowed: list[object] = [m.value for m in choices]
        if value in allowed:
            return choices(value)
    else:
        allowed = list(choices)
        for choice in allowed:
            # bool is an int: False must not pass for 0, nor 0 for False.
            if type(choice) is type(value) and choice == value:
                return value
    shown = ", ".join(repr(c) for c in allowed)
    if type(value) not in {type(c) for c in allowed}:
        raise TypeError(f"{option} must be one of {shown}, got {value!r}")
    raise ValueError(f"{option} must be one of {shown}, got {value!r}")


def check_str_items(option: str, value: object, *, single: bool = False) -> tuple[str, ...]:
    """An iterable of strings as a tuple.

    A lone string counts as one item when ``single`` (CORS's
    ``allow_origins="*"``, as Starlette reads it), else raises
    ``TypeError``: it would be split into characters.
    """
    if isinstance(value, str):
        if single:
            return (value,)
        raise TypeError(f"{option} must be a list of strings, not a single string {value!r}")
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Iterable):
        raise TypeError(f"{option} must be a list of strings, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{option} must contain strings, got {item!r}")
    return items


_UNSET: Any = object()


def resolve_alias(option: str, value: T, default: object, **aliases: object) -> T:
    """The value in force for ``option`` given under its name or one alias.

    ``aliases`` maps each alias name to what was passed for it (None: not
    passed).  ``value`` counts as given when it is not ``default`` (the very
    object in the signature).  Two different values given under two names
    raise ``ValueError`` naming both.
    """
    chosen_name = option if value is not default else None
    chosen: object = value
    for alias, alias_value in aliases.items():
        if alias_value is None:
            continue
        if chosen_name is not None and alias_value != chosen:
            raise ValueError(f"give {chosen_name} or its alias {alias}, not both")
        chosen_name, chosen = alias, alias_value
    return cast(T, chosen)


def check_exclude_paths(
    value: Iterable[str] | None,
    default: object = (),
    *,
    option: str = "exclude_paths",
    **aliases: Iterable[str] | None,
) -> PathMatcher:
    """The :class:`~asgi_kit._http.PathMatcher` for ``exclude_paths`` and its aliases.

    ``TracingMiddleware`` also takes ``excluded_paths``
    (opentelemetry-instrumentation-asgi's name) and ``RateLimitMiddleware``
    ``exempt_paths`` (asgi-ratelimit's): call
    ``check_exclude_paths(exclude_paths, excluded_paths=excluded_paths)``.  Giving
    both raises ``ValueError``; errors name the option the user wrote.
    """
    # PathMatcher lives in _http (path rules have their own owner there), and
    # _http re-exports this module's asgi3: import on use to avoid the cycle.
    from asgi_kit._http import PathMatcher

    name = option
    chosen = resolve_alias(option, value, default, **aliases)
    for alias, alias_value in aliases.items():
        if alias_value is not None and chosen is alias_value:
            name = alias
    return PathMatcher(() if chosen is None else chosen, name)


def check_type(option: str, value: object, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` when an instance of ``kind``; ``TypeError`` saying ``option must be what``."""
    if not isinstance(value, kind):
        raise TypeError(f"{option} must be {what}, got {value!r}")
    return value
