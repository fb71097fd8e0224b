#!/usr/bin/env bash
# Installs what is missing, then builds and tests four trees:
#   build       Release: every test
#   build-asan  AddressSanitizer + UndefinedBehaviorSanitizer: every test
#   build-tsan  ThreadSanitizer: the tests labelled "threads" (code that runs on several threads)
#   build-fuzz  clang + libFuzzer: each fuzz target for a bounded few seconds on its seed corpus
# Exits non-zero as soon as one tree fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

jobs=$(nproc)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

stage() {
    echo
    echo "=== $*"
}

run_ctest() {
    local dir=$1
    shift
    (cd "$dir" && ctest --output-on-failure --no-tests=error -j"$jobs" "$@")
}

stage "build (Release)"
scripts/build.sh build
run_ctest build

stage "build-asan (ASan + UBSan)"
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DNSQ_SANITIZE_ADDRESS=ON
run_ctest build-asan

stage "build-tsan (ThreadSanitizer, threaded code)"
scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=Debug -DNSQ_SANITIZE_THREAD=ON
run_ctest build-tsan -L threads

stage "build-fuzz (libFuzzer, bounded runs)"
CC=clang scripts/build.sh build-fuzz -DCMAKE_BUILD_TYPE=Debug -DNSQ_BUILD_FUZZERS=ON
run_ctest build-fuzz -L fuzz

stage "all test trees passed"
