"""Every middleware validates its options the same way.

A value of the wrong type raises ``TypeError``, a value of the right type but
out of range or malformed raises ``ValueError``, both naming the option; a
non-callable ``app`` is refused when the middleware is built.  One table
covers every public middleware, so a new option that slips through shows up
here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from asgi_kit import (
    AccessLogMiddleware,
    CompressionMiddleware,
    CORSMiddleware,
    MetricsMiddleware,
    ProxyHeadersMiddleware,
    RateLimitMiddleware,
    RequestIDMiddleware,
    SessionMiddleware,
    TracingMiddleware,
)
from asgi_kit._plumbing.options import (
    check_app,
    check_bool,
    check_callable,
    check_choice,
    check_exclude_paths,
    check_float,
    check_int,
    check_positive_int,
    check_str,
    check_str_items,
    resolve_alias,
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The wrapped application (never called here)."""


def registry() -> Any:
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


#: name -> (factory taking (app, **options), options every construction needs)
MIDDLEWARE: dict[str, tuple[Callable[..., Any], Callable[[], dict[str, Any]]]] = {
    "compression": (CompressionMiddleware, dict),
    "cors": (CORSMiddleware, dict),
    "tracing": (TracingMiddleware, dict),
    "metrics": (MetricsMiddleware, lambda: {"registry": registry()}),
    "ratelimit": (RateLimitMiddleware, dict),
    "sessions": (SessionMiddleware, lambda: {"secret_key": "s" * 32}),
    "request_id": (RequestIDMiddleware, dict),
    "access_log": (AccessLogMiddleware, dict),
    "proxy": (ProxyHeadersMiddleware, dict),
}

CASES: list[Any] = [
    # compression
    ("compression", {"minimum_size": "500"}, TypeError, "minimum_size"),
    ("compression", {"minimum_size": -1}, ValueError, "minimum_size"),
    ("compression", {"minimum_size": True}, TypeError, "minimum_size"),
    ("compression", {"brotli_quality": 12}, ValueError, "brotli_quality"),
    ("compression", {"gzip_level": "6"}, TypeError, "gzip_level"),
    ("compression", {"compresslevel": 0}, ValueError, "compresslevel"),
    ("compression", {"encodings": "br"}, TypeError, "encodings"),
    ("compression", {"encodings": ["lzma"]}, ValueError, "encodings"),
    ("compression", {"exclude_content_types": [3]}, TypeError, "exclude_content_types"),
    ("compression", {"exclude_content_types": ["image"]}, ValueError, "exclude_content_types"),
    ("compression", {"exclude_paths": "/static/*"}, TypeError, "exclude_paths"),
    ("compression", {"exclude_paths": ["static"]}, ValueError, "exclude_paths"),
    ("compression", {"thread_minimum_size": 1.5}, TypeError, "thread_minimum_size"),
    ("compression", {"decompress_requests": "yes"}, TypeError, "decompress_requests"),
    ("compression", {"max_decompressed_size": 0}, ValueError, "max_decompressed_size"),
    # cors
    ("cors", {"max_age": "600"}, TypeError, "max_age"),
    ("cors", {"max_age": -1}, ValueError, "max_age"),
    ("cors", {"allow_credentials": "yes"}, TypeError, "allow_credentials"),
    ("cors", {"allow_origins": [None]}, TypeError, "allow_origins"),
    ("cors", {"allow_origins": ["example.com"]}, ValueError, "allow_origins"),
    ("cors", {"allow_methods": 3}, TypeError, "allow_methods"),
    ("cors", {"allow_methods": ["GET POST"]}, ValueError, "allow_methods"),
    ("cors", {"allow_headers": ["X Bad"]}, ValueError, "allow_headers"),
    ("cors", {"expose_headers": [b"x"]}, TypeError, "expose_headers"),
    ("cors", {"allow_origin_regex": 3}, TypeError, "allow_origin_regex"),
    ("cors", {"allow_origin_regex": "(("}, ValueError, "allow_origin_regex"),
    ("cors", {"allow_origin_func": "yes"}, TypeError, "allow_origin_func"),
    ("cors", {"exclude_paths": "/x"}, TypeError, "exclude_paths"),
    ("cors", {"exclude_paths": ["x"]}, ValueError, "exclude_paths"),
    # tracing
    ("tracing", {"tracer_provider": "x"}, TypeError, "tracer_provider"),
    ("tracing", {"server_request_hook": "x"}, TypeError, "server_request_hook"),
    ("tracing", {"span_name": 3}, TypeError, "span_name"),
    ("tracing", {"traceresponse": "yes"}, TypeError, "traceresponse"),
    ("tracing", {"excluded_paths": "/x"}, TypeError, "excluded_paths"),
    ("tracing", {"excluded_paths": ["x"]}, ValueError, "excluded_paths"),
    ("tracing", {"known_methods": "GET"}, TypeError, "known_methods"),
    ("tracing", {"excluded_urls": "(("}, ValueError, "excluded_urls"),
    pytest.param("tracing", {"exclude_paths": ["x"]}, ValueError, "exclude_paths"),
    pytest.param(
        "tracing",
        {"exclude_paths": ["/a"], "excluded_paths": ["/b"]},
        ValueError,
        "excluded_paths",
    ),
    # metrics
    ("metrics", {"registry": "x"}, TypeError, "registry"),
    ("metrics", {"namespace": "1bad"}, ValueError, "namespace"),
    ("metrics", {"buckets": "x"}, TypeError, "buckets"),
    ("metrics", {"buckets": []}, ValueError, "buckets"),
    ("metrics", {"exclude_paths": ["x"]}, ValueError, "exclude_paths"),
    ("metrics", {"metrics_path": "metrics"}, ValueError, "metrics_path"),
    ("metrics", {"route_resolver": "x"}, TypeError, "route_resolver"),
    ("metrics", {"max_routes": 0}, ValueError, "max_routes"),
    pytest.param("metrics", {"namespace": 3}, TypeError, "namespace"),
    pytest.param("metrics", {"metrics_path": 3}, TypeError, "metrics_path"),
    pytest.param("metrics", {"max_routes": "10"}, TypeError, "max_routes"),
    pytest.param("metrics", {"unmatched_route": 3}, TypeError, "unmatched_route"),
    # rate limit
    ("ratelimit", {"rules": "100/minute"}, TypeError, "rules"),
    ("ratelimit", {"rules": []}, ValueError, "rules"),
    ("ratelimit", {"backend": "memory"}, TypeError, "backend"),
    ("ratelimit", {"key": "ip"}, TypeError, "key"),
    ("ratelimit", {"on_backend_error": "maybe"}, ValueError, "on_backend_error"),
    ("ratelimit", {"on_backend_error": 1}, TypeError, "on_backend_error"),
    ("ratelimit", {"headers": "draft"}, ValueError, "headers"),
    ("ratelimit", {"headers": 3}, TypeError, "headers"),
    ("ratelimit", {"on_limited": "x"}, TypeError, "on_limited"),
    ("ratelimit", {"error_retry_after": "1"}, TypeError, "error_retry_after"),
    ("ratelimit", {"error_retry_after": -1}, ValueError, "error_retry_after"),
    ("ratelimit", {"exclude_paths": "/x"}, TypeError, "exclude_paths"),
    ("ratelimit", {"exclude_paths": ["x"]}, ValueError, "exclude_paths"),
    ("ratelimit", {"exempt_paths": ["x"]}, ValueError, "exempt_paths"),
    pytest.param(
        "ratelimit",
        {"exclude_paths": ["/a"], "exempt_paths": ["/b"]},
        ValueError,
        "exempt_paths",
    ),
    # sessions
    ("sessions", {"secret_key": 3}, TypeError, "secret_key"),
    ("sessions", {"secret_key": ""}, ValueError, "secret_key"),
    pytest.param("sessions", {"session_cookie": 3}, TypeError, "session_cookie"),
    ("sessions", {"session_cookie": ""}, ValueError, "session_cookie"),
    pytest.param("sessions", {"max_age": "600"}, TypeError, "max_age"),
    ("sessions", {"max_age": 0}, ValueError, "max_age"),
    pytest.param("sessions", {"same_site": 3}, TypeError, "same_site"),
    ("sessions", {"same_site": "sometimes"}, ValueError, "same_site"),
    ("sessions", {"https_only": "yes"}, TypeError, "https_only"),
    ("sessions", {"path": 3}, TypeError, "path"),
    ("sessions", {"domain": 3}, TypeError, "domain"),
    ("sessions", {"store": "redis"}, TypeError, "store"),
    # request id
    ("request_id", {"header_name": 3}, TypeError, "header_name"),
    ("request_id", {"header_name": "X Bad"}, ValueError, "header_name"),
    ("request_id", {"generator": "x"}, TypeError, "generator"),
    ("request_id", {"validator": "x"}, TypeError, "validator"),
    ("request_id", {"span_attribute": ""}, ValueError, "span_attribute"),
    ("request_id", {"span_attribute": 3}, TypeError, "span_attribute"),
    ("request_id", {"error_response": "y"}, TypeError, "error_response"),
    # access log
    ("access_log", {"exclude_paths": "/x"}, TypeError, "exclude_paths"),
    ("access_log", {"exclude_paths": ["x"]}, ValueError, "exclude_paths"),
    ("access_log", {"event": ""}, ValueError, "event"),
    ("access_log", {"event": 3}, TypeError, "event"),
    ("access_log", {"log_query_string": "y"}, TypeError, "log_query_string"),
    # proxy
    ("proxy", {"trusted_hosts": 3}, TypeError, "trusted_hosts"),
    ("proxy", {"trusted_hosts": ["10.0.0.0/33"]}, ValueError, "trusted_hosts"),
    ("proxy", {"mode": "sometimes"}, ValueError, "mode"),
    ("proxy", {"mode": 3}, TypeError, "mode"),
    ("proxy", {"max_hops": "1"}, TypeError, "max_hops"),
    ("proxy", {"max_hops": 0}, ValueError, "max_hops"),
    ("proxy", {"forwarded_host": "yes"}, TypeError, "forwarded_host"),
]


def _param(case: Any) -> Any:
    values, marks = (case.values, case.marks) if hasattr(case, "values") else (case, ())
    ident = f"{values[0]}-{'-'.join(values[1])}-{values[2].__name__}"
    return pytest.param(*values, marks=marks, id=ident)


@pytest.mark.parametrize(("name", "options", "error", "option"), [_param(c) for c in CASES])
def test_bad_option(name: str, options: dict[str, Any], error: type, option: str) -> None:
    factory, required = MIDDLEWARE[name]
    with pytest.raises(error, match=option) as info:
        factory(app, **{**required(), **options})
    assert type(info.value) is error  # not a subclass standing in for the other kind


@pytest.mark.parametrize("name", sorted(MIDDLEWARE))
@pytest.mark.parametrize("bad_app", ["app", None, 42])
def test_non_callable_app_is_refused(name: str, bad_app: object) -> None:
    factory, required = MIDDLEWARE[name]
    with pytest.raises(TypeError, match="app"):
        factory(bad_app, **required())


@pytest.mark.parametrize("name", sorted(MIDDLEWARE))
def test_defaults_build(name: str) -> None:
    factory, required = MIDDLEWARE[name]
    assert callable(factory(app, **required()))


def test_exclude_paths_aliases() -> None:
    limited = RateLimitMiddleware(app, exempt_paths=["/health"])
    assert limited.exclude_paths("/health") and not limited.exclude_paths("/")
    limited = RateLimitMiddleware(app, exclude_paths=["/health"])
    assert limited.exclude_paths("/health")
    with pytest.raises(ValueError, match="not both"):
        RateLimitMiddleware(app, exclude_paths=["/h"], exempt_paths=["/h"])


# ----------------------------------------------------------------- the helpers


def test_check_app_adapts_and_refuses() -> None:
    assert check_app(app) is app
    with pytest.raises(TypeError, match=r"^app must be an ASGI application"):
        check_app("app")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: check_bool("opt", 1), TypeError),
        (lambda: check_int("opt", "1"), TypeError),
        (lambda: check_int("opt", True), TypeError),
        (lambda: check_int("opt", 11, 0, 10), ValueError),
        (lambda: check_int("opt", -1, 0), ValueError),
        (lambda: check_positive_int("opt", 0), ValueError),
        (lambda: check_float("opt", "1.5"), TypeError),
        (lambda: check_float("opt", float("nan")), ValueError),
        (lambda: check_float("opt", 0, 0, exclusive_minimum=True), ValueError),
        (lambda: check_str("opt", b"x"), TypeError),
        (lambda: check_str("opt", ""), ValueError),
        (lambda: check_callable("opt", 3), TypeError),
        (lambda: check_callable("opt", None, optional=False), TypeError),
        (lambda: check_choice("opt", "c", ("a", "b")), ValueError),
        (lambda: check_choice("opt", 3, ("a", "b")), TypeError),
        (lambda: check_choice("opt", 0, (False, "a")), TypeError),
        (lambda: check_str_items("opt", "abc"), TypeError),
        (lambda: check_str_items("opt", [1]), TypeError),
        (lambda: check_str_items("opt", 3), TypeError),
        (lambda: check_exclude_paths(["x"], option="opt"), ValueError),
    ],
)
def test_helpers_raise_naming_the_option(call: Callable[[], object], error: type) -> None:
    with pytest.raises(error, match=r"^opt") as info:
        call()
    assert type(info.value) is error


def test_aliases_name_both_options() -> None:
    with pytest.raises(ValueError, match="give opt or its alias alias, not both"):
        resolve_alias("opt", 1, 0, alias=2)
    with pytest.raises(ValueError, match=r"^exempt_paths"):
        check_exclude_paths((), exempt_paths=["x"])


def test_helpers_accept() -> None:
    assert check_int("n", None, optional=True) is None
    assert check_float("n", 2, 0) == 2.0
    assert check_str("n", "", allow_empty=True) == ""
    assert check_str_items("n", "one", single=True) == ("one",)
    assert check_choice("n", False, ("legacy", False)) is False
    assert resolve_alias("n", 0, 0, alias=None) == 0
    assert resolve_alias("n", 0, 0, alias=5) == 5
    matcher = check_exclude_paths((), exempt_paths=["/h"])
    assert matcher("/h")


def test_check_choice_enum() -> None:
    import enum

    class Mode(enum.Enum):
        A = "a"

    assert check_choice("mode", "a", Mode) is Mode.A
    assert check_choice("mode", Mode.A, Mode) is Mode.A
    with pytest.raises(ValueError, match="mode"):
        check_choice("mode", "b", Mode)
