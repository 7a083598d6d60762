#!/bin/bash
# End-to-end on a host WITH systemd as PID 1 (issue 7): boots a simulated systemd host
# (tests/support/systemd-host: this machine's own root with systemd, machined and D-Bus) and
# drives the aplspawn binary inside it like a user: netup, getimage (file:// store), spawn 3,
# status, pids, inventory | ansible ping from inside the host (3/3 SUCCESS), a become playbook,
# stop, spawn again (data kept), stop, cleanup, netdown. Checks that the containers run as
# transient units aplspawn-NAME.service registered with machined: `machinectl list` shows the
# fleet, `machinectl status NAME` works; after stop no unit or machine is left; at the end the
# host holds no mount, loop device, link or nftables table of the fleet. With several networks
# (issue 13): every container is also on an isolated network backend; systemd starts nspawn in
# the namespace aplspawn made (the unit's NetworkNamespacePath=); the containers talk over
# backend; a spawn killed with -9 midway is followed by one that converges; stop removes every
# namespace and veth.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/systemd_host.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
HOST_SCRIPT=$SOURCE_DIR/tests/support/systemd-host
HOST_DIR=$WORK/host
BASE=/run/aplspawn-e2e # inside the host: a tmpfs (the host's / is an overlay: no upper layer there)
BRIDGE=e2esd0
NET=10.87.3
TABLE=aplspawn_E2E_SYSTEMD_HOST
MARKER=e2e-$RANDOM$RANDOM
BACK_BRIDGE=e2esdb0
BACK=10.87.6

# Runs a command inside the simulated host (all its namespaces and its root), bounded.
in_host() { # [--timeout SEC] CMD...
    local limit=60
    if [[ $1 == --timeout ]]; then
        limit=$2
        shift 2
    fi
    timeout --kill-after=10 "$limit" "$HOST_SCRIPT" exec --dir "$HOST_DIR" -- "$@"
}
stop_host() { "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 30; }
E2E_CLEANUP+=(stop_host)

# ---------------------------------------------------------------------------------------------
section "boot the simulated systemd host"
binds=()
case $APLSPAWN in
"$SOURCE_DIR"/* | "$APLSPAWN_BUILD_DIR"/*) ;;
*) binds=(--bind-ro "$(dirname "$APLSPAWN")") ;;
esac
rc=0
run_logged 150 "$HOST_SCRIPT" start --dir "$HOST_DIR" --timeout 120 "${binds[@]}" || rc=$?
check_eq "systemd-host start" 0 "$rc"
require_ok "booting the simulated host"
check_eq "PID 1 in the host is systemd" systemd "$(in_host cat /proc/1/comm 2>&1)"
check "the host runs systemd as its init (/run/systemd/system)" in_host test -d /run/systemd/system
check "the aplspawn binary is visible inside the host" in_host test -x "$APLSPAWN"
HOST_LINKS=$(in_host ip -o link show | awk -F': ' '{print $2}' | sort)
HOST_TABLES=$(in_host nft list tables 2>&1)
require_ok "the simulated host"

AP_PREFIX=("$HOST_SCRIPT" exec --dir "$HOST_DIR" -- env NO_COLOR=1)
write_config "$WORK" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 3 "  networks:
    backend: [$BACK.10, $BACK.20]
networks:
  backend: {bridge: $BACK_BRIDGE, address: $BACK.1, netPrefix: 24}"
sed -i "s|$WORK|$BASE|g" "$WORK/aplspawn.yaml"
check "config written into the host" in_host sh -c "mkdir -p $BASE && cat >$BASE/aplspawn.yaml" \
    <"$WORK/aplspawn.yaml"
CONFIG=$BASE/aplspawn.yaml
require_ok "the config"

# ---------------------------------------------------------------------------------------------
section "netup, getimage (file://) inside the host"
ap netup
check_rc "netup" 0
check_match "bridge $BRIDGE inside the host, up" "<([^>]*,)?UP[,>].* bridge " \
    "$(in_host ip -o -d link show dev "$BRIDGE" 2>&1)"
check_contains "nftables table $TABLE inside the host" "table ip $TABLE" "$(in_host nft list tables 2>&1)"
check_not "the bridge is not in the test's own namespace" ip link show dev "$BRIDGE"
check_match "backend's bridge $BACK_BRIDGE inside the host, up" "<([^>]*,)?UP[,>].* bridge " \
    "$(in_host ip -o -d link show dev "$BACK_BRIDGE" 2>&1)"
ap getimage
check_rc "getimage" 0
check_contains "getimage verified the image" "Verifying image checksum" "$AP_ERR"
require_ok "netup and getimage"

# ---------------------------------------------------------------------------------------------
section "spawn 3: units aplspawn-NAME.service, machines registered with machined"
ap --timeout 300 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn"
ap names
NAMES=$(printf '%s\n' "$AP_OUT" | sort)
check_eq "names: the fleet of three" "$(printf 'aplspawn10\naplspawn11\naplspawn12')" "$NAMES"
ap status
check_rc "status" 0
ap pids
check_rc "pids" 0
PIDS=($AP_OUT)
check_eq "pids: one per container" 3 "${#PIDS[@]}"
for pid in "${PIDS[@]}"; do
    check_eq "leader $pid is alive in the host and is the container's systemd" systemd \
        "$(in_host cat "/proc/$pid/comm" 2>&1)"
done

machines=$(in_host machinectl list --no-legend --no-pager 2>&1)
say "  machinectl list:"
printf '%s\n' "$machines" | sed 's/^/      | /' >&2
check_eq "machinectl list shows exactly the fleet" "$NAMES" "$(awk '{print $1}' <<<"$machines" | sort)"
for name in $NAMES; do
    unit=aplspawn-$name.service
    check_eq "$unit is active" active "$(in_host systemctl show -p ActiveState --value "$unit" 2>&1)"
    check_eq "$unit runs in machine.slice" machine.slice "$(in_host systemctl show -p Slice --value "$unit" 2>&1)"
    status_out=$(in_host machinectl status "$name" --no-pager 2>&1) && rc=0 || rc=$?
    check_eq "machinectl status $name exits 0" 0 "$rc"
    check_contains "machinectl status $name names the unit" "Unit: $unit" "$status_out"
    check_contains "machinectl status $name knows the OS" "Debian GNU/Linux 12" "$status_out"
    check_contains "machinectl status $name knows the address" "$NET." "$status_out"
    check_contains "the state record of $name says launcher systemd" '"launcher": "systemd"' \
        "$(in_host cat "$BASE/lib/state/containers/$name.json" 2>&1)"
done
i=0
for name in $NAMES; do
    check_eq "machined's leader of $name is what pids printed" "${PIDS[i]}" \
        "$(in_host machinectl show "$name" -p Leader --value 2>&1)"
    i=$((i + 1))
done
check_match "systemctl -M aplspawn10 reaches the guest's own systemd through machined" "^(running|degraded)$" \
    "$(in_host systemctl -M aplspawn10 is-system-running 2>&1)"
require_ok "units and machines"

# ---------------------------------------------------------------------------------------------
section "networks: each unit runs in the namespace aplspawn made, host0 and backend in it"
i=10
for name in $NAMES; do
    unit=aplspawn-$name.service
    check_eq "$unit: NetworkNamespacePath is aplspawn's namespace" "/run/netns/aplspawn-$name" \
        "$(in_host systemctl show -p NetworkNamespacePath --value "$unit" 2>&1)"
    check_eq "$name's leader is in that namespace" \
        "$(in_host stat -L -c %i "/run/netns/aplspawn-$name" 2>&1)" \
        "$(in_host stat -L -c %i "/proc/$(in_host machinectl show "$name" -p Leader --value)/ns/net" 2>&1)"
    check_contains "$name has $BACK.$i on backend" "inet $BACK.$i/24" \
        "$(in_host ip -n "aplspawn-$name" -4 -o addr show dev backend 2>&1)"
    i=$((i + 1))
done
ap status --json
check_rc "status --json" 0
check_eq "status checks every container's backend interface and pings it there" "6" \
    "$(python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c["check"] in ("interface.backend", "ping.backend") and c["ok"]))' <<<"$AP_OUT")"
require_ok "networks"

# ---------------------------------------------------------------------------------------------
section "ansible from inside the host: ping 3/3, a become playbook"
ANSIBLE_VARS=(ANSIBLE_HOME=$BASE/ansible ANSIBLE_LOCAL_TEMP=$BASE/ansible/tmp
    ANSIBLE_SSH_CONTROL_PATH_DIR=$BASE/ansible/cp ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
    ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_CONFIG=$BASE/ansible/ansible.cfg ANSIBLE_TIMEOUT=30
    ANSIBLE_INVENTORY_ENABLED=ini)
in_host sh -c "mkdir -p $BASE/ansible && : >$BASE/ansible/ansible.cfg"
ping_out=$(in_host --timeout 180 env "${ANSIBLE_VARS[@]}" sh -c \
    "'$APLSPAWN' -c $CONFIG -o inventory 2>/dev/null | ansible -i /dev/stdin aplspawned -m ping" 2>&1) || true
printf '%s\n' "$ping_out" | sed 's/^/      | /' >&2
check_eq "ansible ping: SUCCESS from all three" "$NAMES" "$(ansible_successes "$ping_out")"
check_eq "ansible ping: 3 SUCCESS lines" 3 "$(grep -c ' | SUCCESS' <<<"$ping_out" || true)"

ap inventory
check_rc "inventory (writes inventoryFile)" 0
rc=0
play=$(in_host --timeout 300 env "${ANSIBLE_VARS[@]}" ansible-playbook -i "$BASE/inventory.ini" \
    -e "marker=$MARKER" "$E2E_DIR/become-marker.yml" 2>&1) || rc=$?
printf '%s\n' "$play" | sed 's/^/      | /' >&2
check_eq "ansible-playbook exit code" 0 "$rc"
for name in $NAMES; do
    check_match "play recap of $name: no failures" "$name +: ok=[1-9][0-9]* +changed=[0-9]+ +unreachable=0 +failed=0" "$play"
done
over=$(in_host --timeout 120 env "${ANSIBLE_VARS[@]}" ansible -i "$BASE/inventory.ini" aplspawn10 -o \
    -m ansible.builtin.command -a "ping -c 1 -W 3 $BACK.12" 2>&1) || true
printf '%s\n' "$over" | sed 's/^/      | /' >&2
check_match "aplspawn10 pings aplspawn12 over backend" "^aplspawn10 \| CHANGED \| rc=0" "$over"
require_ok "ansible"

# ---------------------------------------------------------------------------------------------
section "stop: units and machines gone"
ap --timeout 120 stop
check_rc "stop" 0
for pid in "${PIDS[@]}"; do
    check_not "leader $pid is gone" in_host test -d "/proc/$pid"
done
check_eq "machinectl list is empty" "" "$(in_host machinectl list --no-legend --no-pager 2>&1)"
for name in $NAMES; do
    check_eq "aplspawn-$name.service is unloaded" not-found \
        "$(in_host systemctl show -p LoadState --value "aplspawn-$name.service" 2>&1)"
done
check_eq "no failed unit left in the host" "" \
    "$(in_host systemctl list-units --failed --plain --no-legend 'aplspawn-*' 2>&1)"
check_eq "stop removed every container's namespace" "" "$(in_host ip netns list 2>&1)"
check_eq "stop removed every veth" "" "$(in_host ip -o link show type veth 2>&1)"
ap status
check_rc "status of a stopped fleet" 1
require_ok "stop"

# ---------------------------------------------------------------------------------------------
section "kill -9 of a spawn midway, then spawn or stop converges"
# A spawn of three takes about a second here: killed 0.05-0.9 s in, it is making networks,
# provisioning or starting units. After each kill: stop (or spawn, then stop) must leave no
# namespace, veth or unit, and never fail on what the killed run left ("File exists").
killed=0
kill_spawn_after() { # SECONDS: a spawn inside the host, killed with -9 after SECONDS
    local out
    out=$(in_host --timeout 60 bash -c "'$APLSPAWN' -c $CONFIG spawn >/dev/null 2>&1 & p=\$!; sleep $1; kill -9 \$p 2>/dev/null && echo killed; wait \$p" 2>&1) || true
    [[ $out == *killed* ]] && killed=$((killed + 1))
    say "  spawn killed after $1 s: ${out:-finished before}"
}
for d in 0.05 0.2 0.4 0.6 0.9; do
    kill_spawn_after "$d"
    if [[ $d == 0.4 || $d == 0.9 ]]; then
        ap --timeout 300 spawn
        check_rc "spawn after the spawn killed after $d s" 0
        check_not "no 'File exists' after the spawn killed after $d s" grep -q "File exists" <<<"$AP_ERR"
    fi
    ap --timeout 300 stop
    check_rc "stop after the spawn killed after $d s" 0
    check_eq "no namespace left ($d s)" "" "$(in_host ip netns list 2>&1)"
    check_eq "no veth left ($d s)" "" "$(in_host ip -o link show type veth 2>&1)"
    check_eq "no aplspawn unit left ($d s)" "" "$(in_host systemctl list-units --all --plain --no-legend 'aplspawn-*' 2>&1)"
done
check "at least two of the five spawns were killed midway (not finished first): $killed" test "$killed" -ge 2
kill_spawn_after 0.5
require_ok "kill -9"

# ---------------------------------------------------------------------------------------------
section "spawn again: the same units, the data kept"
ap --timeout 300 spawn
check_rc "spawn again" 0
((AP_RC == 0)) || diagnose_fleet
check_eq "machinectl list shows the fleet again" "$NAMES" \
    "$(in_host machinectl list --no-legend --no-pager 2>&1 | awk '{print $1}' | sort)"
check_not "no 'File exists' after the killed spawn" grep -q "File exists" <<<"$AP_ERR"
ap status --json
check_rc "status after the killed spawn" 0
check_eq "every container answers on backend again" "3" \
    "$(python3 -c 'import json,sys; print(sum(1 for c in json.load(sys.stdin) if c["check"] == "ping.backend" and c["ok"]))' <<<"$AP_OUT")"
cat_out=$(in_host --timeout 180 env "${ANSIBLE_VARS[@]}" ansible -i "$BASE/inventory.ini" aplspawned \
    --become -o -m ansible.builtin.command -a "cat /root/aplspawn-e2e-marker" 2>&1) || true
printf '%s\n' "$cat_out" | sed 's/^/      | /' >&2
for name in $NAMES; do
    check_match "$name still has the marker" "^$name \| CHANGED \| rc=0 \| \(stdout\) $name $MARKER\$" "$cat_out"
done
require_ok "the second spawn"

# ---------------------------------------------------------------------------------------------
section "stop, cleanup, netdown"
ap --timeout 120 stop
check_rc "stop" 0
check_eq "machinectl list is empty" "" "$(in_host machinectl list --no-legend --no-pager 2>&1)"
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0

section "nothing of the fleet is left in the host"
host_left=$(in_host bash -c "source '$E2E_DIR/lib.bash' && leftovers '$BASE'" 2>&1 | grep -v -e '^link: ' -e '^nftables: ' || true)
check_eq "no mount or loop device of the fleet in the host" "" "$host_left"
check_eq "the host's links are as before netup" "$HOST_LINKS" \
    "$(in_host ip -o link show | awk -F': ' '{print $2}' | sort)"
check_eq "the host's nftables tables are as before netup" "$HOST_TABLES" "$(in_host nft list tables 2>&1)"
check_eq "no aplspawn unit left" "" "$(in_host systemctl list-units --all --plain --no-legend 'aplspawn-*' 2>&1)"

section "stop the simulated host"
rc=0
run_logged 60 "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 30 || rc=$?
check_eq "systemd-host stop" 0 "$rc"
check_eq "nothing left in the test's namespace" "" "$(leftovers "$WORK")"
finish
