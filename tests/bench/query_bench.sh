#!/bin/bash
# fennec benchmark: the zone store and the query engine without sockets (query_bench.c),
# for one build tree or two side by side (before and after a change), on the same
# generated zone and queries, in one run.
#
# usage: tests/bench/query_bench.sh BUILD_DIR [OTHER_BUILD_DIR] [HOSTS [QUERIES [EDITS]]]
#   BUILD_DIR   a CMake build tree with libfennec_core.a (a Release build)
#   HOSTS       hosts of the generated zone (default 740000: 999,012 records)
#   QUERIES     answers per pass (default 2000000); the best of 3 passes is printed
#   EDITS       then single-record zone_edit() adds, deleted again in batches of 100
#               (default 0: none; a build without copy-on-write versions takes ~1 s each)
# Prints per build: zone load seconds, RSS after the load, ns per answer.
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
builds=("$1")
shift
if [ $# -gt 0 ] && [ -d "$1" ]; then builds+=("$1"); shift; fi
HOSTS=${1:-740000}
QUERIES=${2:-2000000}
EDITS=${3:-0}
TMP=$(mktemp -d /tmp/fennec-query-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$HERE/genzone.py" "$TMP" "$HOSTS" >/dev/null
LIBS=$(pkg-config --libs libuv libzscanner libknot yaml-0.1 liburcu libprotobuf-c libcurl \
    libmicrohttpd jansson openssl)
i=0
for b in "${builds[@]}"; do
    src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$b/CMakeCache.txt")
    gcc -O2 -std=gnu11 -I "$src/include" -o "$TMP/qb$i" "$HERE/query_bench.c" \
        "$b/libfennec_core.a" $LIBS -lpthread -lm
    echo "== $b ($src)"
    timeout 600 "$TMP/qb$i" "$TMP/example.com.zone" example.com "$TMP/queries.txt" "$QUERIES" "$EDITS"
    i=$((i + 1))
done
