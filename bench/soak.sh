#!/usr/bin/env bash
# Soak run: nsqd under a steady high publish+consume rate for a long time, its memory sampled.
#
#   bench/soak.sh [BUILD_DIR]        (default: build)
#
# Starts a fresh nsqd (ephemeral loopback ports, a temporary data dir, default options unless
# NSQD_ARGS is set) and runs `nsq_bench pubsub` against it for DURATION, with WRITERS publishing
# connections and READERS consuming ones (RATE messages/s in total, 0 = as fast as possible). Every
# INTERVAL seconds it prints nsqd's VmRSS, its open fds, and the topic's and channel's depth and
# message count from /stats. At the end it prints nsq_bench's RESULT line, the RSS range, the RSS
# growth from the first sample after warm-up to the last, and whether nsqd is still healthy.
#
# Environment: DURATION (default 600s), INTERVAL (default 10), RATE (default 0), SIZE (message
# bytes, default 200), WRITERS (default 4), READERS (default 4), NSQD_ARGS (extra nsqd flags).
# Not part of CI (it runs for minutes); the figures of a run are recorded in docs/reliability.md.
set -euo pipefail

BUILD_DIR=${1:-build}
DURATION=${DURATION:-600s}
INTERVAL=${INTERVAL:-10}
RATE=${RATE:-0}
SIZE=${SIZE:-200}
WRITERS=${WRITERS:-4}
READERS=${READERS:-4}
NSQD_ARGS=${NSQD_ARGS:-}
TOPIC=soak
CHANNEL=ch

if [[ ! -d "$BUILD_DIR" ]]; then
    echo "build directory $BUILD_DIR does not exist (configure it with cmake first)" >&2
    exit 2
fi
cmake --build "$BUILD_DIR" --target nsqd nsq_bench -j"$(nproc)" >/dev/null
NSQD=$(find "$BUILD_DIR" -type f -name nsqd -perm -u+x | head -n1)
BENCH=$(find "$BUILD_DIR" -type f -name nsq_bench -perm -u+x | head -n1)
if [[ -z "$NSQD" || -z "$BENCH" ]]; then
    echo "nsqd or nsq_bench not found under $BUILD_DIR" >&2
    exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nsq-soak.XXXXXX")
NSQD_PID=""
BENCH_PID=""
cleanup() {
    [[ -n "$BENCH_PID" ]] && kill "$BENCH_PID" 2>/dev/null || true
    if [[ -n "$NSQD_PID" ]]; then
        kill -TERM "$NSQD_PID" 2>/dev/null || true
        wait "$NSQD_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck disable=SC2086
"$NSQD" --tcp-address=127.0.0.1:0 --http-address=127.0.0.1:0 --data-path="$WORK" $NSQD_ARGS \
    2>"$WORK/nsqd.log" &
NSQD_PID=$!
for _ in $(seq 100); do
    grep -q "HTTP: listening on" "$WORK/nsqd.log" 2>/dev/null && break
    sleep 0.1
done
TCP=$(grep -o "TCP: listening on [0-9.:]*" "$WORK/nsqd.log" | awk '{print $4}')
HTTP=$(grep -o "HTTP: listening on [0-9.:]*" "$WORK/nsqd.log" | awk '{print $4}')
if [[ -z "$TCP" || -z "$HTTP" ]]; then
    echo "nsqd did not start:" >&2
    cat "$WORK/nsqd.log" >&2
    exit 1
fi
curl -sf -X POST "http://$HTTP/topic/create?topic=$TOPIC" >/dev/null
curl -sf -X POST "http://$HTTP/channel/create?topic=$TOPIC&channel=$CHANNEL" >/dev/null

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$NSQD_PID/status"; }
fds() { ls "/proc/$NSQD_PID/fd" | wc -l; }
stats() {
    curl -sf "http://$HTTP/stats?format=json&topic=$TOPIC" | python3 -c '
import json, sys
s = json.load(sys.stdin)
t = s["topics"][0] if s.get("topics") else {}
c = t.get("channels", [{}])[0] if t.get("channels") else {}
print(t.get("depth", 0), t.get("message_count", 0), c.get("depth", 0), c.get("in_flight_count", 0),
      c.get("message_count", 0), s.get("health", "?"))'
}

echo "soak: nsqd $NSQD, $DURATION, rate ${RATE:-0}/s (0 = unlimited), $SIZE-byte messages," \
    "$WRITERS writers, $READERS readers, nsqd flags: ${NSQD_ARGS:-defaults}"
"$BENCH" pubsub --nsqd-tcp-address="$TCP" --topic="$TOPIC" --channel="$CHANNEL" --size="$SIZE" \
    --runfor="$DURATION" --rate="$RATE" --writers="$WRITERS" --readers="$READERS" \
    --nsqd-pid="$NSQD_PID" --label=soak >"$WORK/bench.out" 2>&1 &
BENCH_PID=$!

printf "%8s %10s %6s %12s %14s %12s %10s %14s %s\n" "t(s)" "rss(kB)" "fds" "topic_depth" \
    "topic_msgs" "chan_depth" "in_flight" "chan_msgs" "health"
START=$(date +%s)
FIRST=""
MIN=""
MAX=0
LAST=0
while kill -0 "$BENCH_PID" 2>/dev/null; do
    sleep "$INTERVAL"
    kill -0 "$NSQD_PID" 2>/dev/null || { echo "nsqd died" >&2; exit 1; }
    NOW=$(($(date +%s) - START))
    R=$(rss_kb)
    read -r TD TM CD CI CM H <<<"$(stats || echo "? ? ? ? ? ?")"
    printf "%8d %10d %6d %12s %14s %12s %10s %14s %s\n" "$NOW" "$R" "$(fds)" "$TD" "$TM" "$CD" \
        "$CI" "$CM" "$H"
    # the first sample is the warm-up point the growth is measured from
    [[ -z "$FIRST" ]] && FIRST=$R
    [[ -z "$MIN" || "$R" -lt "$MIN" ]] && MIN=$R
    [[ "$R" -gt "$MAX" ]] && MAX=$R
    LAST=$R
done
wait "$BENCH_PID" || { echo "nsq_bench failed:" >&2; cat "$WORK/bench.out" >&2; exit 1; }
BENCH_PID=""
grep RESULT "$WORK/bench.out" || cat "$WORK/bench.out"
echo "rss: min ${MIN:-0} kB, max $MAX kB, first $FIRST kB, last $LAST kB," \
    "growth first->last $((LAST - ${FIRST:-0})) kB"
echo "ping: $(curl -s "http://$HTTP/ping")"
