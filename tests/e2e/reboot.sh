#!/bin/bash
# End-to-end: an unclean reboot with a fleet up (issue 17, "Reboots"). A fleet of two runs, each
# container gets a file of its own; then the "reboot": every process of the namespace but this
# script is killed with SIGKILL (aplspawn's containers, their systemd-nspawn), every mount below
# the work directory is taken away (merged overlays, lower layers), loop devices detached, links
# and nftables tables deleted, ip_forward back to 0, the containers' cgroups removed; the state
# directory and the upper directories stay, as on disk. A new boot is faked the way it looks to
# aplspawn: the records carry another boot id (/proc/sys/kernel/random/boot_id is the kernel's),
# and a record names an unrelated live process (a `sleep` of ours) with its real pid and start
# time: after a reboot pids and start times repeat, so only the boot id tells them apart. The
# lock file names that pid as its holder too. Then:
#   - pids and status see nothing running, and never the sleep;
#   - netup then spawn bring the same two containers back, with their files and the same SSH host
#     keys (strict known_hosts), status is clean, and the sleep is left alone (alive);
#   - stop, cleanup, netdown leave nothing.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/reboot.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
BRIDGE=e2eboot0
NET=10.87.6
base=$WORK/f
mkdir -p "$base"
write_config "$base" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 2
STATE=$base/lib/state
TABLE=aplspawn_E2E_REBOOT
NAMES=(aplspawn10 aplspawn11)
IPS=($NET.10 $NET.11)
MARKER=e2e-$RANDOM$RANDOM
OTHER_BOOT=$(cat /proc/sys/kernel/random/uuid)

ssh_to() { # IP CMD...
    local ip=$1
    shift
    timeout 60 ssh -F none -i "$base/fleet_key" -o BatchMode=yes -o ConnectTimeout=10 \
        -o UserKnownHostsFile="$STATE/known_hosts" -o StrictHostKeyChecking=yes "e2e@$ip" "$@"
}
record_field() { # NAME FIELD
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$STATE/containers/$1.json" "$2"
}
start_time() { awk '{sub(/.*\) /, ""); print $20}' "/proc/$1/stat"; }

# ---------------------------------------------------------------------------------------------
section "a fleet of two, each with a file of its own"
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage" 0
ap --timeout 300 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn"
for i in 0 1; do
    check "${NAMES[i]}: a file written through SSH" ssh_to "${IPS[i]}" \
        "echo ${NAMES[i]} $MARKER >/home/e2e/before-reboot"
    check_eq "${NAMES[i]}: its record carries this boot's id" \
        "$(</proc/sys/kernel/random/boot_id)" "$(record_field "${NAMES[i]}" boot_id 2>&1)"
done
cgroups=()
for name in "${NAMES[@]}"; do cgroups+=("$(record_field "$name" cgroup)"); done
require_ok "the fleet"

# ---------------------------------------------------------------------------------------------
section "the unclean reboot"
# Every process of this pid namespace but this script and its ancestors: containers, nspawn.
keep=" $$ $BASHPID 1 "
p=$$
while [[ $p -gt 1 ]]; do
    p=$(awk '{sub(/.*\) /, ""); print $2}' "/proc/$p/stat")
    keep+="$p "
done
for round in 1 2 3 4 5 6 7 8 9 10; do
    victims=()
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $keep == *" $pid "* ]] && continue
        [[ $(awk '{sub(/.*\) /, ""); print $1}' "$d/stat" 2>/dev/null) == Z ]] && continue
        victims+=("$pid")
    done
    ((${#victims[@]})) || break
    kill -KILL "${victims[@]}" 2>/dev/null || true
    sleep 0.5
done
check_eq "no process left but this script" 0 "${#victims[@]}"
grep -F " $base/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m"; done
losetup --list --noheadings -O NAME,BACK-FILE | awk -v b="$base" 'index($2, b "/") == 1 {print $1}' |
    while read -r dev; do losetup -d "$dev"; done
for link in $(ip -o link show | awk -F': ' '$2 != "lo" {sub(/@.*/, "", $2); print $2}'); do
    ip link del "$link" 2>/dev/null || true
done
# /run is a tmpfs: the containers' named network namespaces and lxcfs's mount go with the boot.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
mountpoint -q /var/lib/lxcfs && umount -l /var/lib/lxcfs
nft flush ruleset
echo 0 >/proc/sys/net/ipv4/ip_forward
for cg in "${cgroups[@]}"; do
    for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
        [[ -n $cg && -d $h/$cg ]] && find "$h/$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
done
check_eq "nothing of the fleet is left but its files" "" "$(leftovers "$base")"
check "the upper directory of ${NAMES[0]} kept the file" test -s "$base/lib/upper/${NAMES[0]}/home/e2e/before-reboot"

# The new boot, as aplspawn sees it: the records are of another boot; one names a live process
# of this boot with its real pid and start time (pids repeat after a reboot), the other one a
# live pid whose start time is not the recorded one. The lock names the sleep too.
sleep 600 &
SLEEPER=$!
E2E_CLEANUP+=(stop_sleeper)
stop_sleeper() { kill "$SLEEPER"; }
python3 - "$STATE/containers" "$OTHER_BOOT" "$SLEEPER" "$(start_time "$SLEEPER")" <<'PY'
import json, sys
d, boot, pid, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for name, (boot_id, st) in {"aplspawn10": (boot, start), "aplspawn11": (boot, start + 1)}.items():
    p = f"{d}/{name}.json"
    r = json.load(open(p))
    r.update(boot_id=boot_id, nspawn_pid=pid, nspawn_start_time=st, leader_pid=pid, leader_start_time=st)
    json.dump(r, open(p, "w"), indent=2)
PY
printf 'aplspawn spawn (pid %s)\n' "$SLEEPER" >"$STATE/lock"
check_eq "aplspawn10's record names the sleep with its start time" "$SLEEPER $(start_time "$SLEEPER")" \
    "$(record_field aplspawn10 nspawn_pid) $(record_field aplspawn10 nspawn_start_time)"
require_ok "the reboot"

# ---------------------------------------------------------------------------------------------
section "after the reboot: nothing runs, the sleep is nobody's container"
ap pids
check_rc "pids (no container runs)" 1
check_not_contains "pids does not print the sleep's pid" "$SLEEPER" "$AP_OUT"
for name in "${NAMES[@]}"; do
    check_contains "pids: $name ended with the reboot" \
        "[ FAIL ] container $name is not running (its systemd-nspawn, pid $SLEEPER, is gone: recorded before a reboot)" "$AP_ERR"
done
ap list
check_match "list: aplspawn10 ended without a stop, no pid" '^aplspawn10 .* failed +- ' "$AP_OUT"
check_match "list: aplspawn11 ended without a stop, no pid" '^aplspawn11 .* failed +- ' "$AP_OUT"
ap status
check_rc "status before netup and spawn" 1
check "the sleep still runs" kill -0 "$SLEEPER"

# ---------------------------------------------------------------------------------------------
section "netup, spawn: the same fleet with its data"
ap netup
check_rc "netup" 0
ap --timeout 300 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
check_not_contains "spawn saw no container running" "already so" "$(grep -i 'container with pid' <<<"$AP_ERR" || true)"
check "the sleep is left alone" kill -0 "$SLEEPER"
ap status
check_rc "status after the reboot" 0
check_eq "status: no FAIL line" "" "$(fail_lines)"
for i in 0 1; do
    check_eq "${NAMES[i]} answers SSH (same host key) with the file written before the reboot" \
        "${NAMES[i]} $MARKER" "$(ssh_to "${IPS[i]}" cat /home/e2e/before-reboot 2>&1)"
    check_eq "${NAMES[i]}'s record is of this boot" "$(</proc/sys/kernel/random/boot_id)" \
        "$(record_field "${NAMES[i]}" boot_id 2>&1)"
    check_not_contains "${NAMES[i]}'s record no longer names the sleep" "\"nspawn_pid\": $SLEEPER," \
        "$(<"$STATE/containers/${NAMES[i]}.json")"
done
ap pids
PIDS=($AP_OUT)
check_eq "pids: two leaders" 2 "${#PIDS[@]}"
for pid in "${PIDS[@]}"; do
    check_eq "leader $pid is a container's systemd" systemd "$(cat "/proc/$pid/comm" 2>&1)"
done
ap --timeout 300 spawn
check_rc "spawn again" 0
check_eq "spawn again: both already up" 2 "$(grep -c 'Container with pid .* was started (already so)' <<<"$AP_ERR" || true)"
require_ok "the fleet after the reboot"

# ---------------------------------------------------------------------------------------------
section "stop, cleanup, netdown"
ap --timeout 120 stop
check_rc "stop" 0
check "the sleep still runs after stop" kill -0 "$SLEEPER"
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$base")"
finish
