#!/bin/bash
# fennec anycast lab: N nodes behind one router with BIRD 2, eBGP, BFD and ECMP, in network
# namespaces on this machine (as root).
#
#   deploy/lab/lab.sh up N      build the lab with N nodes (1..16); n1 is the primary
#   deploy/lab/lab.sh down      stop everything, delete the namespaces, remove /run/fennec-lab
#   deploy/lab/lab.sh status    namespaces, processes, the router's view of the service
#   deploy/lab/lab.sh stop K    stop node K's processes (supervisor and fennecd; BIRD stays)
#   deploy/lab/lab.sh start K   start them again (FENNEC_LAB_FENNECD: another fennecd to run)
#
# Names (docs/deploy.md; other tools rely on them):
#   fennec-rt              router: BIRD (dynamic eBGP from every node, BFD, ECMP merge paths)
#   fennec-n1..fennec-nN   nodes: 192.0.2.53/32 on lo, fennec-supervisor + fennecd + BIRD;
#                          control endpoint 127.0.0.1:8053 inside each
#   fennec-cl              client, 10.53.0.2, routed through the router
#   /run/fennec-lab/key    the cluster key
#   /run/fennec-lab/nK/    fennec.yaml, {supervisor,fennecd,bird}.pid and .log, bird.ctl, data/
#   /run/fennec-lab/rt/    the router's bird.conf, bird.pid, bird.log, bird.ctl
# Links: node K's uplink is 10.53.K.2/24 (fennec-nK, "up0") to 10.53.K.1 (fennec-rt,
# "rt-nK"); the client's is 10.53.0.2/24 to 10.53.0.1.
#
# Binaries: fennecd, fennecctl and fennec-supervisor from $FENNEC_BUILD when set, else from
# build/release (built here first). Without fennec-supervisor, fennecd runs alone and the
# lab enables each node's service route by hand once the node answers.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN=/run/fennec-lab
SERVICE=192.0.2.53
RT=fennec-rt
CL=fennec-cl
PROTOCOL=fennec_service
RENDER=("$ROOT/deploy/anycast/render.py")
PROBE="$ROOT/deploy/lab/probe.py"
UP_TIMEOUT=${FENNEC_LAB_TIMEOUT:-60} # seconds `up` waits for the nodes to answer

say() { echo "lab: $*" >&2; }
die() {
    say "$*"
    exit 1
}

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, port 53)"; }

need_tools() {
    local t
    for t in ip bird birdc python3 sysctl; do
        command -v "$t" >/dev/null 2>&1 ||
            die "$t is missing: apt-get install iproute2 bird2 python3 procps"
    done
}

binaries() {
    if [ -n "${FENNEC_BUILD:-}" ]; then
        BIN=$(cd "$FENNEC_BUILD" && pwd)
    else
        BIN="$ROOT/build/release"
        say "building $BIN"
        cmake -S "$ROOT" -B "$BIN" -DCMAKE_BUILD_TYPE=Release -DFENNEC_TESTS=OFF >/dev/null
        cmake --build "$BIN" -j "${FENNEC_JOBS:-2}" >/dev/null
    fi
    [ -x "$BIN/fennecd" ] && [ -x "$BIN/fennecctl" ] || die "no fennecd/fennecctl in $BIN"
    SUPERVISOR=""
    [ -x "$BIN/fennec-supervisor" ] && SUPERVISOR="$BIN/fennec-supervisor"
    return 0
}

# node_count: the nodes of the running lab (from /run/fennec-lab/nodes).
node_count() { cat "$RUN/nodes" 2>/dev/null || echo 0; }

ctl() { # ctl K ARGS...: fennecctl against node K's control endpoint, with the key
    local k=$1
    shift
    ip netns exec "fennec-n$k" "$BIN/fennecctl" -s http://127.0.0.1:8053 \
        --key-file "$RUN/key" "$@"
}

birdc_node() { # birdc_node K ARGS...
    local k=$1
    shift
    ip netns exec "fennec-n$k" birdc -s "$RUN/n$k/bird.ctl" "$@"
}

# alive PIDFILE NETNS: the pid in PIDFILE when that process runs in NETNS (so that a stale
# pidfile never names somebody else's process), else nothing.
alive() {
    local pid ns
    [ -s "$1" ] || return 1
    pid=$(tr -dc 0-9 <"$1")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    ns=$(ip netns identify "$pid" 2>/dev/null || true)
    [ "$ns" = "$2" ] || return 1
    echo "$pid"
}

# stop_pidfile PIDFILE NETNS WHAT: SIGTERM, up to 5 s, then SIGKILL.
stop_pidfile() {
    local pid
    pid=$(alive "$1" "$2") || {
        rm -f "$1"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
        say "$3 ($pid) still running 5 s after SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
    fi
    rm -f "$1"
}

# ---- up

write_node_config() {
    local k=$1 n=$2 dir="$RUN/n$1"
    {
        if [ "$k" = 1 ]; then
            cat <<EOF
# n1: the lab's primary. Zones are defined here and reach every node through the log.
node: {id: n1, role: primary, data_dir: $dir/data}
listen:
  dns: ["*:53"]
  control: "*:8053"
  replication: "10.53.1.2:5380"
cluster: {key_file: $RUN/key}
zones:
  - {name: example.com, file: $RUN/example.com.zone}
EOF
        else
            cat <<EOF
# n$k: a secondary of n1.
node: {id: n$k, role: secondary, data_dir: $dir/data}
listen:
  dns: ["*:53"]
  control: "*:8053"
cluster: {primary: "10.53.1.2:5380", key_file: $RUN/key}
EOF
        fi
        cat <<EOF
workers: 1
nsid: true
identity: true
EOF
        # The lab's nodes, router and client share this machine's few cores (and whatever
        # else runs on it): CoDel would count the CPU another namespace takes as queue delay
        # and shed queries a drain must not lose. FENNEC_LAB_OVERLOAD=1 keeps both on.
        if [ "${FENNEC_LAB_OVERLOAD:-0}" != 1 ]; then
            echo "overload: {codel: {enabled: false}, cubic: {enabled: false}}"
        fi
        if [ -n "$SUPERVISOR" ]; then
            cat <<EOF
anycast:
  service: ["$SERVICE"]
  bird_socket: $dir/bird.ctl
  bird_protocol: $PROTOCOL
  min_announced: 1
  check: {interval: 100ms, timeout: 50ms, rise: 2, fall: 2}
  restart: {backoff: 100ms, backoff_max: 5s, intensity: 5, period: 60s}
EOF
        fi
    } >"$dir/fennec.yaml"
}

start_bird() { # start_bird NETNS DIR
    ip netns exec "$1" bird -c "$2/bird.conf" -s "$2/bird.ctl" -P "$2/bird.pid" \
        >>"$2/bird.log" 2>&1 </dev/null
    for _ in $(seq 1 50); do
        [ -S "$2/bird.ctl" ] && alive "$2/bird.pid" "$1" >/dev/null && return 0
        sleep 0.1
    done
    die "BIRD did not start in $1 (see $2/bird.log)"
}

# start_node K: the supervisor (or fennecd alone), in the background, detached from this shell.
start_node() {
    local k=$1 dir="$RUN/n$1" ns="fennec-n$1" fennecd=${FENNEC_LAB_FENNECD:-$BIN/fennecd}
    if alive "$dir/supervisor.pid" "$ns" >/dev/null || alive "$dir/fennecd.pid" "$ns" >/dev/null; then
        die "node $k is running already"
    fi
    if [ -n "$SUPERVISOR" ]; then
        # The supervisor passes its output on to fennecd: one log holds both.
        ln -sfn supervisor.log "$dir/fennecd.log"
        echo "==== $(date '+%F %T') start" >>"$dir/supervisor.log"
        ip netns exec "$ns" setsid "$SUPERVISOR" -c "$dir/fennec.yaml" --fennecd "$fennecd" \
            --pidfile "$dir/supervisor.pid" --fennecd-pidfile "$dir/fennecd.pid" \
            >>"$dir/supervisor.log" 2>&1 </dev/null &
    else
        echo "==== $(date '+%F %T') start" >>"$dir/fennecd.log"
        ip netns exec "$ns" setsid "$fennecd" -c "$dir/fennec.yaml" \
            >>"$dir/fennecd.log" 2>&1 </dev/null &
        echo $! >"$dir/fennecd.pid"
    fi
}

wait_control() { # wait_control K SECONDS
    for _ in $(seq 1 $(($2 * 10))); do
        ctl "$1" status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# Without a supervisor: enable the service route once the node answers on the service address.
announce_by_hand() {
    local k=$1
    for _ in $(seq 1 100); do
        if ip netns exec "fennec-n$k" dig +time=1 +tries=1 +short @"$SERVICE" example.com SOA \
            >/dev/null 2>&1; then
            birdc_node "$k" enable "$PROTOCOL" >/dev/null
            return 0
        fi
        sleep 0.1
    done
    die "node $k does not answer on $SERVICE (see $RUN/n$k/fennecd.log)"
}

# A failed `up` shows the ends of the logs, then takes the half-built lab down (unless
# FENNEC_LAB_KEEP=1: then `lab.sh down` is yours to run).
up_failed() {
    local f
    [ "${UP_DONE:-1}" = 0 ] || return 0
    for f in "$RUN"/*/*.log; do
        [ -s "$f" ] || continue
        echo "---- last lines of $f" >&2
        tail -n 15 "$f" >&2
    done
    if [ "${FENNEC_LAB_KEEP:-0}" = 1 ]; then
        say "up failed; the lab stays for a look (FENNEC_LAB_KEEP=1): lab.sh down removes it"
    else
        say "up failed: taking the lab down"
        cmd_down || true
    fi
}

cmd_up() {
    local n=${1:-}
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 16 ] || die "usage: lab.sh up N (1..16)"
    need_root
    need_tools
    if [ -e "$RUN" ] || ip netns list | grep -qE '^fennec-(rt|cl|n[0-9]+)( |$)'; then
        die "a lab exists already (or its remains): lab.sh down first"
    fi
    binaries
    UP_DONE=0
    trap up_failed EXIT
    mkdir -p "$RUN/rt"
    chmod 755 "$RUN"
    echo "$BIN" >"$RUN/bin"
    echo "$n" >"$RUN/nodes"
    (umask 077 && openssl rand -hex 32 >"$RUN/key")
    cp "$ROOT/deploy/zones/example.com.zone" "$RUN/example.com.zone"

    # Router and client.
    ip netns add "$RT"
    ip netns add "$CL"
    ip -n "$RT" link set lo up
    ip -n "$CL" link set lo up
    ip netns exec "$RT" sysctl -q -w net.ipv4.ip_forward=1 \
        net.ipv4.fib_multipath_hash_policy=3 net.ipv4.fib_multipath_hash_fields=0x37
    ip link add rt-cl netns "$RT" type veth peer name cl0 netns "$CL"
    ip -n "$RT" addr add 10.53.0.1/24 dev rt-cl
    ip -n "$CL" addr add 10.53.0.2/24 dev cl0
    ip -n "$RT" link set rt-cl up
    ip -n "$CL" link set cl0 up
    ip -n "$CL" route add default via 10.53.0.1

    # Nodes.
    local k
    for k in $(seq 1 "$n"); do
        local ns="fennec-n$k" dir="$RUN/n$k"
        mkdir -p "$dir/data"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$SERVICE/32" dev lo
        ip link add "rt-n$k" netns "$RT" type veth peer name up0 netns "$ns"
        ip -n "$RT" addr add "10.53.$k.1/24" dev "rt-n$k"
        ip -n "$ns" addr add "10.53.$k.2/24" dev up0
        ip -n "$RT" link set "rt-n$k" up
        ip -n "$ns" link set up0 up
        ip -n "$ns" route add default via "10.53.$k.1"
        "${RENDER[@]}" "$ROOT/deploy/anycast/bird-node.conf.in" ROUTER_ID="10.53.$k.2" \
            LOCAL_IP="10.53.$k.2" NEIGHBOR_IP="10.53.$k.1" SERVICE4="$SERVICE" \
            PROTOCOL="$PROTOCOL" LOG_FILE="$dir/bird.log" >"$dir/bird.conf"
        write_node_config "$k" "$n"
    done
    "${RENDER[@]}" "$ROOT/deploy/anycast/bird-router.conf.in" ROUTER_ID=10.53.0.1 \
        NODE_RANGE=10.53.0.0/16 LOG_FILE="$RUN/rt/bird.log" >"$RUN/rt/bird.conf"
    start_bird "$RT" "$RUN/rt"
    for k in $(seq 1 "$n"); do
        start_bird "fennec-n$k" "$RUN/n$k"
    done

    # n1 first, then register the secondaries on it and start them.
    start_node 1
    wait_control 1 30 || die "n1 does not answer on its control endpoint (see $RUN/n1/)"
    for k in $(seq 2 "$n"); do
        ctl 1 node add "n$k" "10.53.$k.2:8053" >/dev/null
    done
    for k in $(seq 2 "$n"); do
        start_node "$k"
    done
    for k in $(seq 1 "$n"); do
        wait_control "$k" 30 || die "n$k does not answer on its control endpoint (see $RUN/n$k/)"
        [ -n "$SUPERVISOR" ] || announce_by_hand "$k"
    done

    # Every node answers through the service address, as the client sees it.
    if ! ip netns exec "$CL" python3 "$PROBE" --source 10.53.0.2 --flows 32 nodes \
        --expect "$n" --timeout "$UP_TIMEOUT"; then
        die "not every node answers on $SERVICE from $CL (lab.sh status; logs in $RUN/nK/)"
    fi
    UP_DONE=1
    trap - EXIT
    cat <<EOF

fennec anycast lab: $n node(s) behind $SERVICE (port 53), n1 the primary.
  ip netns exec $CL dig @$SERVICE example.com SOA +nsid       # which node answers (NSID)
  ip netns exec $CL python3 $PROBE nodes --expect $n
  deploy/lab/lab.sh status
Control endpoints (key: $RUN/key):
EOF
    for k in $(seq 1 "$n"); do
        echo "  ip netns exec fennec-n$k $BIN/fennecctl -s http://127.0.0.1:8053 --key-file $RUN/key status"
    done
    echo "Logs and pidfiles: $RUN/nK/ ; the router: ip netns exec $RT birdc -s $RUN/rt/bird.ctl show route"
    echo "Stop: deploy/lab/lab.sh down"
}

# ---- down

cmd_down() {
    need_root
    local d k ns pids
    for d in "$RUN"/n*/; do
        [ -d "$d" ] || continue
        k=$(basename "$d")
        ns="fennec-$k"
        # The supervisor first: it withdraws and stops its fennecd.
        stop_pidfile "$d/supervisor.pid" "$ns" "$k supervisor"
        stop_pidfile "$d/fennecd.pid" "$ns" "$k fennecd"
        stop_pidfile "$d/bird.pid" "$ns" "$k bird"
    done
    stop_pidfile "$RUN/rt/bird.pid" "$RT" "router bird"
    for ns in $(ip netns list | awk '{print $1}' | grep -E '^fennec-(rt|cl|n[0-9]+)$' || true); do
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ' || true)
        if [ -n "${pids// /}" ]; then
            # Only lab processes can be in a lab namespace; one without a pidfile is a leak.
            say "$ns still holds processes without a pidfile: $pids; SIGKILL"
            # shellcheck disable=SC2086 # a list of pids
            kill -KILL $pids 2>/dev/null || true
            for _ in $(seq 1 30); do
                [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
                sleep 0.1
            done
        fi
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ' || true)
        [ -z "${pids// /}" ] || die "$ns still holds processes $pids: not deleted"
        ip netns del "$ns"
    done
    rm -rf "$RUN"
    local left
    left=$(ip netns list | grep -E '^fennec-(rt|cl|n[0-9]+)( |$)' || true)
    [ -z "$left" ] || die "namespaces left: $left"
    say "down: nothing left"
}

# ---- status

cmd_status() {
    need_root
    [ -d "$RUN" ] || {
        echo "no lab (/run/fennec-lab is absent)"
        ip netns list | grep -E '^fennec-' || true
        return 0
    }
    local n k p what
    n=$(node_count)
    BIN=$(cat "$RUN/bin")
    echo "lab: $n node(s), service $SERVICE"
    echo "router: $(alive "$RUN/rt/bird.pid" "$RT" >/dev/null && echo "bird running" || echo "bird NOT running")"
    ip -n "$RT" route show "$SERVICE" | sed 's/^/  /'
    ip netns exec "$RT" birdc -s "$RUN/rt/bird.ctl" show protocols 2>/dev/null |
        awk 'NR > 1 && $2 == "BGP"' | sed 's/^/  /'
    for k in $(seq 1 "$n"); do
        printf 'n%s:' "$k"
        for what in supervisor fennecd bird; do
            if p=$(alive "$RUN/n$k/$what.pid" "fennec-n$k"); then
                printf ' %s %s' "$what" "$p"
            else
                printf ' %s -' "$what"
            fi
        done
        printf ' | BIRD %s' "$(ip netns exec "fennec-n$k" birdc -s "$RUN/n$k/bird.ctl" show protocols "$PROTOCOL" 2>/dev/null |
            awk -v p="$PROTOCOL" '$1 == p {print p " " $4}')"
        printf ' | fennec: %s\n' "$(ctl "$k" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    a = json.load(sys.stdin).get("anycast") or {}
    print("%s (%s)" % (a.get("state", "?"), a.get("reason", "")))
except ValueError:
    print("no answer")' 2>/dev/null)"
    done
}

cmd_stop() {
    need_root
    local k=${1:-}
    [ -n "$k" ] && [ -d "$RUN/n$k" ] || die "usage: lab.sh stop K (a node of the running lab)"
    stop_pidfile "$RUN/n$k/supervisor.pid" "fennec-n$k" "n$k supervisor"
    stop_pidfile "$RUN/n$k/fennecd.pid" "fennec-n$k" "n$k fennecd"
    # Without a supervisor nothing withdraws the route: do it here.
    birdc_node "$k" disable "$PROTOCOL" >/dev/null 2>&1 || true
}

cmd_start() {
    need_root
    local k=${1:-}
    [ -n "$k" ] && [ -d "$RUN/n$k" ] || die "usage: lab.sh start K (a node of the running lab)"
    [ -n "${FENNEC_BUILD:-}" ] || FENNEC_BUILD=$(cat "$RUN/bin")
    binaries
    start_node "$k"
    if [ -z "$SUPERVISOR" ]; then
        wait_control "$k" 30 || die "n$k does not answer on its control endpoint"
        announce_by_hand "$k"
    fi
}

case "${1:-}" in
up) cmd_up "${2:-}" ;;
down) cmd_down ;;
status) cmd_status ;;
stop) cmd_stop "${2:-}" ;;
start) cmd_start "${2:-}" ;;
*)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
