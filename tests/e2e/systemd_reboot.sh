#!/bin/bash
# End-to-end: `aplspawn enable` / `disable` and reboots of a host WITH systemd (issue 17). First,
# on this machine (PID 1 is not systemd): enable and disable exit 1 saying why, nothing written.
# Then in a simulated systemd host (tests/support/systemd-host) whose disk (its overlay's upper
# directory, and a directory bound at /var/lib/aplspawn-e2e for the fleet) survives its reboots:
#   - enable writes aplspawn-fleet-<escaped config path>.service, marked as aplspawn's, and
#     enables it; a second enable changes nothing; --dry-run plans;
#   - `systemctl start` of that unit brings the fleet up (netup, spawn); a file is written in
#     every container through SSH;
#   - a clean reboot (the host's systemd powers off: the unit's ExecStop stops the fleet), then an
#     unclean one (SIGKILL to the host): after each, the host's systemd started the unit at boot,
#     the fleet answers SSH with the same host keys and the file, status is clean;
#   - disable removes exactly that unit (a second disable changes nothing; a unit of that name
#     that aplspawn did not write is refused and left alone); after a reboot nothing comes up.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/systemd_reboot.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
HOST_SCRIPT=$SOURCE_DIR/tests/support/systemd-host
HOST_DIR=$WORK/host
PERSIST=$WORK/persist
BASE=/var/lib/aplspawn-e2e # inside the host: $PERSIST, bound at every boot
BRIDGE=e2esdboot0
NET=10.87.7
MARKER=e2e-$RANDOM$RANDOM
NAMES=(aplspawn10 aplspawn11)
IPS=($NET.10 $NET.11)
mkdir -p "$PERSIST"

in_host() { # [--timeout SEC] CMD...
    local limit=60
    if [[ $1 == --timeout ]]; then
        limit=$2
        shift 2
    fi
    timeout --kill-after=10 "$limit" "$HOST_SCRIPT" exec --dir "$HOST_DIR" -- "$@"
}
stop_host() { "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 30; }
binds=()
case $APLSPAWN in
"$SOURCE_DIR"/* | "$APLSPAWN_BUILD_DIR"/*) ;;
*) binds=(--bind-ro "$(dirname "$APLSPAWN")") ;;
esac
start_host() {
    local rc=0
    run_logged 200 "$HOST_SCRIPT" start --dir "$HOST_DIR" --timeout 180 --bind "$PERSIST:$BASE" \
        "${binds[@]}" || rc=$?
    check_eq "the simulated host booted" 0 "$rc"
}
ssh_in_host() { # IP CMD...
    local ip=$1
    shift
    in_host timeout 60 ssh -F none -i "$BASE/fleet_key" -o BatchMode=yes -o ConnectTimeout=10 \
        -o UserKnownHostsFile="$BASE/lib/state/known_hosts" -o StrictHostKeyChecking=yes "e2e@$ip" "$@"
}
# The fleet is up (started by the host's systemd at boot): SSH with the same host keys and the
# file written before, status clean.
check_fleet_back() { # WHEN
    local i
    check_eq "$1: $UNIT is active" active "$(in_host systemctl show -p ActiveState --value "$UNIT" 2>&1)"
    check_eq "$1: $UNIT succeeded" success "$(in_host systemctl show -p Result --value "$UNIT" 2>&1)"
    check_eq "$1: machinectl lists the fleet" "$(printf '%s\n' "${NAMES[@]}")" \
        "$(in_host machinectl list --no-legend --no-pager 2>&1 | awk '{print $1}' | sort)"
    for i in 0 1; do
        check_eq "$1: ${NAMES[i]} answers SSH (same host key) with its file" "${NAMES[i]} $MARKER" \
            "$(ssh_in_host "${IPS[i]}" cat /home/e2e/before-reboot 2>&1)"
    done
    ap status
    check_rc "$1: status" 0
    check_eq "$1: status has no FAIL line" "" "$(fail_lines)"
    if ((AP_RC != 0)); then
        in_host journalctl -b -u "$UNIT" --no-pager -n 60 2>&1 | sed 's/^/      | /' >&2 || true
        diagnose_fleet
    fi
}

write_config "$WORK" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 2
sed -i "s|$WORK|$BASE|g" "$WORK/aplspawn.yaml"
cp "$WORK/aplspawn.yaml" "$PERSIST/aplspawn.yaml"
CONFIG=$BASE/aplspawn.yaml
UNIT=aplspawn-fleet-var-lib-aplspawn\\x2de2e-aplspawn.yaml.service
UNIT_FILE=/etc/systemd/system/$UNIT

# ---------------------------------------------------------------------------------------------
section "without systemd as PID 1 (this machine): enable and disable exit 1, nothing written"
# /etc/systemd/system of this namespace on a tmpfs: whatever happens, the machine's stays as it is.
mkdir -p /etc/systemd/system
mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system
E2E_CLEANUP+=(umount_etc)
umount_etc() { umount -l /etc/systemd/system; }
CONFIG_HERE=$PERSIST/aplspawn.yaml
for op in enable disable; do
    for dry in "" --dry-run; do
        AP_RC=0
        timeout 30 "$APLSPAWN" -c "$CONFIG_HERE" -o $op $dry >"$WORK/ap.out" 2>"$WORK/ap.err" || AP_RC=$?
        AP_ERR=$(<"$WORK/ap.err")
        say "  \$ aplspawn -o $op $dry -> exit $AP_RC"
        sed 's/^/      | /' "$WORK/ap.err" >&2
        check_rc "$op $dry without systemd" 1
        check_eq "$op $dry: one line" 1 "$(wc -l <"$WORK/ap.err")"
        check_contains "$op $dry says why" "$op: this host does not run systemd as its init (no /run/systemd/system)" "$AP_ERR"
    done
done
check_eq "nothing written to /etc/systemd/system" "" "$(ls -A /etc/systemd/system)"
umount_etc
E2E_CLEANUP=()
require_ok "the host without systemd"

# ---------------------------------------------------------------------------------------------
section "boot the simulated systemd host"
start_host
E2E_CLEANUP+=(stop_host)
require_ok "booting the simulated host"
AP_PREFIX=("$HOST_SCRIPT" exec --dir "$HOST_DIR" -- env NO_COLOR=1)
check "the config is on the host's kept disk" in_host test -s "$CONFIG"
ap getimage
check_rc "getimage (before enable: the boot unit does not fetch images)" 0
require_ok "the host"

# ---------------------------------------------------------------------------------------------
section "enable: the unit, marked, enabled; twice is a no-op; --dry-run plans"
ap enable --dry-run
check_rc "enable --dry-run" 0
check_contains "dry run plans the unit" "[ PLAN ] Writing unit $UNIT_FILE" "$AP_ERR"
check_not "dry run wrote nothing" in_host test -e "$UNIT_FILE"
ap enable
check_rc "enable" 0
check_contains "enable wrote the unit" "[ OK ] Writing unit $UNIT_FILE (netup, then spawn, of $CONFIG at boot)" "$AP_ERR"
check_contains "enable enabled it" "[ OK ] Enabling $UNIT (multi-user.target, after network-online.target)" "$AP_ERR"
text=$(in_host cat "$UNIT_FILE" 2>&1)
check_match "the unit is marked as aplspawn's" "^# Written by aplspawn enable for the fleet of $CONFIG\.$" "$text"
check_contains "the unit runs netup" "ExecStart=\"$APLSPAWN\" -c \"$CONFIG\" -o netup" "$text"
check_contains "the unit runs spawn" "ExecStart=\"$APLSPAWN\" -c \"$CONFIG\" -o spawn" "$text"
check_contains "the unit stops the fleet when it stops" "ExecStop=\"$APLSPAWN\" -c \"$CONFIG\" -o stop" "$text"
check_eq "systemctl is-enabled: enabled" enabled "$(in_host systemctl is-enabled "$UNIT" 2>&1)"
check "multi-user.target wants it" in_host test -L "/etc/systemd/system/multi-user.target.wants/$UNIT"
check_eq "systemd loaded the file (daemon-reload)" loaded "$(in_host systemctl show -p LoadState --value "$UNIT" 2>&1)"
check_contains "systemd orders it after network-online.target" "network-online.target" \
    "$(in_host systemctl show -p After --value "$UNIT" 2>&1)"
before=$(in_host stat -c '%i %Y' "$UNIT_FILE" 2>&1)
ap enable
check_rc "enable again" 0
check_eq "enable again: both steps already so" 2 "$(grep -c '(already so)' <<<"$AP_ERR" || true)"
check_eq "enable again did not rewrite the file" "$before" "$(in_host stat -c '%i %Y' "$UNIT_FILE" 2>&1)"
ap disable --dry-run
check_rc "disable --dry-run" 0
check_contains "disable --dry-run plans the removal" "[ PLAN ] Removing unit $UNIT_FILE" "$AP_ERR"
check "disable --dry-run removed nothing" in_host test -e "$UNIT_FILE"
require_ok "enable"

# ---------------------------------------------------------------------------------------------
section "systemctl start brings the fleet up; a file in every container"
rc=0
in_host --timeout 400 systemctl start "$UNIT" || rc=$?
check_eq "systemctl start $UNIT" 0 "$rc"
((rc == 0)) || in_host journalctl -u "$UNIT" --no-pager -n 80 2>&1 | sed 's/^/      | /' >&2 || true
for i in 0 1; do
    check "${NAMES[i]}: a file written through SSH" ssh_in_host "${IPS[i]}" \
        "echo ${NAMES[i]} $MARKER >/home/e2e/before-reboot"
done
require_ok "the fleet through the unit"

# ---------------------------------------------------------------------------------------------
section "a clean reboot of the host: shutdown stops the fleet, boot brings it back"
rc=0
run_logged 90 "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 60 --keep-disk || rc=$?
check_eq "the host powered off" 0 "$rc"
check_not_contains "it powered off by itself (not killed)" "killing it" "$(<"$WORK/run_logged.out")"
records=$(ls "$PERSIST/lib/state/containers/"*.json 2>/dev/null || true)
check_eq "the unit's ExecStop stopped the fleet at shutdown: no record left" "" "$records"
start_host
require_ok "the reboot"
check_fleet_back "after a clean reboot"
check_contains "the unit's journal: spawn at boot" "Container with pid" \
    "$(in_host journalctl -b -u "$UNIT" --no-pager 2>&1)"
require_ok "the fleet after a clean reboot"

# ---------------------------------------------------------------------------------------------
section "an unclean reboot (SIGKILL to the host): boot brings the fleet back"
rc=0
run_logged 60 "$HOST_SCRIPT" stop --dir "$HOST_DIR" --keep-disk --kill || rc=$?
check_eq "the host was killed" 0 "$rc"
check_eq "the records of the killed boot are still there" 2 \
    "$(ls "$PERSIST/lib/state/containers/"*.json 2>/dev/null | wc -l)"
start_host
require_ok "the unclean reboot"
check_fleet_back "after an unclean reboot"
require_ok "the fleet after an unclean reboot"

# ---------------------------------------------------------------------------------------------
section "disable: exactly that unit goes, the fleet keeps running; after a reboot nothing comes up"
ap disable
check_rc "disable" 0
check_contains "disable disabled it" "[ OK ] Disabling $UNIT" "$AP_ERR"
check_contains "disable removed the file" "[ OK ] Removing unit $UNIT_FILE" "$AP_ERR"
check_not "the unit file is gone" in_host test -e "$UNIT_FILE"
check_not "the wants link is gone" in_host test -L "/etc/systemd/system/multi-user.target.wants/$UNIT"
check_eq "the fleet still runs" 2 "$(in_host machinectl list --no-legend --no-pager 2>&1 | wc -l)"
ap disable
check_rc "disable again" 0
check_eq "disable again: both steps already so" 2 "$(grep -c '(already so)' <<<"$AP_ERR" || true)"
in_host sh -c "printf '[Unit]\nDescription=not aplspawn\n' >'$UNIT_FILE'"
ap disable
check_rc "disable of a unit aplspawn did not write" 1
check_contains "it says so" "exists and was not written by aplspawn" "$AP_ERR"
check_eq "that unit is left alone" "[Unit]" "$(in_host head -n 1 "$UNIT_FILE" 2>&1)"
ap enable
check_rc "enable over a unit aplspawn did not write" 1
check_eq "still left alone" "[Unit]" "$(in_host head -n 1 "$UNIT_FILE" 2>&1)"
in_host rm -f "$UNIT_FILE"
ap --timeout 120 stop
check_rc "stop" 0
rc=0
run_logged 90 "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 60 --keep-disk || rc=$?
start_host
check_eq "after a reboot without the unit: no machine" "" "$(in_host machinectl list --no-legend --no-pager 2>&1)"
check_eq "systemd knows no such unit" not-found "$(in_host systemctl show -p LoadState --value "$UNIT" 2>&1)"

# ---------------------------------------------------------------------------------------------
section "cleanup, netdown, stop the host"
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
rc=0
run_logged 60 "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 30 || rc=$?
check_eq "systemd-host stop" 0 "$rc"
check_eq "nothing left in the test's namespace" "" "$(leftovers "$WORK")"
finish
