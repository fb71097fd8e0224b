#!/usr/bin/env bash
# Installs what is missing, builds, and runs a local suite with upstream's default ports:
# nsqlookupd (4160/4161), nsqd (4150/4151) registered with it, nsqadmin (4171). Data lives in ./data.
# Ctrl-C stops everything cleanly (nsqd persists its queues).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh build

mkdir -p data/nsqd
pids=()
stop_all() {
    trap - INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait
}
trap stop_all INT TERM

if [ -x build/nsqlookupd/nsqlookupd ]; then
    build/nsqlookupd/nsqlookupd & pids+=($!)
fi
if [ -x build/nsqd/nsqd ]; then
    build/nsqd/nsqd --data-path=data/nsqd --lookupd-tcp-address=127.0.0.1:4160 & pids+=($!)
fi
if [ -x build/nsqadmin/nsqadmin ]; then
    build/nsqadmin/nsqadmin --lookupd-http-address=127.0.0.1:4161 & pids+=($!)
fi
if [ ${#pids[@]} -eq 0 ]; then
    echo "nothing to run yet"
    exit 0
fi
wait
