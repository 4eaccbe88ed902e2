#!/bin/bash
# fennec — build and run a cluster: `sudo ./deploy/run.sh` (or as root without sudo).
#
# Installs the Debian 12 packages the build needs (only those missing), builds a Release
# build in build/release and, without arguments, runs a three-node cluster on loopback in
# the foreground: ns1 the primary (DNS 127.0.0.1:5300, control 127.0.0.1:8053, replication
# 127.0.0.1:5380) serving deploy/zones/example.com.zone, and the secondaries ns2 (5301, 8054)
# and ns3 (5302, 8055). The cluster key, the configurations and the data dirs are made in
# run/cluster (FENNEC_RUN_DIR) the first time and kept: a second run starts from the same
# journals. Ctrl-C stops the three. With arguments, one fennecd runs with them instead, e.g.
# `./deploy/run.sh -c deploy/fennec.example.yaml`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    cmake gcc make pkg-config
    libuv1-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libknot-dev
    libyaml-dev liburcu-dev libmicrohttpd-dev libjansson-dev libssl-dev liblmdb-dev
    bind9-dnsutils openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deploy/run.sh: installing ${missing[*]}" >&2
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo DEBIAN_FRONTEND=noninteractive)
    else
        echo "deploy/run.sh: run as root to install packages" >&2
        exit 1
    fi
    "${SUDO[@]}" apt-get update </dev/null
    "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DFENNEC_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)"

if [ "$#" -gt 0 ]; then
    exec build/release/fennecd "$@"
fi
command -v openssl >/dev/null || { echo "deploy/run.sh: openssl is needed for the key" >&2; exit 1; }

BIN="$PWD/build/release"
ZONE="$PWD/deploy/zones/example.com.zone"
DIR="${FENNEC_RUN_DIR:-$PWD/run/cluster}"
mkdir -p "$DIR"
cd "$DIR"
[ -s cluster.key ] || (umask 077 && openssl rand -hex 32 >cluster.key)

# node, DNS port, control port
NODES=("ns1 5300 8053" "ns2 5301 8054" "ns3 5302 8055")
for n in "${NODES[@]}"; do
    read -r id dns ctl <<<"$n"
    if [ "$id" = ns1 ]; then
        cat >"$id.yaml" <<EOF
# $id: the primary. Zones are defined here and reach every node through the log.
node: {id: $id, role: primary, data_dir: ./data/$id}
listen: {dns: ["127.0.0.1:$dns"], control: "127.0.0.1:$ctl", replication: "127.0.0.1:5380"}
cluster: {key_file: cluster.key}
zones:
  - {name: example.com, file: "$ZONE"}
# www.example.com is a health-checked pool. On loopback there are no web servers to probe,
# so the checks probe the secondaries' control endpoints: stop ns2 and every node answers
# with ns3's address (and a 10 s TTL) within a second.
health:
  checks:
    - {name: web-a, type: http, target: 127.0.0.1, port: 8054, path: /metrics, interval: 500ms, timeout: 400ms}
    - {name: web-b, type: http, target: 127.0.0.1, port: 8055, path: /metrics, interval: 500ms, timeout: 400ms}
  pools:
    - name: www.example.com
      policy: failover
      ttl: 300
      degraded_ttl: 10
      members:
        - {address: 192.0.2.10, check: web-a}
        - {address: 192.0.2.11, check: web-b}
EOF
    else
        cat >"$id.yaml" <<EOF
# $id: a secondary. It follows the primary and serves what the log says.
node: {id: $id, role: secondary, data_dir: ./data/$id}
listen: {dns: ["127.0.0.1:$dns"], control: "127.0.0.1:$ctl"}
cluster: {primary: "127.0.0.1:5380", key_file: cluster.key}
EOF
    fi
done

PIDS=()
stop() {
    trap - INT TERM
    echo "deploy/run.sh: stopping the cluster" >&2
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    exit 0
}
trap stop INT TERM

CTL=("$BIN/fennecctl" -s http://127.0.0.1:8053 --key-file "$DIR/cluster.key")
"$BIN/fennecd" -c ns1.yaml &
PIDS+=($!)
for _ in $(seq 1 100); do
    "${CTL[@]}" status >/dev/null 2>&1 && break
    sleep 0.1
done
# Register the secondaries (a member registered on an earlier run answers "exists": fine).
for n in "${NODES[@]:1}"; do
    read -r id dns ctl <<<"$n"
    "${CTL[@]}" node add "$id" "127.0.0.1:$ctl" >/dev/null 2>&1 || true
done
for n in "${NODES[@]:1}"; do
    read -r id dns ctl <<<"$n"
    "$BIN/fennecd" -c "$id.yaml" &
    PIDS+=($!)
done
sleep 0.5
cat >&2 <<EOF

fennec: a primary and two secondaries are running (Ctrl-C stops them); files in $DIR
  export FENNEC_URL=http://127.0.0.1:8053 FENNEC_KEY_FILE=$DIR/cluster.key
  $BIN/fennecctl nodes
  $BIN/fennecctl record add example.com new 300 A 192.0.2.77 --wait
  dig @127.0.0.1 -p 5301 new.example.com A      # ns2 (ns3 answers on 5302)
  $BIN/fennecctl lag --watch
  $BIN/fennecctl health --all-nodes             # the pool www.example.com, as every node sees it
  status page: http://127.0.0.1:8053/

EOF
wait
