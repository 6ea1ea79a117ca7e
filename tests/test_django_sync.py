"""The exchange under Django's WSGI handler (asgi_kit.contrib.django._sync)."""

from __future__ import annotations

import json
import threading

import pytest
from django.test import Client

from tests._support.django import (
    _reset,  # noqa: F401 (autouse: configures Django)
    fetch,
)


async def test_sync_view_runs_on_the_wsgi_request_thread() -> None:
    result = await fetch("wsgi", "GET", "/info")
    # Django's DB connections and transactions are per thread: the view must
    # run on the thread that called the handler, not on the loop's thread.
    assert result.json()["thread"] == result.thread


def test_background_loop_survives_many_wsgi_requests() -> None:
    client = Client()
    seen: set[int] = set()
    for _ in range(20):
        response = client.get("/info")
        assert response.status_code == 200
        seen.add(json.loads(response.content)["thread"])
    assert seen == {threading.get_ident()}


# Forking a threaded process is the case under test (a pre-fork server after
# the first request); Python 3.12+ warns about it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_background_loop_is_replaced_after_fork() -> None:
    import os

    client = Client()
    assert client.get("/json").status_code == 200
    pid = os.fork()
    if pid == 0:  # child: the parent's loop thread did not survive the fork
        code = 1
        try:
            code = 0 if Client().get("/json").status_code == 200 else 2
        finally:
            os._exit(code)
    import signal
    import time

    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0
