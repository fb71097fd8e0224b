#!/usr/bin/env bash
# Installation tests: test_install.sh <mode> <build dir> <source dir>
#
#   files   cmake --install into a staging prefix yields the expected files; the staged units pass
#           systemd-analyze verify; a program builds against the installed header, library and
#           nsq.pc.
#   run     from the staged install (not the build tree): nsqlookupd, nsqd and nsqadmin start with
#           copies of the installed example configs (loopback, port 0, a temporary data path),
#           tell a notify socket READY=1; a message published with curl to nsqd's /pub is consumed
#           by the installed nsq_tail and listed by nsqadmin's /api/topics; SIGTERM stops each
#           daemon with exit status 0 after it reported STOPPING=1.
#   deb     cpack -G DEB builds a package listing the binaries, units, configs and maintainer
#           scripts, with dependencies computed by dpkg-shlibdeps.
#
# Every wait polls a condition against a deadline. Exits 1 on the first failed check.
set -euo pipefail

mode=$1
build=$(cd "$2" && pwd)
src=$(cd "$3" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nsq-install-test.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$tmp"/*.log; do
        [ -f "$f" ] || continue
        echo "--- $f" >&2
        tail -n 30 "$f" >&2
    done
    exit 1
}

# wait_for <seconds> <command...>: polls the command every 50 ms until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

stage=$tmp/stage
install_staged() {
    cmake --install "$build" --prefix "$stage" >"$tmp/install.log" 2>&1 ||
        fail "cmake --install failed"
}

expected_files=(
    bin/nsqd bin/nsqlookupd bin/nsqadmin
    bin/nsq_tail bin/to_nsq bin/nsq_to_nsq bin/nsq_to_file bin/nsq_to_http bin/nsq_stat
    bin/nsq_bench
    include/nsq.h lib/libnsq.a lib/libnsqcommon.a lib/pkgconfig/nsq.pc
    lib/systemd/system/nsqd.service lib/systemd/system/nsqlookupd.service
    lib/systemd/system/nsqadmin.service lib/sysusers.d/nsq.conf
    etc/nsq/nsqd.conf etc/nsq/nsqlookupd.conf etc/nsq/nsqadmin.conf
    share/doc/nsq/README.md share/doc/nsq/getting-started.md share/doc/nsq/deploying.md
    share/doc/nsq/configuration.md share/doc/nsq/operations.md share/doc/nsq/compatibility.md
)

test_files() {
    install_staged
    local f
    for f in "${expected_files[@]}"; do
        [ -f "$stage/$f" ] || fail "not installed: $f"
    done
    for f in nsqd nsqlookupd nsqadmin nsq_tail to_nsq nsq_bench; do
        [ -x "$stage/bin/$f" ] || fail "not executable: bin/$f"
    done

    # The units name the staged binaries and configs.
    grep -qx "ExecStart=$stage/bin/nsqd --config=$stage/etc/nsq/nsqd.conf" \
        "$stage/lib/systemd/system/nsqd.service" || fail "nsqd.service ExecStart does not name the install"
    grep -q '@[A-Z_]*@' "$stage"/lib/systemd/system/*.service && fail "unsubstituted @VAR@ in a unit"
    command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (install the systemd package)"
    (cd "$stage/lib/systemd/system" &&
        SYSTEMD_LOG_COLOR=0 systemd-analyze verify nsqd.service nsqlookupd.service nsqadmin.service) \
        >"$tmp/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
    [ -s "$tmp/verify.log" ] && fail "systemd-analyze verify warned: $(cat "$tmp/verify.log")"

    # A client program builds and runs against the installed library through pkg-config.
    grep -qx "prefix=$stage" "$stage/lib/pkgconfig/nsq.pc" || fail "nsq.pc prefix"
    cat >"$tmp/client.c" <<'C'
#include <nsq.h>
#include <stdio.h>
int main(void)
{
    struct nsq_config *cfg = nsq_config_new();
    if (!cfg || nsq_config_set(cfg, "max_in_flight", "10") != 0)
        return 1;
    nsq_config_free(cfg);
    puts(NSQ_LIB_VERSION);
    return 0;
}
C
    local flags
    flags=$(PKG_CONFIG_PATH="$stage/lib/pkgconfig" pkg-config --cflags --libs nsq) ||
        fail "pkg-config nsq"
    # shellcheck disable=SC2086
    ${CC:-cc} ${NSQ_CLIENT_CFLAGS:-} -o "$tmp/client" "$tmp/client.c" $flags 2>"$tmp/cc.log" ||
        fail "client build: $(cat "$tmp/cc.log")"
    [ "$("$tmp/client")" = "1.3.0" ] || fail "client program output"
    echo "files: ok"
}

# ---- run mode -------------------------------------------------------------------------------

# listen_port <log> <TCP|HTTP>: the port a daemon logged as "<kind>: listening on host:port".
listen_port() {
    sed -n "s/.*$2: listening on .*:\([0-9][0-9]*\)\$/\1/p" "$1" | head -n 1
}
has_port() { [ -n "$(listen_port "$1" "$2")" ]; }

# start <name> <config>: starts the staged daemon with its config, its stderr to <name>.log.
start() {
    NOTIFY_SOCKET=$tmp/notify.sock "$stage/bin/$1" --config="$2" >"$tmp/$1.log" 2>&1 &
    pids+=($!)
    eval "pid_$1=$!"
}

# stop <name>: SIGTERM, then the exit status must be 0.
stop() {
    local pid_var=pid_$1 rc=0
    kill -TERM "${!pid_var}"
    wait "${!pid_var}" || rc=$?
    [ "$rc" -eq 0 ] || fail "$1 exited with $rc after SIGTERM"
}

notified() { [ "$(grep -c "^$1 $2" "$tmp/notify.txt" 2>/dev/null)" -ge 1 ]; }

test_run() {
    install_staged
    command -v curl >/dev/null || fail "curl missing"
    local conf=$tmp/conf data=$tmp/data
    mkdir -p "$conf" "$data"

    # Readiness and stopping notifications are collected from a datagram socket, as systemd does.
    python3 -u - "$tmp/notify.sock" >"$tmp/notify.txt" 2>"$tmp/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = 0
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = int.from_bytes(data[0:4], sys.byteorder)
    for line in msg.decode().split("\n"):
        if line:
            print(pid, line)
PY
    pids+=($!)
    disown $! # killed by cleanup; no job-status message
    wait_for 10 test -S "$tmp/notify.sock" || fail "notify socket"

    # nsqlookupd
    sed -e 's|"0.0.0.0:4160"|"127.0.0.1:0"|' -e 's|"0.0.0.0:4161"|"127.0.0.1:0"|' \
        "$stage/etc/nsq/nsqlookupd.conf" >"$conf/nsqlookupd.conf"
    start nsqlookupd "$conf/nsqlookupd.conf"
    wait_for 10 has_port "$tmp/nsqlookupd.log" HTTP || fail "nsqlookupd did not start"
    local lookupd_tcp lookupd_http
    lookupd_tcp=$(listen_port "$tmp/nsqlookupd.log" TCP)
    lookupd_http=$(listen_port "$tmp/nsqlookupd.log" HTTP)

    # nsqd
    sed -e "s|^data_path = .*|data_path = \"$data\"|" \
        -e 's|"0.0.0.0:4150"|"127.0.0.1:0"|' -e 's|"0.0.0.0:4151"|"127.0.0.1:0"|' \
        -e "s|\"127.0.0.1:4160\"|\"127.0.0.1:$lookupd_tcp\"|" \
        "$stage/etc/nsq/nsqd.conf" >"$conf/nsqd.conf"
    echo 'broadcast_address = "127.0.0.1"' >>"$conf/nsqd.conf"
    start nsqd "$conf/nsqd.conf"
    wait_for 10 has_port "$tmp/nsqd.log" HTTP || fail "nsqd did not start"
    local nsqd_tcp nsqd_http
    nsqd_tcp=$(listen_port "$tmp/nsqd.log" TCP)
    nsqd_http=$(listen_port "$tmp/nsqd.log" HTTP)

    # nsqadmin
    sed -e 's|"0.0.0.0:4171"|"127.0.0.1:0"|' \
        -e "s|\"127.0.0.1:4161\"|\"127.0.0.1:$lookupd_http\"|" \
        "$stage/etc/nsq/nsqadmin.conf" >"$conf/nsqadmin.conf"
    start nsqadmin "$conf/nsqadmin.conf"
    wait_for 10 has_port "$tmp/nsqadmin.log" HTTP || fail "nsqadmin did not start"
    local admin_http
    admin_http=$(listen_port "$tmp/nsqadmin.log" HTTP)

    local d
    # shellcheck disable=SC2154
    for d in nsqlookupd nsqd nsqadmin; do
        local pid_var=pid_$d
        wait_for 10 notified "${!pid_var}" READY=1 || fail "$d sent no READY=1"
    done

    # publish with curl, consume with the installed nsq_tail
    [ "$(curl -sS -d 'hello from the installed suite' \
        "http://127.0.0.1:$nsqd_http/pub?topic=install_test")" = "OK" ] || fail "/pub"
    timeout 20 "$stage/bin/nsq_tail" --nsqd-tcp-address="127.0.0.1:$nsqd_tcp" \
        --topic=install_test -n 1 >"$tmp/tail.out" 2>"$tmp/nsq_tail.log" || fail "nsq_tail"
    [ "$(cat "$tmp/tail.out")" = "hello from the installed suite" ] ||
        fail "nsq_tail printed '$(cat "$tmp/tail.out")'"

    # nsqadmin sees the topic through nsqlookupd
    topic_listed() {
        curl -sS "http://127.0.0.1:$admin_http/api/topics" 2>/dev/null |
            grep -q '"topics":\[[^]]*"install_test"'
    }
    wait_for 15 topic_listed || fail "nsqadmin /api/topics: $(curl -sS "http://127.0.0.1:$admin_http/api/topics")"

    for d in nsqadmin nsqd nsqlookupd; do
        stop "$d"
        local pid_var=pid_$d
        wait_for 5 notified "${!pid_var}" STOPPING=1 || fail "$d sent no STOPPING=1"
    done
    [ -f "$data/nsqd.dat" ] || fail "nsqd.dat not written to the configured data path"
    echo "run: ok"
}

# ---- deb mode -------------------------------------------------------------------------------
test_deb() {
    command -v dpkg-deb >/dev/null || fail "dpkg-deb missing"
    (cd "$build" && cpack -G DEB -B "$tmp/pkg") >"$tmp/cpack.log" 2>&1 || fail "cpack: $(tail -n 20 "$tmp/cpack.log")"
    local deb
    deb=$(find "$tmp/pkg" -maxdepth 1 -name 'nsq_*.deb' | head -n 1)
    [ -n "$deb" ] || fail "no .deb produced"
    dpkg-deb -c "$deb" | awk '{print $NF}' >"$tmp/contents.txt"
    local f
    for f in ./usr/bin/nsqd ./usr/bin/nsqlookupd ./usr/bin/nsqadmin ./usr/bin/nsq_tail \
        ./usr/bin/to_nsq ./usr/bin/nsq_bench \
        ./usr/lib/systemd/system/nsqd.service ./usr/lib/systemd/system/nsqlookupd.service \
        ./usr/lib/systemd/system/nsqadmin.service ./usr/lib/sysusers.d/nsq.conf \
        ./etc/nsq/nsqd.conf ./usr/include/nsq.h ./usr/lib/pkgconfig/nsq.pc \
        ./usr/share/doc/nsq/operations.md; do
        grep -qx "$f" "$tmp/contents.txt" || fail "package lacks $f"
    done
    grep -q '^\./usr/local' "$tmp/contents.txt" && fail "package installs under /usr/local"
    dpkg-deb -x "$deb" "$tmp/root"
    grep -qx 'ExecStart=/usr/bin/nsqd --config=/etc/nsq/nsqd.conf' \
        "$tmp/root/usr/lib/systemd/system/nsqd.service" || fail "packaged nsqd.service ExecStart"
    dpkg-deb -f "$deb" Depends >"$tmp/depends.txt"
    for f in libevent adduser libssl; do
        grep -q "$f" "$tmp/depends.txt" || fail "Depends lacks $f: $(cat "$tmp/depends.txt")"
    done
    dpkg-deb -e "$deb" "$tmp/control"
    for f in postinst prerm postrm conffiles; do
        [ -f "$tmp/control/$f" ] || fail "control lacks $f"
    done
    grep -q 'systemd-sysusers\|adduser' "$tmp/control/postinst" || fail "postinst creates no user"
    sh -n "$tmp/control/postinst" || fail "postinst syntax"
    echo "deb: ok"
}

case $mode in
files) test_files ;;
run) test_run ;;
deb) test_deb ;;
*)
    echo "usage: $0 files|run|deb <build dir> <source dir>" >&2
    exit 2
    ;;
esac
