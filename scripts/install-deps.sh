#!/usr/bin/env bash
# Installs the Debian packages the suite builds and tests with, skipping what is already there.
set -euo pipefail

packages=(build-essential cmake pkg-config clang libclang-rt-14-dev
          libevent-dev libssl-dev libcjson-dev libcurl4-openssl-dev check
          libsnappy-dev zlib1g-dev libsystemd-dev systemd openssl curl python3 chromium)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js and npm drive the tests with real third-party clients (nsqjs) and the browser test. A
# machine may already have a Node.js that bundles npm (and conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
