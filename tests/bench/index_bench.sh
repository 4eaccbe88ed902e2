#!/bin/bash
# fennec benchmark: the name index choices (chained hash, sorted array, crit-bit tree)
# measured on the owners of the generated example.com zone. tests/bench/index_bench.c
# says what is measured; docs/zone-store.md holds the figures.
#
# usage: tests/bench/index_bench.sh [HOSTS [LOOKUPS]]   (defaults 740000 and 2000000)
#
# Builds the program with a plain gcc command (no CMake), writes the zone and the queries
# to a temporary directory, runs once and removes the directory. Bounded: the run is
# stopped after 300 s. Exits non-zero when the three indexes disagree.
set -eu

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
HOSTS=${1:-740000}
LOOKUPS=${2:-2000000}
case "$HOSTS$LOOKUPS" in *[!0-9]*) echo "usage: $0 [HOSTS [LOOKUPS]]" >&2; exit 2 ;; esac

TMP=$(mktemp -d /tmp/fennec-index-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM

gcc -O2 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror \
    -I "$ROOT/include" -o "$TMP/index_bench" \
    "$HERE/index_bench.c" "$ROOT/node/wire.c" "$ROOT/node/common.c" -lm
/usr/bin/python3 "$HERE/genzone.py" "$TMP" "$HOSTS" >/dev/null
timeout 300 "$TMP/index_bench" "$TMP/example.com.zone" "$TMP/queries.txt" "$LOOKUPS"
