#!/usr/bin/env bash
# Installs what is missing, builds the normal and the sanitizer trees, and runs every test in both.
# Exits non-zero on the first failing tree.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

run_tree() {
    local dir=$1
    shift
    echo "=== building $dir ($*)"
    scripts/build.sh "$dir" "$@"
    echo "=== testing $dir"
    (cd "$dir" && ctest --output-on-failure -j"$(nproc)")
}

run_tree build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_tree build-asan -DNSQ_SANITIZE_ADDRESS=ON -DCMAKE_BUILD_TYPE=Debug
