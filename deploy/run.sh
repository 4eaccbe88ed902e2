#!/bin/bash
# fennec — build and run the nameserver: `sudo ./deploy/run.sh` (or as root without sudo).
#
# Installs the Debian 12 packages the build needs (only those missing), builds a Release
# build in build/release and runs build/release/fennecd in the foreground. Without
# arguments fennecd serves its embedded default configuration (zone example.com on
# 127.0.0.1:5300, control endpoint on 127.0.0.1:8053); arguments are passed to fennecd,
# e.g. `./deploy/run.sh -c deploy/fennec.example.yaml`. Stop it with Ctrl-C (SIGINT).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    cmake gcc make pkg-config
    libuv1-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libknot-dev
    libyaml-dev liburcu-dev libmicrohttpd-dev libjansson-dev libssl-dev liblmdb-dev
    bind9-dnsutils
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

exec build/release/fennecd "$@"
