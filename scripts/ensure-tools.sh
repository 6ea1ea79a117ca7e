#!/usr/bin/env bash
# Make sure the tools the test suite drives exist: headless Chromium (the
# browser tests) and promtool (the docs' Prometheus configs). Installed from
# Debian's packages when missing and running as root; under CI=true a tool
# that is still missing is a failure, elsewhere its tests are skipped.
set -euo pipefail

# command:package pairs; the first command found counts for the package.
TOOLS=("chromium chromium-browser google-chrome:chromium" "promtool:prometheus")

found() {
    local cmd
    for cmd in $1; do
        command -v "$cmd" >/dev/null 2>&1 && return 0
    done
    return 1
}

missing=()
for entry in "${TOOLS[@]}"; do
    commands=${entry%%:*}
    package=${entry##*:}
    found "$commands" || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages for the tests: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when they are too old for the install
    # (ensure-redis.sh may have just refreshed them).
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    }
    exit 0
fi

echo "missing for the tests: ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]})." >&2
if [ "${CI:-}" = "true" ]; then
    exit 1
fi
echo "Continuing: the tests that need them will be skipped." >&2
