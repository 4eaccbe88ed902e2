#!/bin/bash
# fennec — the whole test run, as CI runs it: `sudo ./tests/run.sh` (or as root without sudo)
# on Debian 12.
#
#   1. installs the Debian packages the build and the tests need (apt-get),
#   2. Debug build with AddressSanitizer + UBSan (gcc) in build/asan, `ctest` there
#      (unit tests and integration tests),
#   3. clang build with libFuzzer harnesses in build/fuzz, `ctest -L fuzz`,
#   4. `clang-format --dry-run -Werror` over every tracked *.c / *.h.
#
# Environment:
#   FENNEC_FUZZ_SECONDS   seconds per fuzz harness (default 20)
#   FENNEC_SKIP_APT=1     do not run apt-get (packages already installed)
#   FENNEC_JOBS           parallel build jobs (default: number of cores)
#   CTEST_TIMEOUT         per-test timeout in seconds (default 900)
# Exits 0 when every step passed, 1 otherwise; prints a summary at the end.
# The step functions are called through step(); shellcheck cannot see that.
# shellcheck disable=SC2317
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
ROOT=$(pwd)
export DEBIAN_FRONTEND=noninteractive
FUZZ_SECONDS=${FENNEC_FUZZ_SECONDS:-20}
JOBS=${FENNEC_JOBS:-$(nproc 2>/dev/null || echo 2)}
CTEST_TIMEOUT=${CTEST_TIMEOUT:-900}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

PACKAGES=(
    # build and runtime libraries (docs/dependencies.md says why each is there)
    libuv1-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libcmocka-dev
    libknot-dev libyaml-dev liburcu-dev libmicrohttpd-dev libjansson-dev libssl-dev liblmdb-dev
    # test and benchmark peers
    nsd knot knot-dnsutils bind9-dnsutils dnsperf python3-dnspython prometheus
    python3-prometheus-client
    # the status page in a browser (tests/integration_repl/test_status_page.py)
    chromium
    # BIRD 2 for the anycast supervisor's tests (docs/anycast.md) and the anycast lab
    # (deploy/lab, tests/integration_anycast: BIRD in network namespaces); systemd for
    # `systemd-analyze` on the units in deploy/systemd
    bird2 systemd
    # toolchain and tools the tests use
    cmake gcc clang clang-format pkg-config libclang-rt-14-dev iproute2 procps python3 git curl
    ca-certificates
)

declare -a SUMMARY=()
FAILED=0

# step NAME COMMAND...: runs one step, records PASS/FAIL and its duration.
step() {
    local name=$1
    shift
    local t0 rc
    t0=$(date +%s)
    echo
    echo "==> ${name}"
    "$@"
    rc=$?
    local dt=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        SUMMARY+=("PASS  ${name} (${dt}s)")
    else
        SUMMARY+=("FAIL  ${name} (${dt}s, exit ${rc})")
        FAILED=1
    fi
    return "$rc"
}

skip() {
    echo
    echo "==> $1: skipped ($2)"
    SUMMARY+=("SKIP  $1 ($2)")
    FAILED=1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n DEBIAN_FRONTEND=noninteractive "$@"
    else
        echo "tests/run.sh: need root for: $*" >&2
        return 1
    fi
}

install_packages() {
    as_root apt-get update </dev/null &&
        as_root apt-get install -y --no-install-recommends "${PACKAGES[@]}" </dev/null
}

build_asan() {
    cmake -S "$ROOT" -B "$ROOT/build/asan" -DCMAKE_BUILD_TYPE=Debug -DFENNEC_SANITIZE=ON \
        -DCMAKE_C_COMPILER="${FENNEC_ASAN_CC:-gcc}" </dev/null &&
        cmake --build "$ROOT/build/asan" -j "$JOBS" </dev/null
}

# ctest_label DIR [ARGS...]: fails when ctest finds no test at all, so that a missing
# registration cannot pass quietly.
ctest_run() {
    local dir=$1
    shift
    local count
    count=$(cd "$dir" && ctest -N "$@" | sed -n 's/^Total Tests: \([0-9]*\)$/\1/p')
    if [ -z "$count" ] || [ "$count" -eq 0 ]; then
        echo "no tests registered in $dir for: ctest $*" >&2
        return 1
    fi
    # Every test carries its own TIMEOUT (CMake test property): a hung test fails on its own
    # bound instead of stalling the run at the global one.
    local untimed
    untimed=$(cd "$dir" && ctest --show-only=json-v1 "$@" | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin)["tests"]:
    if not any(p["name"] == "TIMEOUT" for p in t.get("properties", [])):
        print(t["name"])')
    if [ -n "$untimed" ]; then
        echo "tests without a TIMEOUT property: $untimed" >&2
        return 1
    fi
    (cd "$dir" && ctest --output-on-failure --timeout "$CTEST_TIMEOUT" "$@" </dev/null)
}

build_fuzz() {
    cmake -S "$ROOT" -B "$ROOT/build/fuzz" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
        -DFENNEC_FUZZ=ON -DFENNEC_SANITIZE=ON -DFENNEC_FUZZ_SECONDS="$FUZZ_SECONDS" </dev/null &&
        cmake --build "$ROOT/build/fuzz" -j "$JOBS" </dev/null
}

format_check() {
    local files=()
    local f
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        while IFS= read -r f; do
            [ -f "$f" ] && files+=("$f")
        done < <(git -C "$ROOT" ls-files -- '*.c' '*.h')
    else
        while IFS= read -r f; do
            files+=("$f")
        done < <(find . -path ./build -prune -o -path './build-*' -prune -o \
            \( -name '*.c' -o -name '*.h' \) -type f -print | sort)
    fi
    if [ "${#files[@]}" -eq 0 ]; then
        echo "no C files found" >&2
        return 1
    fi
    echo "checking ${#files[@]} files"
    clang-format --dry-run -Werror "${files[@]}"
}

if [ "${FENNEC_SKIP_APT:-0}" = 1 ]; then
    SUMMARY+=("SKIP  install packages (FENNEC_SKIP_APT=1)")
else
    step "install packages" install_packages
fi

if step "asan build" build_asan; then
    step "asan ctest (unit + integration)" ctest_run "$ROOT/build/asan"
else
    skip "asan ctest (unit + integration)" "build failed"
fi

# How many inputs each harness ran (libFuzzer's -print_final_stats, kept in ctest's log).
fuzz_stats() {
    local log="$ROOT/build/fuzz/Testing/Temporary/LastTest.log"
    [ -f "$log" ] || return 0
    awk '/^[0-9]+\/[0-9]+ Testing: fuzz\// { name = $3 }
         /stat::number_of_executed_units/ { printf "  %-22s %s executions\n", name, $2 }' "$log"
}

if step "fuzz build (clang, libFuzzer)" build_fuzz; then
    step "fuzz ctest -L fuzz (${FUZZ_SECONDS}s each)" ctest_run "$ROOT/build/fuzz" -L fuzz
    fuzz_stats
else
    skip "fuzz ctest -L fuzz" "build failed"
fi

step "clang-format --dry-run -Werror" format_check

echo
echo "==================== fennec test summary ===================="
for line in "${SUMMARY[@]}"; do
    echo "  $line"
done
if [ "$FAILED" -eq 0 ]; then
    echo "  result: PASS"
else
    echo "  result: FAIL"
fi
exit "$FAILED"
