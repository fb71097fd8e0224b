#!/usr/bin/env bash
# A cluster across network namespaces: two nsqlookupd and three nsqd, each on a host of its own
# (its own namespace and address, joined by a bridge), as on separate machines. A producer publishes
# to every nsqd; a consumer on another host discovers them through /lookup and receives every message
# across the "network"; every lookupd lists every nsqd under its own broadcast address.
#
#   test_cluster_netns.sh <nsqd> <nsqlookupd> <nsq_tail>
#
# Needs root (ip netns). Elsewhere it says so and exits 77, which CTest reports as skipped.
set -euo pipefail

NSQD=$1
NSQLOOKUPD=$2
NSQ_TAIL=$3

if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
    echo "SKIPPED: network namespaces need root and iproute2 (ip); run as root to test this case"
    exit 77
fi

tag="nsqc$$"
subnet=10.231.$(($$ % 200)).
hub="$tag-hub"
hosts=(lk1 lk2 n1 n2 n3 cons)
declare -A addr
work=$(mktemp -d "${TMPDIR:-/tmp}/nsq-netns.XXXXXX")
pids=()

cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    for h in "${hosts[@]}"; do ip netns del "$tag-$h" 2>/dev/null; done
    ip netns del "$hub" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    for log in "$work"/*.log; do
        echo "--- $log"
        tail -n 20 "$log"
    done
    exit 1
}

in_ns() {
    local h=$1
    shift
    ip netns exec "$tag-$h" "$@"
}

# Polls a command until it succeeds or the deadline (seconds) passes.
wait_for() {
    local seconds=$1
    shift
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# --- the network: one bridge in a hub namespace, one veth per host ---
ip netns add "$hub"
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
i=10
for h in "${hosts[@]}"; do
    ns="$tag-$h"
    addr[$h]="${subnet}$i"
    ip netns add "$ns"
    ip link add "v$tag$i" type veth peer name "p$tag$i"
    ip link set "v$tag$i" netns "$ns"
    ip link set "p$tag$i" netns "$hub"
    ip -n "$ns" link set "v$tag$i" name eth0
    ip -n "$ns" addr add "${addr[$h]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip -n "$hub" link set "p$tag$i" master br0
    ip -n "$hub" link set "p$tag$i" up
    i=$((i + 1))
done

# --- the daemons, each on its own host with the default ports ---
for h in lk1 lk2; do
    # Not through in_ns: a backgrounded function would be a subshell, and $! must be the daemon.
    ip netns exec "$tag-$h" "$NSQLOOKUPD" --broadcast-address="${addr[$h]}" \
        >"$work/$h.log" 2>&1 &
    pids+=($!)
done
for h in lk1 lk2; do
    wait_for 10 in_ns "$h" curl -sf "http://${addr[$h]}:4161/ping" -o /dev/null ||
        fail "nsqlookupd on $h did not start"
done
for h in n1 n2 n3; do
    mkdir -p "$work/data-$h"
    ip netns exec "$tag-$h" "$NSQD" --data-path="$work/data-$h" --broadcast-address="${addr[$h]}" \
        --lookupd-tcp-address="${addr[lk1]}:4160" --lookupd-tcp-address="${addr[lk2]}:4160" \
        >"$work/$h.log" 2>&1 &
    pids+=($!)
done
for h in n1 n2 n3; do
    wait_for 10 in_ns "$h" curl -sf "http://${addr[$h]}:4151/ping" -o /dev/null ||
        fail "nsqd on $h did not start"
done

# --- publish 10 messages to each nsqd, from the consumer's host, over the bridge ---
for h in n1 n2 n3; do
    for k in $(seq 1 10); do
        in_ns cons curl -sf -X POST --data-binary "$h-$k" \
            "http://${addr[$h]}:4151/pub?topic=spread" -o /dev/null || fail "publish to $h"
    done
done

# --- every lookupd knows all three producers under their own addresses ---
producers_registered() {
    local lk=$1 out
    out=$(in_ns cons curl -sf "http://${addr[$lk]}:4161/lookup?topic=spread") || return 1
    for h in n1 n2 n3; do
        grep -q "\"broadcast_address\":\"${addr[$h]}\"" <<<"$out" || return 1
    done
}
for lk in lk1 lk2; do
    wait_for 20 producers_registered "$lk" || fail "$lk does not list every nsqd for the topic"
done

# --- a consumer on its own host discovers the nsqds through lookupd and gets every message ---
in_ns cons timeout 60 "$NSQ_TAIL" --topic=spread --channel=all \
    --lookupd-http-address="${addr[lk1]}:4161" -n 30 >"$work/received.txt" 2>"$work/tail.log" ||
    fail "nsq_tail did not receive 30 messages"
for h in n1 n2 n3; do
    for k in $(seq 1 10); do
        grep -qx "$h-$k" "$work/received.txt" || fail "message $h-$k not received"
    done
done

# --- a clean stop of every daemon ---
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
for pid in "${pids[@]}"; do wait "$pid" || fail "a daemon exited with status $?"; done
pids=()

echo "netns cluster: 2 lookupd + 3 nsqd on separate hosts, 30/30 messages delivered"
echo "1 passed, 0 failed"
