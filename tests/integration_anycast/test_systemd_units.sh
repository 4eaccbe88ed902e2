#!/bin/bash
# deploy/systemd/*.service under `systemd-analyze verify` and `systemd-analyze security`.
#
#   test_systemd_units.sh SOURCE_DIR BUILD_DIR
#
# The units name /usr/local/sbin/{fennecd,fennec-supervisor}; verify checks that every
# command exists, so the copies checked here name the binaries of BUILD_DIR instead. Fails
# when verify prints anything at all (a warning is a problem too), when a unit lacks one of
# the hardening settings docs/deploy.md promises, or when its exposure score is above 2.5.
set -uo pipefail

SRC=${1:?source dir}
BUILD=${2:?build dir}
command -v systemd-analyze >/dev/null || {
    echo "FAIL systemd-analyze is missing: install the Debian package systemd"
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() { # check COND-EXIT-STATUS WHAT [DETAIL]
    if [ "$1" -eq 0 ]; then
        echo "ok   $2"
    else
        echo "FAIL $2${3:+: $3}"
        fail=1
    fi
}

units=()
for u in fennecd.service fennec-supervisor.service; do
    [ -f "$SRC/deploy/systemd/$u" ] || {
        check 1 "deploy/systemd/$u exists"
        continue
    }
    sed "s#/usr/local/sbin/#$BUILD/#g" "$SRC/deploy/systemd/$u" >"$work/$u"
    units+=("$work/$u")
    for want in 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
        'AmbientCapabilities=CAP_NET_BIND_SERVICE' 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE' \
        'ReadWritePaths=/var/lib/fennec' 'SystemCallFilter=@system-service' \
        'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK'; do
        grep -qxF "$want" "$work/$u"
        check $? "$u: $want"
    done
    grep -qE '^(User=fennec|DynamicUser=yes)$' "$work/$u"
    check $? "$u: runs as fennec or a dynamic user"
done

for u in "${units[@]}"; do
    out=$(cd "$work" && systemd-analyze verify --man=no "$u" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] && [ -z "$out" ]
    check $? "systemd-analyze verify $(basename "$u") is silent and exits 0" "exit $rc: $out"
    sec=$(cd "$work" && systemd-analyze security --offline=yes --threshold=25 "$u" 2>&1)
    rc=$?
    echo "$sec" | tail -n 1
    check "$rc" "systemd-analyze security $(basename "$u"): exposure 2.5 or less"
done
exit "$fail"
