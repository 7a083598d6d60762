#!/bin/bash
# End-to-end: a host-wide limit the fleet would exceed stops spawn before anything starts (issue
# 16). The sysctls are the machine's, so this test shows aplspawn other values by bind-mounting
# files over them in its own mount namespace: fs.inotify.max_user_instances 16 for a fleet of 3
# booted containers. The refusal names the sysctl, the value needed and the command; nothing is
# started, mounted or recorded. With the real value the same spawn succeeds; teardown leaves
# nothing. (net.ipv4.neigh.default.gc_thresh3 exists only in the initial network namespace, not
# in the test's: its check is a unit test, tests/unit/fleet_pure_test.cpp.)
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/host_limits.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image bookworm
write_config "$WORK" "$IMAGE_REPO" e2elim0 10.87.7 3
INOTIFY=/proc/sys/fs/inotify/max_user_instances
pretend() { # SYSCTL_FILE VALUE: aplspawn reads VALUE there (this mount namespace only)
    printf '%s\n' "$2" >"$WORK/$(basename "$1")"
    mount --bind "$WORK/$(basename "$1")" "$1"
}
nothing_started() {
    check_eq "no container process" "" "$(pgrep -f systemd-nspawn || true)"
    check_eq "no overlay mount" "" "$(grep -F " $WORK/" /proc/mounts | grep overlay || true)"
    check_eq "no container record" "" "$(ls "$WORK/lib/state/containers" 2>/dev/null | grep json || true)"
}

section "netup, getimage"
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage" 0
require_ok "setup"

section "fs.inotify.max_user_instances too low: spawn stops before anything starts"
pretend "$INOTIFY" 16
ap spawn
check_rc "spawn with max_user_instances 16" 1
check_match "the refusal names the sysctl, the need and the command" \
    '^‣ \[ FAIL \] fs\.inotify\.max_user_instances is 16; 3 more booted containers \([0-9]+ instances in use now\) need about [0-9]+: raise it first \(sysctl -w fs\.inotify\.max_user_instances=1024, and a file in /etc/sysctl\.d/ to keep it\)$' "$AP_ERR"
nothing_started
umount "$INOTIFY"
require_ok "the inotify refusal"

section "kernel.keys.root_maxkeys and net.netfilter.nf_conntrack_max too low: both named, nothing starts"
KEYS=/proc/sys/kernel/keys/root_maxkeys
CONNTRACK=/proc/sys/net/netfilter/nf_conntrack_max
used_keys=$(awk -F'[ :/]+' '$2 == "0" { print $6 }' /proc/key-users)
pretend "$KEYS" "${used_keys:-0}"
conntrack_checked=0
if [[ -e $CONNTRACK ]]; then
    pretend "$CONNTRACK" 10
    conntrack_checked=1
fi
ap spawn
check_rc "spawn with root_maxkeys at root's keys now" 1
check_match "the refusal names root's keys" \
    '^‣ \[ FAIL \] kernel\.keys\.root_maxkeys is [0-9]+; 3 more booted containers \([0-9]+ keys of root now\) need about [0-9]+: raise it first \(sysctl -w kernel\.keys\.root_maxkeys=1024, and a file in /etc/sysctl\.d/ to keep it\)$' "$AP_ERR"
if ((conntrack_checked)); then
    check_match "and the connection tracking table" \
        '^‣ \[ FAIL \] net\.netfilter\.nf_conntrack_max is 10; 3 containers \([0-9]+ connections tracked now\) need about [0-9]+: raise it first' "$AP_ERR"
    umount "$CONNTRACK"
fi
nothing_started
umount "$KEYS"
require_ok "the keys and conntrack refusal"

section "with the machine's own values the same spawn works"
ap --timeout 300 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
ap --timeout 120 stop
check_rc "stop" 0
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$WORK")"
finish
