#!/usr/bin/env bash
# Make sure the Redis binaries the tests start exist: redis-server (one Redis
# and the local Redis Cluster), redis-cli (creates the cluster) and
# redis-sentinel (the Sentinel set-up). The tests start their own processes.
set -euo pipefail

# binary -> Debian package
declare -A PACKAGE=(
    [redis-server]=redis-server
    [redis-cli]=redis-tools
    [redis-sentinel]=redis-sentinel
)

missing() {
    local out=()
    for binary in redis-server redis-cli redis-sentinel; do
        command -v "$binary" >/dev/null 2>&1 || out+=("$binary")
    done
    echo "${out[@]:-}"
}

todo=$(missing)
if [ -z "$todo" ]; then
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    packages=()
    for binary in $todo; do
        packages+=("${PACKAGE[$binary]}")
    done
    echo "not found: $todo; installing Debian packages: ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${packages[@]}" >/dev/null
    # The packages start system services; the tests use their own processes.
    todo=$(missing)
    if [ -z "$todo" ]; then
        exit 0
    fi
fi

echo "Redis binaries not found: $todo." >&2
echo "Install them (Debian/Ubuntu: sudo apt-get install redis-server redis-tools redis-sentinel;" >&2
echo "macOS: brew install redis, which ships all three)." >&2
if [ "${CI:-}" = "true" ]; then
    echo "CI=true: the Redis, Cluster and Sentinel tests cannot run; failing." >&2
    exit 1
fi
echo "Continuing: the tests that need them will be skipped." >&2
