#!/usr/bin/env bash
# Make sure a redis-server binary exists for the Redis tests (they start their own server).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "redis-server not found: installing Debian's redis-server package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server >/dev/null
    exit 0
fi
echo "redis-server not found. Install it (Debian/Ubuntu: sudo apt-get install redis-server," >&2
echo "macOS: brew install redis) or set REDIS_URL to a Redis you can flush." >&2
if [ "${CI:-}" = "true" ] && [ -z "${REDIS_URL:-}" ]; then
    exit 1
fi
echo "Continuing: the Redis tests will be skipped." >&2
