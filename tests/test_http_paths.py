"""Canonical paths and PathMatcher: rules count every spelling, exclusions none extra."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._http import PathMatcher, normalize_path


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("//", "/"),
        ("/login", "/login"),
        ("/login/", "/login"),
        ("//login", "/login"),
        ("/login//", "/login"),
        ("/a//b///c", "/a/b/c"),
        ("/./login", "/login"),
        ("/login/.", "/login"),
        ("/x/../login", "/login"),
        ("/../../login", "/login"),  # never above the root
        ("/a/b/../../c", "/c"),
        ("/%6Cogin", "/login"),
        ("/%6cogin", "/login"),
        ("/%2E%2E/login", "/login"),  # decoded first, then a dot segment
        ("/a%2Fb", "/a%2Fb"),  # a reserved escape stays (one segment "a/b")
        ("/a%2fb", "/a%2Fb"),
        ("/caf%C3%A9", "/caf%C3%A9"),  # not unreserved: kept
        ("/.well-known/x", "/.well-known/x"),
        ("/..x/y", "/..x/y"),
        ("*", "*"),
        ("", ""),
    ],
)
def test_normalize_path(path: str, expected: str) -> None:
    assert normalize_path(path) == expected


def test_canonical_paths_come_back_as_the_same_object() -> None:
    # The middleware relies on identity to skip the second (raw) comparison.
    path = "".join(["/api/", "items/3"])
    assert normalize_path(path) is path


@given(st.text(alphabet="/.%a2Ex", max_size=40))
def test_normalize_path_is_idempotent_and_canonical(path: str) -> None:
    path = "/" + path
    once = normalize_path(path)
    assert normalize_path(once) == once
    assert once.startswith("/")
    assert "//" not in once
    assert once == "/" or not once.endswith("/")
    assert "/./" not in once + "/" and "/../" not in once + "/"


@given(st.text(alphabet="/.abc", max_size=30))
def test_dot_segments_resolve_like_posixpath(path: str) -> None:
    path = "/" + path
    expected = posixpath.normpath(path)
    expected = "/" + expected.lstrip("/")  # normpath keeps a leading "//"
    assert normalize_path(path) == expected


RULES = PathMatcher(["/login", "/api/*", "*.png"], "path")


@pytest.mark.parametrize(
    "path",
    [
        "/login",
        "/login/",
        "//login",
        "/./login",
        "/%6Cogin",
        "/x/../login",
        "/api",
        "/api/",
        "/api/v1",
        "//api//v1",
        "/api/../admin",  # raw spelling matches: a router resolving nothing routes it to /api/*
        "/img/a.png",
    ],
)
def test_rules_count_every_spelling(path: str) -> None:
    assert RULES.match(path)


@pytest.mark.parametrize("path", ["/logins", "/log/in", "/apix", "/admin", "/", "/login/../x"])
def test_rules_do_not_count_other_paths(path: str) -> None:
    assert not RULES.match(path)


EXCLUDE = PathMatcher(["/health", "/static/*"], "exclude_paths")


@pytest.mark.parametrize("path", ["/health", "/health/", "/static/a.css", "/static//a.css"])
def test_exclusions_hold_for_the_spellings_every_router_agrees_on(path: str) -> None:
    assert EXCLUDE(path)


@pytest.mark.parametrize(
    "path",
    [
        "//health",  # Starlette and Django do not route it to /health
        "/./health",
        "/x/../health",  # Starlette routes this raw: a /x/{rest:path} route would run
        "/health/../admin",
        "/static/../admin",  # normalised it is /admin
        "/static/%2E%2E/admin",
        "/healthz",
    ],
)
def test_exclusions_are_not_widened_by_spellings(path: str) -> None:
    assert not EXCLUDE(path)


def test_exclusions_follow_the_route_the_framework_resolved() -> None:
    # Litestar normalises //health and records the template it routed to.
    assert EXCLUDE("//health", {"path_template": "/health"})
    assert EXCLUDE("/health/", {"asgi_kit.route": "/health/"})
    # A spelling routed elsewhere is not excluded, whatever it normalises to.
    assert not EXCLUDE("/x/../health", {"path_template": "/x/{rest:path}"})
    assert not EXCLUDE("//health", {"path_template": "/{catch_all:path}"})


def test_exact_matching_compares_raw_paths() -> None:
    exact = PathMatcher(["/login", "/static/*"], "path", exact=True)
    assert exact("/login") and exact.match("/login")
    assert not exact.match("/login/") and not exact.match("//login")
    assert exact.match("/static/x") and not exact.match("/static")
    assert repr(exact) == "PathMatcher(['/login', '/static/*'], exact=True)"
    with pytest.raises(TypeError, match="exact"):
        PathMatcher(["/x"], "path", exact="yes")  # type: ignore[arg-type]


_SPELLING = st.lists(
    st.sampled_from(["health", "static", "admin", "a.css", ".", "..", "", "%68ealth", "x"]),
    max_size=6,
).map(lambda parts: "/" + "/".join(parts))


@given(_SPELLING)
def test_an_exclusion_implies_the_canonical_path_is_excluded(path: str) -> None:
    """No spelling is excluded unless the path it stands for is, and rules count it."""
    if EXCLUDE(path):
        canonical = normalize_path(unquote(path))
        assert EXCLUDE(canonical), path
        assert EXCLUDE.match(path)
        # And the raw spelling, read without resolving "..", is an excluded path too.
        assert ".." not in path.split("/") or EXCLUDE(path.rstrip("/") or "/")


@given(st.text(max_size=200))
def test_matchers_never_raise(path: str) -> None:
    RULES.match(path)
    RULES(path)
    EXCLUDE(path, {"path_template": path})
