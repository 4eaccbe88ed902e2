#!/bin/bash
# fennec benchmark: fennecd against NSD and Knot DNS on the same machine, zone and queries.
#
# usage: sudo tests/bench/run.sh [--fennecd PATH] [--runs N] [--load-runs N] [--quick]
#                                [--change-runs N] [--no-changes] [--repl-full] [--no-repl]
#                                [--out DIR]
#
#   --fennecd PATH  fennecd binary (default: build-bench/fennecd, then build-release/fennecd,
#                   then build/release/fennecd, then build/fennecd in the repository). Use a
#                   Release build.
#   --runs N        runs of the quick figures (steady, max, overload, recovery, scaling);
#                   the table shows the median, the individual runs are listed below it
#                   (default 3, with --quick 1)
#   --load-runs N   runs of the 1,000,000-record zone load (default 1)
#   --change-runs N runs of the change benchmark on the big zone (change_bench.py: record
#                   edits through fennec's control API against Knot DNS dynamic update;
#                   default: --runs)
#   --no-changes    leave the change benchmark out
#   --repl-full     the full replication benchmark (repl_bench.py: 3 runs, about 25
#                   minutes) instead of its short mode (1 run, 300 changes timed, about 3
#                   minutes; with --quick: its --quick mode)
#   --no-repl       leave the replication benchmark out
#   --quick         smoke test: small zones, 2 s per measurement
#   --out DIR       where results.txt, raw.txt and the server logs go (default: a new
#                   /tmp/fennec-bench-results.XXXXXX)
#
# Needs root (a cgroup v1 cpu controller at /sys/fs/cgroup/cpu for the overload figures),
# 2 or more CPUs, nsd, knotd, dnsperf, taskset and /usr/bin/python3 (with python3-dnspython
# for the change and replication benchmarks). Everything runs on 127.0.0.1, ports 15921-15933,
# 15941-15943 (change benchmark) and 16200-16239 (replication benchmark: fennec and Knot
# clusters of 3 nodes). Every server this script starts is stopped and its cgroup
# is removed when it exits, also on an error or Ctrl-C. docs/benchmarks.md describes the
# figures.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOL=$HERE/benchtool.py
PY=/usr/bin/python3

FENNECD="" RUNS="" LOAD_RUNS=1 QUICK=0 OUT="" CHANGE_RUNS="" CHANGES=1 REPL=short
die() { echo "run.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --fennecd) FENNECD=${2:?--fennecd needs a path}; shift 2 ;;
    --runs) RUNS=${2:?--runs needs a number}; shift 2 ;;
    --load-runs) LOAD_RUNS=${2:?--load-runs needs a number}; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --change-runs) CHANGE_RUNS=${2:?--change-runs needs a number}; shift 2 ;;
    --no-changes) CHANGES=0; shift ;;
    --repl-full) REPL=full; shift ;;
    --no-repl) REPL=none; shift ;;
    -h | --help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done

# --- settings ------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    HOSTS=2000 BIG_HOSTS=20000 SECS=2 REC_SECS=2 REC_TIMEOUT=10 RUNS=${RUNS:-1}
else
    HOSTS=10000 BIG_HOSTS=740000 SECS=5 REC_SECS=5 REC_TIMEOUT=30 RUNS=${RUNS:-3}
fi
RATE=100000      # offered qps (steady, overload, recovery)
MAXQ=1000000     # "unthrottled" dnsperf -Q
CAP=20           # overload: percent of one core
PERIOD_US=10000  # overload: CFS period
LOAD_DEADLINE=300 # seconds a server may take to load the big zone
case $RUNS in '' | *[!0-9]* | 0) die "--runs wants a number >= 1" ;; esac
case $LOAD_RUNS in '' | *[!0-9]* | 0) die "--load-runs wants a number >= 1" ;; esac
CHANGE_RUNS=${CHANGE_RUNS:-$RUNS}
case $CHANGE_RUNS in '' | *[!0-9]* | 0) die "--change-runs wants a number >= 1" ;; esac
if [ "$RUNS" -gt 50 ] || [ "$LOAD_RUNS" -gt 20 ] || [ "$CHANGE_RUNS" -gt 20 ]; then
    die "--runs at most 50, --load-runs and --change-runs at most 20"
fi

declare -A PORT=([nsd]=15921 [knot]=15922 [fennec]=15923 [fennec-nocc]=15924
    [fennec-2w]=15925 [fennec-1wu]=15926 [load-nsd]=15931 [load-knot]=15932
    [load-fennec]=15933)
CHANGE_PORTS="15941 15942 15943" # change_bench.py: fennec DNS, fennec control, Knot
# repl_bench.py: fennec ns1 (DNS, control, replication), ns2, ns3 (DNS, control), 3 knotd
REPL_PORTS="16201 16202 16203 16211 16212 16221 16222 16231 16232 16233"

# --- checks --------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root: the overload figures put the server into a cgroup (run it with sudo)"
if [ ! -w /sys/fs/cgroup/cpu/cgroup.procs ] || [ ! -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    die "needs the cgroup v1 cpu controller mounted at /sys/fs/cgroup/cpu"
fi
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (servers on CPU 1, dnsperf on CPU 0)"
[ -x "$PY" ] || die "needs /usr/bin/python3"
if [ "$CHANGES" = 1 ] && ! "$PY" -c 'import dns.update' 2>/dev/null; then
    die "the change benchmark needs dnspython: apt-get install python3-dnspython (or pass --no-changes)"
fi
if [ "$REPL" != none ] && ! "$PY" -c 'import dns.update' 2>/dev/null; then
    die "the replication benchmark needs dnspython: apt-get install python3-dnspython (or pass --no-repl)"
fi
NSD=$(command -v nsd || echo /usr/sbin/nsd)
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)
for b in "$NSD" "$KNOTD"; do [ -x "$b" ] || die "$b not found: apt-get install nsd knot"; done
for b in dnsperf taskset timeout ss; do
    command -v $b >/dev/null || die "$b not found: apt-get install dnsperf util-linux coreutils iproute2"
done
if [ -z "$FENNECD" ]; then
    for c in build-bench build-release build/release build; do
        [ -x "$ROOT/$c/fennecd" ] && FENNECD=$ROOT/$c/fennecd && break
    done
fi
if [ -z "$FENNECD" ] || [ ! -f "$FENNECD" ] || [ ! -x "$FENNECD" ]; then
    die "no fennecd (build one: cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DFENNEC_TESTS=OFF && cmake --build build-bench --target fennecd; or pass --fennecd)"
fi
FENNECD=$(readlink -f "$FENNECD")
for p in "${PORT[@]}" $CHANGE_PORTS $REPL_PORTS; do
    [ -z "$(ss -Hlnu "sport = :$p")$(ss -Hlnt "sport = :$p")" ] || die "port $p is in use"
done

# --- work folders, cleanup -----------------------------------------------------------------
WORK=$(mktemp -d /tmp/fennec-bench.XXXXXX) || die "mktemp failed"
if [ -z "$OUT" ]; then OUT=$(mktemp -d /tmp/fennec-bench-results.XXXXXX) || die "mktemp failed"; fi
mkdir -p "$OUT/logs" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/raw.txt RESULTS=$OUT/results.txt
: >"$RAW"
CG=/sys/fs/cgroup/cpu/fennec-bench-$$
CGROOT=/sys/fs/cgroup/cpu
declare -A SPIDS=()  # name -> process ids whose threads are measured (and capped)
declare -A KPIDS=()  # name -> process ids to stop
declare -A MATCH=()  # name -> config path that appears in the command line of its processes
DPIDS=""             # the dnsperf processes (under timeout) running now

log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$OUT/logs/run.log" >&2; }

# Process ids whose command line contains $1 (a config path unique to this run).
pids_with() { grep -lsF -- "$1" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 | sort -n | tr '\n' ' '; }

alive() { local p; for p in $1; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

stop_server() { # name
    local n=$1 p
    local pids=${KPIDS[$n]:-}
    [ -n "${MATCH[$n]:-}" ] && pids="$pids $(pids_with "${MATCH[$n]}")"
    for p in $pids; do kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 100); do alive "$pids" || break; sleep 0.1; done
    for p in $pids; do kill -KILL "$p" 2>/dev/null; done
    if [ -n "${MATCH[$n]:-}" ]; then # daemonized NSD: anything left with our config
        for p in $(pids_with "${MATCH[$n]}"); do kill -KILL "$p" 2>/dev/null; done
    fi
    for p in ${KPIDS[$n]:-}; do wait "$p" 2>/dev/null; done
    unset "KPIDS[$n]" "SPIDS[$n]" "MATCH[$n]"
}

cleanup() {
    local n t
    trap - EXIT INT TERM HUP
    for t in $DPIDS; do kill -TERM "$t" 2>/dev/null; done
    if [ -d "$CG" ]; then
        while read -r t; do echo "$t" >"$CGROOT/tasks" 2>/dev/null; done <"$CG/tasks"
    fi
    for n in "${!KPIDS[@]}" "${!MATCH[@]}"; do stop_server "$n"; done
    [ -d "$CG" ] && rmdir "$CG" 2>/dev/null
    [ -d "$CG" ] && echo "run.sh: could not remove $CG" >&2
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM HUP

mkdir "$CG" || die "cannot create $CG"
if ! echo "$PERIOD_US" >"$CG/cpu.cfs_period_us" || ! echo $((PERIOD_US * CAP / 100)) >"$CG/cpu.cfs_quota_us"; then
    die "cannot set the CFS quota of $CG"
fi

# --- servers -------------------------------------------------------------------------------
wait_up() { # port qname deadline_s -> prints the wall clock (ns) of the first good answer
    "$PY" "$TOOL" wait "$1" "$2" "$3"
}

start_nsd() { # name zonedir
    local n=$1 zd=$2 d=$WORK/$1
    mkdir -p "$d"
    cat >"$d/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@${PORT[$n]}
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$zd"
  database: ""
  pidfile: "$d/nsd.pid"
  xfrdfile: "$d/xfrd.state"
  zonelistfile: "$d/zone.list"
  xfrdir: "$d"
  logfile: "$OUT/logs/$n.log"
  verbosity: 0
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: example.com
  zonefile: example.com.zone
EOF
    MATCH[$n]=$d/nsd.conf
    taskset -c 1 "$NSD" -c "$d/nsd.conf" >>"$OUT/logs/$n.log" 2>&1 || { log "$n: nsd failed to start"; return 1; }
}

nsd_servers() { # name -> the serving child processes
    local p out=""
    for p in $(pids_with "${MATCH[$1]}"); do
        case $(cat "/proc/$p/comm" 2>/dev/null) in "nsd: server"*) out="$out $p" ;; esac
    done
    echo "${out# }"
}

start_knot() { # name zonedir
    local n=$1 zd=$2 d=$WORK/$1
    mkdir -p "$d/db"
    cat >"$d/knot.conf" <<EOF
server:
  listen: 127.0.0.1@${PORT[$n]}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
  rundir: $d
  pidfile: $d/knot.pid
  user: root
log:
  - target: $OUT/logs/$n.log
    any: warning
database:
  storage: $d/db
template:
  - id: default
    storage: $zd
    file: "%s.zone"
    semantic-checks: off
zone:
  - domain: example.com
EOF
    taskset -c 1 "$KNOTD" -c "$d/knot.conf" >>"$OUT/logs/$n.log" 2>&1 &
    KPIDS[$n]=$! SPIDS[$n]=$!
}

start_fennec() { # name zonefile mode(pinned|nocc|2w|1wu)
    local n=$1 zf=$2 mode=$3 d=$WORK/$1 pin=(taskset -c 1)
    mkdir -p "$d"
    {
        cat <<EOF
node:
  id: bench
  role: primary
  data_dir: $d/data
listen:
  dns: ["127.0.0.1:${PORT[$n]}"]
log_level: warn
zones:
  - name: example.com
    file: $zf
EOF
        case $mode in
        pinned) printf 'workers: 1\ncpu_affinity: [1]\n' ;;
        nocc)
            printf 'workers: 1\ncpu_affinity: [1]\n'
            printf 'overload: {codel: {enabled: false}, cubic: {enabled: false}, udp_rcvbuf_congested: 0, udp_coalesce: 0us}\n'
            ;;
        2w) printf 'workers: 2\n'; pin=() ;;
        1wu) printf 'workers: 1\n'; pin=() ;;
        esac
    } >"$d/fennec.yaml"
    "${pin[@]}" "$FENNECD" -c "$d/fennec.yaml" >>"$OUT/logs/$n.log" 2>&1 &
    KPIDS[$n]=$! SPIDS[$n]=$!
}

start_server() { # name kind zonedir [fennec mode] ; waits until it answers
    local n=$1 kind=$2 zd=$3 mode=${4:-pinned}
    case $kind in
    nsd) start_nsd "$n" "$zd" || return 1 ;;
    knot) start_knot "$n" "$zd" ;;
    fennec) start_fennec "$n" "$zd/example.com.zone" "$mode" ;;
    esac
}

# --- measurements --------------------------------------------------------------------------
cpu_ns() { # pids -> CPU time of all their threads, ns
    local p f v t=0
    for p in $1; do
        for f in /proc/"$p"/task/*/schedstat; do
            read -r v _ <"$f" 2>/dev/null && t=$((t + v))
        done
    done
    echo $t
}

perf() { # procs cpus(0|any) dnsperf-args... ; outputs in $WORK/perf.1..procs; bounded
    local procs=$1 cpus=$2 limit=$((SECS + 30)) pin=() i
    shift 2
    [ "$cpus" = any ] || pin=(taskset -c "$cpus")
    rm -f "$WORK"/perf.*
    for i in $(seq "$procs"); do
        timeout -k 5 $limit "${pin[@]}" dnsperf -s 127.0.0.1 "$@" >"$WORK/perf.$i" 2>&1 &
        DPIDS="$DPIDS $!"
    done
    # shellcheck disable=SC2086 # a list of pids
    wait $DPIDS
    DPIDS=""
}

record() { echo "$1 $2 $3 $4" >>"$RAW"; }
val() { sed -n "s/.*[ ^]$1=\([^ ]*\).*/\1/p" | head -1; } # key=value from one line
getv() { echo " $1" | val "$2"; }

move_threads() { # pids cgroupdir
    local p t
    for p in $1; do
        for t in /proc/"$p"/task/*; do echo "${t##*/}" >"$2/tasks" 2>/dev/null; done
    done
}

m_steady() { # name run
    local n=$1 r=$2 a b s answered cpu
    a=$(cpu_ns "${SPIDS[$n]}")
    perf 1 0 -p "${PORT[$n]}" -d "$QF" -l "$SECS" -c 4 -T 1 -q 1000 -Q "$RATE" -t 2
    b=$(cpu_ns "${SPIDS[$n]}")
    s=$("$PY" "$TOOL" dnsperf "$SECS" "$WORK"/perf.*)
    answered=$(getv "$s" completed)
    cpu=$(awk -v a="$a" -v b="$b" -v d="${answered:-0}" 'BEGIN { if (d > 0) printf "%.3f", (b - a) / 1000 / d; else print "nan" }')
    log "$n steady run $r: $s cpu_us_per_query=$cpu"
    record steady_cpu_us "$n" "$r" "$cpu"
    record steady_lost "$n" "$r" "$(getv "$s" lost)"
}

m_max() { # name run
    local n=$1 r=$2 s
    perf 1 0 -p "${PORT[$n]}" -d "$QF" -l "$SECS" -c 8 -T 1 -q 2000 -Q "$MAXQ" -t 1
    s=$("$PY" "$TOOL" dnsperf "$SECS" "$WORK"/perf.*)
    log "$n max run $r: $s"
    record max_qps "$n" "$r" "$(getv "$s" qps)"
    record max_lost "$n" "$r" "$(getv "$s" lost)"
}

m_overload() { # name run
    local n=$1 r=$2 s procs args
    read -r procs args <<<"$("$PY" "$TOOL" overload-args)"
    move_threads "${SPIDS[$n]}" "$CG"
    # shellcheck disable=SC2086 # args is a list of options
    perf "$procs" 0 -p "${PORT[$n]}" -d "$QF" -l "$SECS" -Q $((RATE / procs)) $args -v
    move_threads "${SPIDS[$n]}" "$CGROOT"
    s=$("$PY" "$TOOL" overload "$SECS" "$WORK"/perf.*)
    rm -f "$WORK"/perf.*
    log "$n overload run $r: $s"
    record over_offered "$n" "$r" "$(getv "$s" offered)"
    record over_goodput "$n" "$r" "$(getv "$s" goodput)"
    record over_p50 "$n" "$r" "$(getv "$s" p50)"
    record over_p99 "$n" "$r" "$(getv "$s" p99)"
    record over_lost "$n" "$r" "$(getv "$s" lost)"
}

m_recovery() { # name run
    local n=$1 r=$2 s
    # shellcheck disable=SC2086 # the pid list is meant to split
    s=$(timeout -k 5 $((REC_SECS + REC_TIMEOUT + 30)) "$PY" "$TOOL" recovery "${PORT[$n]}" "$QF" \
        "$REC_SECS" "$RATE" "$CG" "$REC_TIMEOUT" ${SPIDS[$n]})
    move_threads "${SPIDS[$n]}" "$CGROOT"
    log "$n recovery run $r: ${s:-failed}"
    record recovery_ms "$n" "$r" "$(getv "${s:-}" recovery_ms)"
}

m_scale() { # name run figure
    local n=$1 r=$2 s
    perf 1 any -p "${PORT[$n]}" -d "$QF" -l "$SECS" -c 8 -T 1 -q 2000 -Q "$MAXQ" -t 1
    s=$("$PY" "$TOOL" dnsperf "$SECS" "$WORK"/perf.*)
    log "$n scaling run $r: $s"
    record "$3" fennec "$r" "$(getv "$s" qps)"
}

m_load() { # kind run ; start with the big zone, time to first answer, RSS, stop
    local k=$1 r=$2 n=load-$1 t0 t1 pids rss secs
    t0=$(date +%s%N)
    start_server "$n" "$k" "$BIGZ" || { record load_s "$k" "$r" nan; return; }
    if ! t1=$(wait_up "${PORT[$n]}" "h$((BIG_HOSTS - 1)).example.com" "$LOAD_DEADLINE"); then
        log "$k did not answer from the big zone within $LOAD_DEADLINE s (see $OUT/logs/$n.log)"
        record load_s "$k" "$r" nan
        stop_server "$n"
        return
    fi
    sleep 1
    if [ "$k" = nsd ]; then pids=$(nsd_servers "$n"); else pids=${SPIDS[$n]}; fi
    rss=0
    for p in $pids; do rss=$((rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    log "$k zone load run $r: ${secs}s to the first answer, RSS $((rss / 1024)) MiB (pids $pids)"
    record load_s "$k" "$r" "$secs"
    record load_rss_mib "$k" "$r" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')"
    stop_server "$n"
}

# --- the run -------------------------------------------------------------------------------
{
    echo "# fennec benchmark $(date -u +%FT%TZ) on $(uname -n), kernel $(uname -r), $(nproc) CPUs"
    echo "# fennecd $FENNECD ($("$FENNECD" --version 2>&1 | head -1)); $("$NSD" -v 2>&1 | head -1); $("$KNOTD" -V 2>&1 | head -1); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}')"
    echo "# runs=$RUNS load_runs=$LOAD_RUNS quick=$QUICK secs=$SECS zone_hosts=$HOSTS big_zone_hosts=$BIG_HOSTS offered_qps=$RATE cap=${CAP}% period=${PERIOD_US}us"
} >>"$RAW"

log "results in $OUT; zones in $WORK"
s=$("$PY" "$HERE/genzone.py" "$WORK/zone" "$HOSTS") || die "genzone failed"
log "$s"
echo "# $s" >>"$RAW"
QF=$WORK/zone/queries.txt

for n in nsd knot; do start_server "$n" "$n" "$WORK/zone" || die "$n did not start"; done
start_server fennec fennec "$WORK/zone" pinned
start_server fennec-nocc fennec "$WORK/zone" nocc
for n in nsd knot fennec fennec-nocc; do
    wait_up "${PORT[$n]}" h1.example.com 30 >/dev/null || die "$n does not answer on ${PORT[$n]} (see $OUT/logs/$n.log)"
done
SPIDS[nsd]=$(nsd_servers nsd)
[ -n "${SPIDS[nsd]}" ] || die "no NSD server process found"
log "servers up: nsd ${SPIDS[nsd]}, knot ${SPIDS[knot]}, fennec ${SPIDS[fennec]}, fennec-nocc ${SPIDS[fennec-nocc]}"

for r in $(seq "$RUNS"); do
    for n in nsd knot fennec; do m_steady "$n" "$r"; sleep 1; done
    for n in nsd knot fennec; do m_max "$n" "$r"; sleep 1; done
    for n in nsd knot fennec fennec-nocc; do m_overload "$n" "$r"; sleep 1; done
    for n in fennec fennec-nocc; do m_recovery "$n" "$r"; sleep 1; done
done
for n in nsd knot fennec fennec-nocc; do stop_server "$n"; done

# scaling: one instance at a time, nothing pinned
for r in $(seq "$RUNS"); do
    for w in 1wu 2w; do
        start_server "fennec-$w" fennec "$WORK/zone" "$w"
        if wait_up "${PORT[fennec-$w]}" h1.example.com 30 >/dev/null; then
            m_scale "fennec-$w" "$r" "scale_${w%u}_qps"
        else
            log "fennec-$w did not answer"
            record "scale_${w%u}_qps" fennec "$r" nan
        fi
        stop_server "fennec-$w"
        sleep 1
    done
done

# zone load: the big zone, one server at a time
s=$("$PY" "$HERE/genzone.py" "$WORK/big" "$BIG_HOSTS" --no-queries) || die "genzone failed"
BIGZ=$WORK/big
log "big $s"
echo "# big $s" >>"$RAW"
for r in $(seq "$LOAD_RUNS"); do
    for k in nsd knot fennec; do m_load "$k" "$r"; sleep 1; done
done

# changes: record edits through fennec's control API against Knot DNS dynamic update, on the
# big zone; change_bench.py starts and stops its own servers (CPU 1, outside the cgroup) and
# runs on CPU 0
if [ "$CHANGES" = 1 ]; then
    cargs=(--fennecd "$FENNECD" --knotd "$KNOTD" --runs "$CHANGE_RUNS" --zonedir "$BIGZ"
        --hosts "$BIG_HOSTS" --out "$OUT" --workdir "$WORK/change")
    [ "$QUICK" = 1 ] && cargs+=(--quick)
    MATCH[change]=$WORK/change/ # in the command lines of the servers it starts
    log "change benchmark: $PY $HERE/change_bench.py ${cargs[*]}"
    timeout -k 10 $((CHANGE_RUNS * 1500 + 600)) "$PY" "$HERE/change_bench.py" "${cargs[@]}" >/dev/null &
    KPIDS[change]=$!
    wait "${KPIDS[change]}"
    rc=$?
    unset "KPIDS[change]" "MATCH[change]"
    [ "$rc" = 0 ] || log "change benchmark failed (exit $rc): see $OUT/logs/change-run.log"
fi

# replication: a fennec cluster (primary + 2 secondaries) against Knot DNS (primary + 2
# secondaries, NOTIFY + IXFR) on the big zone and a small one; repl_bench.py starts and stops
# its own servers (unpinned, outside the cgroup)
if [ "$REPL" != none ]; then
    rargs=(--fennecd "$FENNECD" --knotd "$KNOTD" --zonedir "$BIGZ" --hosts "$BIG_HOSTS"
        --out "$OUT" --workdir "$WORK/repl")
    if [ "$QUICK" = 1 ]; then
        rargs+=(--quick)
    elif [ "$REPL" = short ]; then
        rargs+=(--runs 1 --changes 300 --knot-changes 10)
    fi
    MATCH[repl]=$WORK/repl/ # in the command lines of the servers it starts
    log "replication benchmark: $PY $HERE/repl_bench.py ${rargs[*]}"
    timeout -k 10 5400 "$PY" "$HERE/repl_bench.py" "${rargs[@]}" >/dev/null &
    KPIDS[repl]=$!
    wait "${KPIDS[repl]}"
    rc=$?
    unset "KPIDS[repl]" "MATCH[repl]"
    [ "$rc" = 0 ] || log "replication benchmark failed (exit $rc): see $OUT/logs/repl-run.log"
fi

{
    grep '^#' "$RAW" | sed 's/^# //'
    echo
    "$PY" "$TOOL" report "$RAW"
    if [ -s "$OUT/change_results.txt" ]; then
        echo
        cat "$OUT/change_results.txt"
    fi
    if [ -s "$OUT/repl_results.txt" ]; then
        echo
        cat "$OUT/repl_results.txt"
    fi
} >"$RESULTS"
cat "$RESULTS"
echo
echo "results: $RESULTS"
