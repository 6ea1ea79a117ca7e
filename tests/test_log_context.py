"""structlog context plumbing (asgi_kit._log_context), and the private name it reads."""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar, copy_context

import pytest
import structlog

from asgi_kit import _log_context
from asgi_kit._log_context import restore_by_prefix, restore_structlog, structlog_var


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


def test_structlog_still_keeps_its_registry_of_variables() -> None:
    # Fails when structlog moves or reshapes ``_CONTEXT_VARS``: the fast path
    # then silently falls back to the slower public scan, so look again.
    registry = structlog.contextvars._CONTEXT_VARS
    assert _log_context.STRUCTLOG_VARS is registry
    structlog.contextvars.bind_contextvars(registry_probe=1)
    var = registry[structlog.contextvars.STRUCTLOG_KEY_PREFIX + "registry_probe"]
    assert isinstance(var, ContextVar)
    assert var.get() == 1


def test_structlog_var_is_the_variable_merge_contextvars_reads() -> None:
    var = structlog_var("probe_key")
    token = var.set("v")
    try:
        assert structlog.contextvars.get_contextvars() == {"probe_key": "v"}
    finally:
        var.reset(token)
    assert structlog.contextvars.get_contextvars() == {}


@pytest.mark.parametrize("restore", [restore_structlog, restore_by_prefix])
def test_restore_unbinds_new_keys_and_restores_changed_ones(restore: object) -> None:
    structlog.contextvars.bind_contextvars(kept="outer", changed="outer")
    before = copy_context()
    structlog.contextvars.bind_contextvars(changed="inner", added="inner")
    restore(before)  # type: ignore[operator]
    assert structlog.contextvars.get_contextvars() == {"kept": "outer", "changed": "outer"}
