"""Limit parsing and Rule validation/matching."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_kit.ratelimit import Rule, client_ip, header, parse_limit

from ._support.asgi import http_scope, websocket_scope


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/second", (100, 1)),
        ("100/minute", (100, 60)),
        ("5/hour", (5, 3600)),
        ("1/day", (1, 86400)),
        ("100/minutes", (100, 60)),
        ("2/seconds", (2, 1)),
        ("10/5 minutes", (10, 300)),
        ("10/5minutes", (10, 300)),
        ("10 / 2 hours", (10, 7200)),
        ("100 per minute", (100, 60)),
        ("100 PER Minute", (100, 60)),
        ("3 per 30 seconds", (3, 30)),
        ("7/s", (7, 1)),
        ("7/sec", (7, 1)),
        ("7/min", (7, 60)),
        ("7/m", (7, 60)),
        ("7/h", (7, 3600)),
        ("7/hr", (7, 3600)),
        ("7/d", (7, 86400)),
        ("7/days", (7, 86400)),
        ("  42/hour  ", (42, 3600)),
    ],
)
def test_parse_limit_accepts(text: str, expected: tuple[int, int]) -> None:
    assert parse_limit(text) == expected
    assert (Rule(text).count, Rule(text).period) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "100",
        "/minute",
        "100/",
        "100/ms",
        "100/week",
        "100/fortnight",
        "0/minute",
        "100/0 minutes",
        "-1/minute",
        "1.5/minute",
        "100//minute",
        "100/minute;10/second",
        "100 per",
        "100per minute",
        "\u0661\u0660\u0660/minute",  # non-ASCII digits
        "100/minutess",
        "100/5",
        "9999999999999/minute",
        "1/400 days",
    ],
)
def test_parse_limit_rejects_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Rule(text)
    assert repr(text) in str(info.value)


def test_limit_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="limit"):
        Rule(100)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_hostile_limits_raise_value_error_only(text: str) -> None:
    try:
        count, period = parse_limit(text)
    except ValueError as exc:
        assert repr(text) in str(exc)
    else:
        assert count >= 1 and period >= 1


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(["/", " per "]),
    st.integers(min_value=1, max_value=100),
    st.sampled_from(["second", "seconds", "minute", "minutes", "hour", "hours", "day", "days"]),
)
def test_generated_valid_limits_parse(count: int, sep: str, n: int, unit: str) -> None:
    seconds = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
    assert parse_limit(f"{count}{sep}{n} {unit}") == (count, n * seconds)


def test_rule_validation_names_the_option() -> None:
    with pytest.raises(ValueError, match="algorithm"):
        Rule("1/second", algorithm="token_bucket")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost"):
        Rule("5/second", cost=6)
    with pytest.raises(ValueError, match="cost"):
        Rule("5/second", cost=0)
    with pytest.raises(TypeError, match="cost"):
        Rule("5/second", cost=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="methods"):
        Rule("5/second", methods="GET")
    with pytest.raises(ValueError, match="methods"):
        Rule("5/second", methods={"GE T"})
    with pytest.raises(ValueError, match="methods"):
        Rule("5/second", methods=set())
    with pytest.raises(ValueError, match="path"):
        Rule("5/second", path="api")
    with pytest.raises(TypeError, match="key"):
        Rule("5/second", key="client")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        Rule("5/second", name='bad"name')


def test_rule_matching() -> None:
    rule = Rule("5/second", path="/api/*", methods={"post", "PUT"})
    assert rule.methods == frozenset({"POST", "PUT"})
    assert rule.applies(http_scope("POST", "/api/items"))
    assert not rule.applies(http_scope("GET", "/api/items"))
    assert not rule.applies(http_scope("POST", "/other"))
    exact = Rule("5/second", path="/login")
    assert exact.applies(http_scope("GET", "/login"))
    assert not exact.applies(http_scope("GET", "/login/x"))
    several = Rule("5/second", path=["/a", "/b/*"])
    assert several.applies(http_scope("GET", "/b/c")) and several.applies(http_scope("GET", "/a"))
    # WebSocket handshakes are GET requests.
    assert Rule("1/second", methods={"GET"}).applies(websocket_scope("/ws"))
    assert not Rule("1/second", methods={"POST"}).applies(websocket_scope("/ws"))


def test_rule_names_and_storage_identity() -> None:
    assert Rule("100/minute").name == "100/minute"
    assert Rule("10/5 minutes").name == "10/5minutes"
    assert Rule("10/90 seconds").name == "10/90seconds"
    assert Rule("1/day", name="daily").name == "daily"
    # Same limit on different paths or algorithms: different buckets.
    idents = {
        Rule("10/minute").ident,
        Rule("10/minute", path="/login").ident,
        Rule("10/minute", path="/signup").ident,
        Rule("10/minute", methods={"POST"}).ident,
        Rule("10/minute", algorithm="fixed_window").ident,
        Rule("10/minute", key=header("X-API-Key")).ident,
        Rule("10/minute", key=header("X-Tenant")).ident,
    }
    assert len(idents) == 7
    assert (
        Rule("10/minute", key=header("X-API-Key")).ident
        == Rule("10/minute", key=header("X-API-Key")).ident
    )
    # ... and stable across processes (no id() or hash randomisation).
    assert Rule("10/minute", path="/login").ident == Rule("10/minute", path="/login").ident
    assert "path='/login'" in repr(Rule("10/minute", path="/login"))


def test_key_helpers() -> None:
    assert client_ip(http_scope(client=("198.51.100.4", 1234))) == "198.51.100.4"
    assert client_ip(http_scope(client=None)) is None
    api_key = header("X-API-Key")
    assert api_key(http_scope(headers=[(b"X-Api-Key", b"k1")])) == "k1"
    assert api_key(http_scope(headers=[(b"x-api-key", b"")])) is None
    assert api_key(http_scope()) is None
    with pytest.raises(ValueError, match="header"):
        header("bad header")


def test_methods_match_case_insensitively_and_get_covers_head() -> None:
    login = Rule("3/minute", path="/login", methods={"POST"})
    for method in ("POST", "post", "Post", "pOsT"):
        assert login.applies(http_scope(method, "/login")), method
    assert not login.applies(http_scope("GET", "/login"))
    page = Rule("3/minute", methods={"get"})
    assert page.methods == frozenset({"GET"})  # what the user listed
    for method in ("GET", "get", "HEAD", "head", "Head"):
        assert page.applies(http_scope(method, "/")), method
    assert not page.applies(http_scope("POST", "/"))
    get_only = Rule("3/minute", methods={"GET"}, head=False)
    assert get_only.applies(http_scope("GET", "/"))
    assert not get_only.applies(http_scope("HEAD", "/"))
    with pytest.raises(TypeError, match="head"):
        Rule("3/minute", head="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path", ["/login", "/login/", "//login", "/login//", "/./login", "/%6Cogin", "/x/../login"]
)
def test_a_rule_path_covers_every_spelling(path: str) -> None:
    assert Rule("3/minute", path="/login").applies(http_scope("GET", path))
    # Django's URLs end in "/": a rule written either way counts both.
    assert Rule("3/minute", path="/login/").applies(http_scope("GET", path))


def test_exact_path_compares_the_raw_path() -> None:
    rule = Rule("3/minute", path="/login", exact_path=True)
    assert rule.applies(http_scope("GET", "/login"))
    assert not rule.applies(http_scope("GET", "/login/"))
    with pytest.raises(TypeError, match="exact_path"):
        Rule("3/minute", path="/x", exact_path=1)  # type: ignore[arg-type]


def test_route_rules() -> None:
    rule = Rule("3/minute", route="/items/{item_id}")
    assert rule.route == "/items/{item_id}"
    assert rule.applies(http_scope("GET", "/items/1", route="/items/{item_id}"))
    # Starlette's path_format drops the convertor a route was declared with.
    typed = Rule("3/minute", route="/items/{item_id:int}")
    assert typed.applies(http_scope("GET", "/items/1", route="/items/{item_id}"))
    assert rule.applies(http_scope("GET", "/x", path_template="/items/{item_id:int}"))
    django = Rule("3/minute", route="/items/<int:pk>")
    assert django.applies(http_scope("GET", "/items/1/", **{"asgi_kit.route": "/items/<int:pk>/"}))
    assert not django.applies(http_scope("GET", "/items/1/"))  # no route known: no match
    assert not rule.applies(http_scope("GET", "/items/1", route="/other"))
    several = Rule("3/minute", route=["/a/{x}", "/b"])
    assert several.applies(http_scope("GET", "/b", route="/b"))
    assert "route='/items/{item_id}'" in repr(rule)
    with pytest.raises(ValueError, match="route"):
        Rule("3/minute", route="items")
    with pytest.raises(ValueError, match="route"):
        Rule("3/minute", route=[])
    with pytest.raises(TypeError, match="route"):
        Rule("3/minute", route=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path= or route="):
        Rule("3/minute", path="/a", route="/a")


def test_storage_identity_is_unchanged_for_existing_rules() -> None:
    # Deploying this version must not reset every client's quota in Redis.
    assert Rule("10/minute").ident == "10/minute:gcra"
    assert Rule("10/minute", path="/login").ident == "10/minute:gcra:997e668a"
    assert Rule("10/minute", path="/login", methods={"POST"}).ident == "10/minute:gcra:c806405c"
    assert Rule("10/minute", route="/login").ident != Rule("10/minute", path="/login").ident
