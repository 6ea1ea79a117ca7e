"""Prometheus multiprocess mode: a worker's live gauges leave with the worker.

With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client keeps every
worker's samples in files; :func:`asgi_kit.metrics.metrics_app` sums them.
This module removes the files of a worker's ``livesum`` gauges (active
requests, open WebSockets) when the worker exits, however it exits.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import threading

from prometheus_client.multiprocess import mark_process_dead

from asgi_kit.types import Message, Send

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SHARED_LOCK = threading.Lock()


def _multiprocess_enabled() -> bool:
    return bool(os.environ.get(_MULTIPROC_ENV))


_exit_hook_registered = False


def _mark_this_process_dead() -> None:
    try:
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
    except Exception:  # pragma: no cover - best effort at interpreter exit
        pass


def _remove_live_gauges_at_exit() -> None:
    """Drop this worker's ``livesum`` gauge files when it exits.

    Otherwise a worker that exited (a restart, a scale-down) keeps adding its
    last ``http_server_active_requests`` value to every scrape.  The lifespan
    shutdown does it too (see :func:`_forget_worker_on_shutdown`).  The pid is
    read at exit, so workers forked after import (``--preload``) clean up
    their own files.  A worker killed outright leaves its files; a process
    manager hook (``child_exit`` in gunicorn) still has to handle that.
    Removing already-removed files is harmless, so running twice is too.
    """
    global _exit_hook_registered
    with _SHARED_LOCK:
        if _exit_hook_registered:
            return
        _exit_hook_registered = True
    # A plain interpreter exit (gunicorn's forked workers, a single process).
    atexit.register(_mark_this_process_dead)
    # multiprocessing children (uvicorn's and hypercorn's workers) end with
    # os._exit() and skip atexit; they run multiprocessing's finalizers.
    multiprocessing.util.Finalize(None, _mark_this_process_dead, exitpriority=0)


def _forget_worker_on_shutdown(send: Send) -> Send:
    """``send`` that drops this worker's live gauges once the app shut down.

    Uvicorn's workers end by re-raising the SIGTERM they received, which skips
    every exit hook; the lifespan shutdown is the last moment code runs.
    """

    async def watching_send(message: Message) -> None:
        await send(message)
        if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            _mark_this_process_dead()

    return watching_send
