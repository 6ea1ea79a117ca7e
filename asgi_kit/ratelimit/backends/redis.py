"""``RedisBackend``: one atomic Lua script per decision, on the server's clock."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from asgi_kit._backend_failures import DEFAULT_INTERVAL, check_interval, check_registry
from asgi_kit._redis import (
    DEFAULT_MAX_CONNECTIONS,
    LoopBoundClient,
    bind_client,
    check_max_connections,
    check_timeout,
)
from asgi_kit.ratelimit.rule import Rule

from .base import Backend, BackendError, Outcome

if TYPE_CHECKING:  # pragma: no cover
    from redis.asyncio import Redis, RedisCluster

__all__ = ["REFUND_SCRIPT", "SCRIPT", "RedisBackend"]

_logger = logging.getLogger("asgi_kit.ratelimit")

# KEYS: one state key per applicable rule.  ARGV: four numbers per rule:
# algorithm (1 gcra, 2 sliding window, 3 fixed window), count, period (µs),
# cost.  Time is the server's TIME in µs, so every worker and host shares one
# clock.  Pass 1 decides every rule; pass 2 writes state only when all rules
# admit, so a denied request consumes nothing.  Reply: {admitted, then per
# rule: admitted, remaining, reset µs, retry-after µs}.  Floats are stored
# with %.17g: Lua's default number formatting keeps only 14 digits.
SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local eps = 0.001
local out = {1}
local writes = {}
for i = 1, #KEYS do
  local j = (i - 1) * 4
  local alg = tonumber(ARGV[j + 1])
  local count = tonumber(ARGV[j + 2])
  local period = tonumber(ARGV[j + 3])
  local cost = tonumber(ARGV[j + 4])
  local ok, remaining, reset, wait = 0, 0, 0, 0
  local key = KEYS[i]
  if alg == 1 then
    local interval = period / count
    local tat = tonumber(redis.call('GET', key)) or now
    if tat < now then tat = now end
    local new_tat = tat + cost * interval
    local allow_at = new_tat - period
    if allow_at - now > eps then
      wait = allow_at - now
      reset = wait
      remaining = math.floor((period - (tat - now)) / interval + 1e-9)
    else
      ok = 1
      reset = new_tat - now
      remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
      writes[i] = {1, string.format('%.17g', new_tat), math.ceil(reset / 1000)}
    end
  elseif alg == 3 then
    local s = redis.call('HMGET', key, 'e', 'u')
    local e, used = tonumber(s[1]), tonumber(s[2])
    if not e or e <= now then e, used = now + period, 0 end
    reset = e - now
    if used + cost > count then
      wait = reset
      remaining = count - used
    else
      ok = 1
      used = used + cost
      remaining = count - used
      writes[i] = {3, string.format('%.17g', e), used, math.ceil(reset / 1000)}
    end
  else
    local s = redis.call('HMGET', key, 'o', 'i', 'c', 'p')
    local origin, index = tonumber(s[1]), tonumber(s[2])
    local cur, prev = tonumber(s[3]) or 0, tonumber(s[4]) or 0
    local idx = 0
    if origin and index then
      idx = math.floor((now - origin) / period)
      if idx ~= index then
        if idx == index + 1 then prev = cur else prev = 0 end
        cur = 0
      end
    else
      origin, cur, prev = now, 0, 0
    end
    local left = period - (now - origin - idx * period)
    local est = prev * left / period + cur
    if est + cost > count + 1e-9 then
      local need = count - cost
      if cur <= need then
        wait = left - (need - cur) * period / prev
      else
        wait = left + period - need * period / cur
      end
      if wait < 1 then wait = 1 end
      reset = wait
      remaining = math.floor(count - est + 1e-9)
    else
      ok = 1
      reset = left + period
      remaining = math.floor(count - est - cost + 1e-9)
      writes[i] = {2, string.format('%.17g', origin), idx, cur + cost, prev,
                   math.ceil((left + period) / 1000)}
    end
  end
  if ok == 0 then out[1] = 0 end
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = ok
  out[#out + 1] = remaining
  out[#out + 1] = math.ceil(reset)
  out[#out + 1] = math.ceil(wait)
end
if out[1] == 1 then
  for i = 1, #KEYS do
    local w = writes[i]
    if w[1] == 1 then
      redis.call('SET', KEYS[i], w[2], 'PX', w[3])
    elseif w[1] == 3 then
      redis.call('HSET', KEYS[i], 'e', w[2], 'u', w[3])
      redis.call('PEXPIRE', KEYS[i], w[4])
    else
      redis.call('HSET', KEYS[i], 'o', w[2], 'i', w[3], 'c', w[4], 'p', w[5])
      redis.call('PEXPIRE', KEYS[i], w[6])
    end
  end
end
return out
"""
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()

# Gives back what SCRIPT charged (same KEYS and ARGV).  Used only on Redis
# Cluster, for a request whose rules live in different hash slots: each slot
# is decided by its own SCRIPT call, and when one slot denies, the slots that
# admitted are refunded, so a denied request consumes no quota anywhere.
REFUND_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i = 1, #KEYS do
  local j = (i - 1) * 4
  local alg = tonumber(ARGV[j + 1])
  local count = tonumber(ARGV[j + 2])
  local period = tonumber(ARGV[j + 3])
  local cost = tonumber(ARGV[j + 4])
  local key = KEYS[i]
  if alg == 1 then
    local tat = tonumber(redis.call('GET', key))
    if tat then
      tat = tat - cost * period / count
      if tat - now >= 1000 then
        redis.call('SET', key, string.format('%.17g', tat), 'PX', math.ceil((tat - now) / 1000))
      else
        redis.call('DEL', key)
      end
    end
  elseif alg == 3 then
    local s = redis.call('HMGET', key, 'e', 'u')
    local e, used = tonumber(s[1]), tonumber(s[2])
    if e and used and e > now then
      used = used - cost
      if used < 0 then used = 0 end
      redis.call('HSET', key, 'u', used)
    end
  else
    local s = redis.call('HMGET', key, 'o', 'i', 'c')
    local origin, index, cur = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
    if origin and index and cur then
      local idx = math.floor((now - origin) / period)
      if idx <= index + 1 then
        cur = cur - cost
        if cur < 0 then cur = 0 end
        redis.call('HSET', key, 'c', cur)
      end
    end
  end
end
return 1
"""
REFUND_SHA = hashlib.sha1(REFUND_SCRIPT.encode(), usedforsecurity=False).hexdigest()


class RedisBackend(Backend):
    """Rate-limit state in Redis, shared exactly by every worker and host.

    Each decision is **one round trip**: a single ``EVALSHA`` of a Lua script
    that reads the server's ``TIME``, decides every rule that applies to the
    request and writes their state only when all of them admit it.  Because
    the script runs atomically and uses the server's clock, any number of
    processes on hosts with skewed clocks share one exact limit.  Keys expire
    on their own.  When the script is not cached (a restarted or flushed
    server, a promoted replica) the same decision is retried with ``EVAL``,
    which caches it again.

    ``url_or_client`` is a URL (``redis://``, ``rediss://``, ``unix://``,
    ``redis+cluster://host:port[,host:port]`` or
    ``redis+sentinel://host:port[,host:port]/service_name``), or a
    ``redis.asyncio`` client: ``Redis``, ``RedisCluster``, or a Sentinel's
    ``master_for()`` client.  Keys are ``{prefix}{rule}:{{{client}}}``: the
    client key is a Redis Cluster hash tag, so all the rules of one request
    that share a key function land in one slot and are decided by one
    script.  Rules whose keys fall in different slots are decided by one
    script per slot, concurrently; when any slot denies, the slots that
    admitted are refunded, so a denied request consumes no quota anywhere.

    ``max_connections`` (default 50; per node on a cluster) caps the
    connections a client built from a URL opens, and how many decisions are
    in flight on one client at once: a burst beyond it waits for a free
    connection, within ``timeout``, instead of failing.  For a client you
    pass in, the cap is the smaller of ``max_connections`` and its own pool's.
    Decisions started in the same event-loop iteration (a burst) are sent
    together in pipelines of up to 128, each still its own ``EVALSHA``.

    Failures are logged collapsed (the first at once, then one summary per
    ``failure_log_interval`` seconds) and counted in
    ``asgi_kit_backend_failures_total`` on ``registry`` (default: the global
    prometheus_client REGISTRY).

    ``timeout`` (seconds) bounds each decision, including waiting for a
    connection and connecting; on expiry (or any Redis error) the decision
    raises :class:`BackendError` and the middleware applies
    ``on_backend_error``.  Requires Redis >= 5 (scripts that call ``TIME``
    need effects replication, the default since 5).
    """

    def __init__(
        self,
        url_or_client: str | Redis | RedisCluster,
        prefix: str = "ratelimit:",
        timeout: float = 1.0,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        registry: CollectorRegistry | None = None,
        failure_log_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {prefix!r}")
        self.timeout = check_timeout(timeout)
        self.max_connections = check_max_connections(max_connections)
        #: Where ``asgi_kit_backend_failures_total`` is counted (None: the default REGISTRY).
        self.registry = check_registry(registry)
        #: Seconds between summary log lines while Redis keeps failing.
        self.failure_log_interval = check_interval(failure_log_interval)
        try:
            import redis.asyncio as aioredis
            from redis.exceptions import NoScriptError, RedisError
        except ImportError as exc:  # pragma: no cover (the redis extra is installed in dev)
            raise ImportError(
                "RedisBackend needs the redis package: pip install 'asgi-kit[redis]'"
            ) from exc
        self.prefix = prefix
        self._redis = bind_client(url_or_client, self.timeout, self.max_connections)
        if not callable(getattr(self._redis.client, "evalsha", None)):
            raise TypeError(
                "url_or_client must be a Redis URL or a redis.asyncio client, "
                f"got {url_or_client!r}"
            )
        self._cluster = isinstance(self.client, aioredis.RedisCluster)
        self._no_script = NoScriptError
        self._redis_error = RedisError
        self._calls: _ScriptCalls | None = None

    @property
    def client(self) -> Any:
        """The ``redis.asyncio`` client in use (re-created per event loop when built from a URL)."""
        return self._redis.client

    def key_for(self, rule: Rule, key: str) -> str:
        """The Redis key holding ``rule``'s state for client ``key``.

        For operations: ``DEL`` it to reset one client's quota, ``TTL`` it to
        see when the state expires.  The client key is a hash tag, so all of
        one client's rules live in one Redis Cluster slot.
        """
        return f"{self.prefix}{rule.ident}:{{{key}}}"

    async def hit(self, checks: Sequence[tuple[Rule, str]]) -> Sequence[Outcome]:
        keys = [self.key_for(rule, key) for rule, key in checks]
        if self._cluster and len(keys) > 1:
            return await self._hit_cluster(checks, keys)
        return await self._decide(checks, keys)

    async def _decide(self, checks: Sequence[tuple[Rule, str]], keys: list[str]) -> list[Outcome]:
        reply = await self._call(SCRIPT, SCRIPT_SHA, keys, _args(checks))
        try:
            values = [int(v) for v in reply]
        except (TypeError, ValueError) as exc:
            raise BackendError(f"unexpected script reply {reply!r}") from exc
        if len(values) != 1 + 4 * len(checks):
            raise BackendError(f"unexpected script reply {reply!r}")
        return [
            Outcome(
                values[i] == 1,
                values[i + 1],
                values[i + 2] / 1_000_000,
                values[i + 3] / 1_000_000,
            )
            for i in range(1, len(values), 4)
        ]

    async def _call(self, script: str, sha: str, keys: list[str], args: list[int]) -> Any:
        """Run ``script`` once within ``timeout``; every failure becomes BackendError."""
        try:
            return await asyncio.wait_for(self._run(script, sha, keys, args), self.timeout)
        except asyncio.TimeoutError:
            raise BackendError(f"Redis did not answer within {self.timeout}s") from None
        except self._redis_error as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}") from exc

    def _run(self, script: str, sha: str, keys: list[str], args: list[int]) -> Awaitable[Any]:
        loop = asyncio.get_running_loop()
        calls = self._calls
        if calls is None or calls.loop is not loop:
            calls = self._calls = _ScriptCalls(self._redis)
        return calls.submit(loop, script, sha, keys, args)

    async def _hit_cluster(
        self, checks: Sequence[tuple[Rule, str]], keys: list[str]
    ) -> list[Outcome]:
        from redis.crc import key_slot

        groups: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key_slot(key.encode()), []).append(i)
        if len(groups) == 1:
            return await self._decide(checks, keys)
        # One atomic script per slot, all slots at once.  A denial in one slot
        # refunds the slots that admitted: the request consumes nothing.
        parts = list(groups.values())
        results = await asyncio.gather(
            *(self._decide([checks[i] for i in ix], [keys[i] for i in ix]) for ix in parts),
            return_exceptions=True,
        )
        charged = [
            ix
            for ix, result in zip(parts, results, strict=True)
            if isinstance(result, list) and all(o.allowed for o in result)
        ]
        failed = [r for r in results if isinstance(r, BaseException)]
        if len(charged) == len(parts):
            return _in_order(len(checks), parts, results)  # type: ignore[arg-type]
        await self._refund(checks, keys, charged)
        if failed:
            error = failed[0]
            if isinstance(error, BackendError):
                raise error
            raise BackendError(f"{type(error).__name__}: {error}") from error
        outcomes = _in_order(len(checks), parts, results)  # type: ignore[arg-type]
        refunded = {i for ix in charged for i in ix}
        for i in refunded:  # what the refunded rule has left, as if never charged
            rule = checks[i][0]
            outcomes[i] = outcomes[i]._replace(
                remaining=min(rule.count, outcomes[i].remaining + rule.cost)
            )
        return outcomes

    async def _refund(
        self, checks: Sequence[tuple[Rule, str]], keys: list[str], parts: list[list[int]]
    ) -> None:
        """Give back what the slots in ``parts`` charged (best effort: logged, not raised)."""
        results = await asyncio.gather(
            *(
                self._call(
                    REFUND_SCRIPT,
                    REFUND_SHA,
                    [keys[i] for i in ix],
                    _args([checks[i] for i in ix]),
                )
                for ix in parts
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                _logger.warning("rate limit refund on another cluster slot failed: %s", result)

    async def close(self) -> None:
        """Close the connection pool when the backend created the client."""
        await self._redis.aclose()

    def __repr__(self) -> str:
        return (
            f"RedisBackend(prefix={self.prefix!r}, timeout={self.timeout}, "
            f"max_connections={self.max_connections})"
        )


class _ScriptCalls:
    """The decisions in flight on one event loop, sent to Redis in pipelines.

    Decisions started in the same loop iteration (a burst) are written to
    one pooled connection together (``pipeline(transaction=False)``, up to
    ``MAX_BATCH`` per pipeline) instead of each waiting for a connection of
    its own: still one ``EVALSHA`` per decision, each atomic on its own, but
    one network round trip for the lot and far less client work per
    decision.  A decision alone in its loop iteration is sent on its own.
    Each decision gets its own reply or error; a connection failure fails
    the decisions of that pipeline.  A script missing from the server's
    cache (NOSCRIPT) is sent again with ``EVAL`` within the same decision.
    """

    MAX_BATCH = 128

    __slots__ = (
        "_connection_error",
        "_holder",
        "_no_script",
        "_queue",
        "_redis_error",
        "_scheduled",
        "_tasks",
        "loop",
    )

    def __init__(self, holder: LoopBoundClient) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import NoScriptError, RedisError

        self.loop = asyncio.get_running_loop()
        self._holder = holder
        self._no_script = NoScriptError
        self._redis_error = RedisError
        self._connection_error = RedisConnectionError
        self._queue: list[tuple[str, str, list[str], list[int], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(
        self,
        loop: asyncio.AbstractEventLoop,
        script: str,
        sha: str,
        keys: list[str],
        args: list[int],
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((script, sha, keys, args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        for start in range(0, len(queue), self.MAX_BATCH):
            task = self.loop.create_task(self._send(queue[start : start + self.MAX_BATCH]))
            self._tasks.add(task)  # a strong reference until it is done
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self, batch: list[tuple[str, str, list[str], list[int], asyncio.Future[Any]]]
    ) -> None:
        client = self._holder.get()
        try:
            # One pooled connection per pipeline: wait for it (the caller's
            # timeout bounds the wait) instead of overrunning the pool.
            async with self._holder.gate():
                batch = [call for call in batch if not call[4].done()]  # timed out meanwhile
                if not batch:
                    return
                if len(batch) == 1:
                    results = [await self._one(client, *batch[0][:4])]
                else:
                    results = await self._pipeline(client, batch)
        except Exception as exc:  # the connection failed: every decision of it did
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (the loop is closing): so are the callers
            for *_, future in batch:
                future.cancel()
            raise
        for (*_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _one(
        self, client: Any, script: str, sha: str, keys: list[str], args: list[int]
    ) -> Any:
        try:
            try:
                return await client.evalsha(sha, len(keys), *keys, *args)
            except self._no_script:
                # The server lost its script cache (restart, failover, SCRIPT
                # FLUSH): EVAL decides this request and caches the script.
                return await client.eval(script, len(keys), *keys, *args)
        except self._redis_error as exc:
            return exc

    async def _pipeline(
        self, client: Any, batch: list[tuple[str, str, list[str], list[int], asyncio.Future[Any]]]
    ) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for _, sha, keys, args, _ in batch:
            pipe.evalsha(sha, len(keys), *keys, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        # A cluster pipeline reports a node's dropped connection (a failover)
        # per command instead of raising: send those once more, when the
        # client has looked up the new topology.  (Retrying can only charge
        # twice, never admit more.)  Then NOSCRIPT: a promoted replica or a
        # restarted server has no cached script; EVAL caches it again.
        for retry, method in ((self._connection_error, "evalsha"), (self._no_script, "eval")):
            again = [i for i, result in enumerate(results) if isinstance(result, retry)]
            if not again:
                continue
            pipe = client.pipeline(transaction=False)
            for i in again:
                script, sha, keys, args, _ = batch[i]
                first = script if method == "eval" else sha
                getattr(pipe, method)(first, len(keys), *keys, *args)
            for i, result in zip(again, await pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
        return results


def _args(checks: Sequence[tuple[Rule, str]]) -> list[int]:
    args: list[int] = []
    for rule, _ in checks:
        args += (rule.algorithm_id, rule.count, rule.period * 1_000_000, rule.cost)
    return args


def _in_order(n: int, parts: list[list[int]], results: list[list[Outcome]]) -> list[Outcome]:
    outcomes: list[Outcome] = [None] * n  # type: ignore[list-item]
    for ix, part in zip(parts, results, strict=True):
        for i, outcome in zip(ix, part, strict=True):
            outcomes[i] = outcome
    return outcomes
