#!/usr/bin/env bash
# Runs the standard nsqd benchmark set with nsq_bench and prints one table.
#
#   bench/run.sh [BUILD_DIR]        (default: build)
#
# Builds the nsqd and nsq_bench targets in an existing build directory, then for every case starts
# a fresh nsqd (--mem-queue-size=1000000, a temporary data dir, ephemeral loopback ports), creates
# the topic and channel over HTTP, runs the case and records nsqd's peak RSS. Each figure is also
# given as a fraction of the raw loopback limit for the same bytes, measured in the same run by
# `nsq_bench sink` (the same frames written to a socket whose reader discards them).
#
# Environment: RUNFOR (default 10s) run time of each timed case; PREFILL (default 1000000) messages
# published before the reader cases; RATE (default 50000) messages/s of the latency case; NSQD
# (default: the nsqd built in BUILD_DIR) another nsqd binary to measure with the same cases.
# The "libnsq" rows measure the client library (libnsq_bench) instead of raw sockets: one consumer
# with max_in_flight 2500 whose handler only FINs, and one asynchronous MPUB producer.
set -euo pipefail

BUILD_DIR=${1:-build}
RUNFOR=${RUNFOR:-10s}
PREFILL=${PREFILL:-1000000}
RATE=${RATE:-50000}
TOPIC=bench
CHANNEL=ch

if [[ ! -d "$BUILD_DIR" ]]; then
    echo "build directory $BUILD_DIR does not exist (configure it with cmake first)" >&2
    exit 2
fi
if [[ -n "${NSQD:-}" ]]; then
    cmake --build "$BUILD_DIR" --target nsq_bench libnsq_bench -j"$(nproc)" >/dev/null
else
    cmake --build "$BUILD_DIR" --target nsqd nsq_bench libnsq_bench -j"$(nproc)" >/dev/null
    NSQD=$(find "$BUILD_DIR" -type f -name nsqd -perm -u+x | head -n1)
fi
BENCH=$(find "$BUILD_DIR" -type f -name nsq_bench -perm -u+x | head -n1)
LIBBENCH=$(find "$BUILD_DIR" -type f -name libnsq_bench -perm -u+x | head -n1)
if [[ -z "$NSQD" || -z "$BENCH" || -z "$LIBBENCH" ]]; then
    echo "nsqd, nsq_bench or libnsq_bench not found under $BUILD_DIR" >&2
    exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsq-bench.XXXXXX")
NSQD_PID=""
cleanup() {
    stop_nsqd
    rm -rf "$WORK"
}
trap cleanup EXIT

stop_nsqd() {
    if [[ -n "$NSQD_PID" ]]; then
        kill -TERM "$NSQD_PID" 2>/dev/null || true
        wait "$NSQD_PID" 2>/dev/null || true
        NSQD_PID=""
    fi
}

# Starts nsqd on ephemeral ports and sets NSQD_PID, TCP_ADDR, HTTP_ADDR.
start_nsqd() {
    local data="$WORK/data.$1" log="$WORK/nsqd.$1.log"
    mkdir -p "$data"
    "$NSQD" --tcp-address=127.0.0.1:0 --http-address=127.0.0.1:0 --data-path="$data" \
        --mem-queue-size=1000000 >"$log" 2>&1 &
    NSQD_PID=$!
    TCP_ADDR="" HTTP_ADDR=""
    for _ in $(seq 1 200); do
        TCP_ADDR=$(sed -n 's/.*TCP: listening on \([^ ]*\).*/\1/p' "$log" | head -n1)
        HTTP_ADDR=$(sed -n 's/.*HTTP: listening on \([^ ]*\).*/\1/p' "$log" | head -n1)
        [[ -n "$TCP_ADDR" && -n "$HTTP_ADDR" ]] && break
        kill -0 "$NSQD_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [[ -z "$TCP_ADDR" || -z "$HTTP_ADDR" ]]; then
        echo "nsqd did not start; its log:" >&2
        cat "$log" >&2
        exit 1
    fi
    curl -fsS -X POST "http://$HTTP_ADDR/topic/create?topic=$TOPIC" >/dev/null
    curl -fsS -X POST "http://$HTTP_ADDR/channel/create?topic=$TOPIC&channel=$CHANNEL" >/dev/null
}

# Pulls one key out of a RESULT line ("-" when absent).
field() {
    local v
    v=$(tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n1)
    echo "${v:--}"
}

# Runs nsq_bench (or, with BIN set, that program) with the given arguments; prints its RESULT line.
bench() {
    local out
    if ! out=$("${BIN:-$BENCH}" "$@" 2>&1); then
        echo "$(basename "${BIN:-$BENCH}") $* failed:" >&2
        echo "$out" >&2
        exit 1
    fi
    grep '^RESULT ' <<<"$out" | tail -n1
}

declare -A LIMIT # "format size conns" -> msgs/s of the loopback sink
limit_for() {
    local key="$1 $2 $3"
    if [[ -z "${LIMIT[$key]:-}" ]]; then
        local r
        r=$(bench sink --sink-format="$1" --size="$2" --batch-size=200 --writers="$3" --runfor="$RUNFOR")
        LIMIT[$key]=$(field "$r" msgs_per_sec)
    fi
    echo "${LIMIT[$key]}"
}

ROWS=()
add_row() { # name result-line limit
    local r=$2 rate mbs frac p50 p99 p999 hwm
    rate=$(field "$r" msgs_per_sec)
    mbs=$(field "$r" mb_per_sec)
    frac=$(awk -v a="$rate" -v b="$3" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
    p50=$(field "$r" p50_us)
    p99=$(field "$r" p99_us)
    p999=$(field "$r" p999_us)
    hwm=$(field "$r" nsqd_hwm_kb)
    [[ "$hwm" != "-" ]] && hwm=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
    ROWS+=("$(printf '%-22s %12.0f %9.1f %8s %10s %10s %10s %10s' "$1" "$rate" "$mbs" "$frac" \
        "$p50" "$p99" "$p999" "$hwm")")
    echo "done: $1" >&2
}

n=0
writer_case() { # name size writers
    n=$((n + 1))
    start_nsqd "$n"
    local r
    r=$(bench writer --nsqd-tcp-address="$TCP_ADDR" --topic=$TOPIC --size="$2" --batch-size=200 \
        --writers="$3" --runfor="$RUNFOR" --nsqd-pid="$NSQD_PID" --label="$1")
    stop_nsqd
    add_row "$1" "$r" "$(limit_for mpub "$2" "$3")"
}

reader_case() { # name size readers
    n=$((n + 1))
    start_nsqd "$n"
    bench writer --nsqd-tcp-address="$TCP_ADDR" --topic=$TOPIC --size="$2" --batch-size=200 \
        --writers=1 --runfor=600s --count="$PREFILL" >/dev/null
    local r
    r=$(bench reader --nsqd-tcp-address="$TCP_ADDR" --topic=$TOPIC --channel=$CHANNEL \
        --size="$2" --readers="$3" --rdy=2500 --runfor="$RUNFOR" --count="$PREFILL" \
        --nsqd-pid="$NSQD_PID" --label="$1")
    stop_nsqd
    add_row "$1" "$r" "$(limit_for message "$2" "$3")"
}

libnsq_consumer_case() { # name size
    n=$((n + 1))
    start_nsqd "$n"
    bench writer --nsqd-tcp-address="$TCP_ADDR" --topic=$TOPIC --size="$2" --batch-size=200 \
        --writers=1 --runfor=600s --count="$PREFILL" >/dev/null
    local r
    r=$(BIN="$LIBBENCH" bench consumer --nsqd-tcp-address="$TCP_ADDR" --topic=$TOPIC \
        --channel=$CHANNEL --size="$2" --max-in-flight=2500 --runfor="$RUNFOR" \
        --count="$PREFILL" --label="$1")
    stop_nsqd
    add_row "$1" "$r" "$(limit_for message "$2" 1)"
}

libnsq_producer_case() { # name size
    n=$((n + 1))
    start_nsqd "$n"
    local r
    r=$(BIN="$LIBBENCH" bench producer --nsqd-tcp-address="$TCP_ADDR" --topic=$TOPIC \
        --size="$2" --batch-size=200 --pipeline=4 --runfor="$RUNFOR" --label="$1")
    stop_nsqd
    add_row "$1" "$r" "$(limit_for mpub "$2" 1)"
}

pubsub_case() { # name size batch rate
    n=$((n + 1))
    start_nsqd "$n"
    local r
    r=$(bench pubsub --nsqd-tcp-address="$TCP_ADDR" --topic=$TOPIC --channel=$CHANNEL \
        --size="$2" --batch-size="$3" --rate="$4" --writers=1 --readers=1 --rdy=2500 \
        --runfor="$RUNFOR" --nsqd-pid="$NSQD_PID" --label="$1")
    stop_nsqd
    add_row "$1" "$r" "$(limit_for message "$2" 1)"
}

writer_case "write 200B x1" 200 1
writer_case "write 200B x4" 200 4
writer_case "write 16B x1" 16 1
writer_case "write 16B x4" 16 4
reader_case "read 200B x1" 200 1
reader_case "read 200B x4" 200 4
reader_case "read 16B x1" 16 1
libnsq_producer_case "libnsq write 200B" 200
libnsq_consumer_case "libnsq read 200B" 200
pubsub_case "pubsub 200B max" 200 200 0
pubsub_case "pubsub 200B @${RATE}/s" 200 10 "$RATE"

echo
echo "nsqd benchmark (runfor $RUNFOR, reader prefill $PREFILL; batch 200; latencies in us;"
echo "'of limit' = msgs/s relative to a loopback sink fed the same frames on as many connections)"
printf '%-22s %12s %9s %8s %10s %10s %10s %10s\n' case msgs/s MB/s "of limit" p50 p99 p99.9 \
    "nsqd RSS MB"
for row in "${ROWS[@]}"; do
    echo "$row"
done
