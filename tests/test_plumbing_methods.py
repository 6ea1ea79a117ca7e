"""asgi_kit._plumbing.methods: one method normaliser for matching and labels."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asgi_kit._plumbing.methods import method_label, normalize_method, normalize_methods


@pytest.mark.parametrize(
    ("method", "normal", "label"),
    [
        ("GET", "GET", "GET"),
        ("get", "GET", "GET"),
        ("PoSt", "POST", "POST"),
        ("patch", "PATCH", "PATCH"),
        ("PROPFIND", "PROPFIND", "_OTHER"),
        ("propfind", "propfind", "_OTHER"),  # extension methods stay case-sensitive
    ],
)
def test_normalize_and_label(method: str, normal: str, label: str) -> None:
    assert normalize_method(method) == normal
    assert method_label(method) == label


def test_custom_known_set() -> None:
    assert method_label("purge", frozenset({"GET", "PURGE"})) == "PURGE"


def test_normalize_methods_validates() -> None:
    assert normalize_methods(["post", "GET", "PURGE"], "methods") == {"POST", "GET", "PURGE"}
    with pytest.raises(TypeError, match="methods"):
        normalize_methods("GET", "methods")
    with pytest.raises(TypeError, match="methods"):
        normalize_methods([1], "methods")  # type: ignore[list-item]
    with pytest.raises(ValueError, match="methods"):
        normalize_methods(["GE T"], "methods")


@given(st.text(max_size=10))
def test_normalize_is_idempotent(method: str) -> None:
    once = normalize_method(method)
    assert normalize_method(once) == once
    assert method_label(method) in {once, "_OTHER"}
