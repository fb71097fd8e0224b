#!/usr/bin/env bash
# Builds and runs bench/diskqueue_bench.c (diskqueue put/pop records/s) against the nsqcommon
# library of an existing build directory.
#
#   bench/diskqueue.sh [BUILD_DIR] [bench options: -n RECORDS -s SIZE -e SYNC_EVERY -d DIR]
#
# BUILD_DIR defaults to "build". The data directory (-d, default /tmp) gets one queue's files,
# removed at the end.
set -euo pipefail

BUILD_DIR=${1:-build}
[[ $# -gt 0 ]] && shift
SRC=$(cd "$(dirname "$0")/.." && pwd)
if [[ ! -d "$BUILD_DIR" ]]; then
    echo "build directory $BUILD_DIR does not exist (configure it with cmake first)" >&2
    exit 2
fi
cmake --build "$BUILD_DIR" --target nsqcommon -j"$(nproc)" >/dev/null
OUT="$BUILD_DIR/diskqueue_bench"
${CC:-cc} -std=c11 -O2 -D_GNU_SOURCE -I"$SRC/common" -o "$OUT" "$SRC/bench/diskqueue_bench.c" \
    "$BUILD_DIR/common/libnsqcommon.a" $(pkg-config --libs libevent libevent_pthreads 2>/dev/null || echo -levent -levent_pthreads) -lpthread
exec "$OUT" "$@"
