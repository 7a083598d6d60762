#!/bin/bash
# End-to-end: the whole life of a fleet, driven through the aplspawn binary like a user (issue 7).
# The image store is served over HTTP on the namespace's loopback; then netup, getimage, spawn 3,
# status, pids, inventory | ansible ping (3/3 SUCCESS), a become playbook writes a file as root in
# every container, stop, spawn again (the file is still there), stop, cleanup, netdown; at the
# end no mount, loop device, link or nftables table of the fleet is left.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/fleet.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
serve_http "$IMAGE_REPO" 8711
BRIDGE=e2efleet0
NET=10.87.1
write_config "$WORK" "$HTTP_URL" "$BRIDGE" "$NET" 3
ansible_env
TABLE=aplspawn_E2E_FLEET
STORE=$WORK/lib/images
UPPER=$WORK/lib/upper
IMAGE_SHA=$(awk '$2 == "debian-bookworm-latest.img" {print $1}' "$IMAGE_REPO/SHA256SUMS")
FORWARD_BEFORE=$(</proc/sys/net/ipv4/ip_forward)
MARKER=e2e-$RANDOM$RANDOM

# ---------------------------------------------------------------------------------------------
section "netup: bridge $BRIDGE $NET.1/24, forwarding, NAT"
ap netup
check_rc "netup" 0
check_match "bridge $BRIDGE exists, is a bridge and up" "<([^>]*,)?UP[,>].* bridge " \
    "$(ip -o -d link show dev "$BRIDGE" 2>&1)"
check_contains "bridge has $NET.1/24" "$NET.1/24" "$(ip -o -4 addr show dev "$BRIDGE" 2>&1)"
check_eq "ip_forward is on" 1 "$(</proc/sys/net/ipv4/ip_forward)"
check_contains "nftables table ip $TABLE" "table ip $TABLE" "$(nft list tables 2>&1)"
ap netup
check_rc "netup a second time" 0
check_contains "netup a second time changes nothing" "(already so)" "$AP_ERR"
require_ok "netup"

# ---------------------------------------------------------------------------------------------
section "getimage over HTTP from $HTTP_URL"
ap getimage
check_rc "getimage" 0
check_contains "the image came over HTTP" '"GET /debian-bookworm-latest.img HTTP/1.1" 200' \
    "$(<"$WORK/http.log")"
stored=$STORE/debian-bookworm-latest.img
check "the image is in the store: $stored" test -f "$stored"
check_eq "the stored image has the published sha256" "$IMAGE_SHA" "$(sha256sum <"$stored" | awk '{print $1}')"
ap getimage
check_rc "getimage a second time" 0
check_contains "getimage a second time: up to date" "already up to date" "$AP_ERR"
require_ok "getimage"

# ---------------------------------------------------------------------------------------------
section "spawn 3 containers"
ap --timeout 300 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn"
ap names
check_rc "names" 0
NAMES=$(printf '%s\n' "$AP_OUT" | sort)
check_eq "names: the fleet of three" "$(printf 'aplspawn10\naplspawn11\naplspawn12')" "$NAMES"

ap status
check_rc "status after spawn" 0

ap pids
check_rc "pids" 0
PIDS=($AP_OUT)
check_eq "pids: one per container" 3 "${#PIDS[@]}"
for pid in "${PIDS[@]}"; do
    check "leader pid $pid is alive" test -d "/proc/$pid"
    check_eq "leader pid $pid is the container's systemd" systemd "$(cat "/proc/$pid/comm" 2>&1)"
done
check_eq "pids: all distinct" 3 "$(printf '%s\n' "${PIDS[@]}" | sort -u | wc -l)"
# The final check for leftovers sees a running fleet's parts (so its silence at the end means something).
running=$(leftovers "$WORK")
for kind in "loop device: " "mount: $WORK/lib/lower/" "mount: $WORK/machines/aplspawn10 (overlay)" \
    "link: $BRIDGE" "netns: aplspawn-aplspawn10" "nftables: table ip $TABLE"; do
    check_contains "leftovers() sees the running fleet: $kind" "$kind" "$running"
done
# A container's host end: aplspawn's own name (ap + 8 hex + interface number), docs/network.md.
check_match "leftovers() sees the running fleet: a container's host end" "^link: ap[0-9a-f]{8}0(@|$)" "$running"
require_ok "status and pids"

# ---------------------------------------------------------------------------------------------
section "inventory | ansible aplspawned -m ping"
ping_out=$(timeout 120 "$APLSPAWN" -c "$CONFIG" -o inventory 2>>"$WORK/inventory.err" |
    ANSIBLE_INVENTORY_ENABLED=ini timeout 120 ansible -i /dev/stdin aplspawned -m ping 2>&1) || true
printf '%s\n' "$ping_out" | sed 's/^/      | /' >&2
check_eq "ansible ping: SUCCESS from all three" "$NAMES" "$(ansible_successes "$ping_out")"
check_eq "ansible ping: 3 SUCCESS lines" 3 "$(grep -c ' | SUCCESS' <<<"$ping_out" || true)"
check_contains "ansible ping answers pong" '"ping": "pong"' "$ping_out"
ap inventory
check_rc "inventory" 0
check "inventoryFile written" test -s "$WORK/inventory.ini"
check_eq "inventoryFile holds what stdout printed" "$AP_OUT" "$(cat "$WORK/inventory.ini" 2>&1)"
# status and ansible logged in to each: the default image ran no update-motd for them.
for pid in "${PIDS[@]}"; do
    check_not "no /run/motd.dynamic in container $pid after its command logins" \
        test -e "/proc/$pid/root/run/motd.dynamic"
    # Its boot made no host key of a type aplspawn was not told to provision (rsa: opt-in).
    check_not "no RSA host key in container $pid" test -e "/proc/$pid/root/etc/ssh/ssh_host_rsa_key"
    check "the ed25519 host key aplspawn provisioned in container $pid" \
        test -s "/proc/$pid/root/etc/ssh/ssh_host_ed25519_key"
done
require_ok "ansible ping"

# ---------------------------------------------------------------------------------------------
section "a playbook with become: true writes /root/aplspawn-e2e-marker in every container"
rc=0
play=$(timeout 300 env ANSIBLE_INVENTORY_ENABLED=ini ansible-playbook -i "$WORK/inventory.ini" \
    -e "marker=$MARKER" "$E2E_DIR/become-marker.yml" 2>&1) || rc=$?
printf '%s\n' "$play" | sed 's/^/      | /' >&2
check_eq "ansible-playbook exit code" 0 "$rc"
for name in $NAMES; do
    check_match "play recap of $name: no failures" "$name +: ok=[1-9][0-9]* +changed=[0-9]+ +unreachable=0 +failed=0" "$play"
    check_eq "the marker in $name's own data (upper layer), owned by root" \
        "$name $MARKER root" "$(cat "$UPPER/$name/root/aplspawn-e2e-marker" 2>&1) $(stat -c %U "$UPPER/$name/root/aplspawn-e2e-marker" 2>&1)"
    # Ansible ran the modules with aplspawn's Python, which kept their compiled code for the
    # user (the ping above) and for root (become), each in a 0700 directory of their own.
    for home in home/e2e root; do
        cache=$(echo "$UPPER/$name/$home"/.cache/aplspawn/ansible-pyc/cpython-*)
        check_match "$name: compiled modules cached in /$home" "^[1-9][0-9]* " \
            "$(find "$cache" -type f | wc -l) $(stat -c %a "$cache" 2>&1)"
        check_eq "$name: /$home's cache is its own, 0700" "$(stat -c %U "$UPPER/$name/$home") 700" \
            "$(stat -c '%U %a' "$cache" 2>&1)"
    done
done
check_match "the inventory names aplspawn's Python for Ansible" \
    "ansible_python_interpreter=/usr/local/lib/aplspawn/ansible-python3" "$(cat "$WORK/inventory.ini")"
# Without pipelining Ansible copies the module and runs the interpreter with its path: aplspawn's
# Python then is plain python3 (become too).
nopipe=$(ANSIBLE_INVENTORY_ENABLED=ini timeout 120 ansible -i "$WORK/inventory.ini" aplspawned --become \
    -e ansible_pipelining=false -m ansible.builtin.command -a "id -un" -o 2>&1) || true
printf '%s\n' "$nopipe" | sed 's/^/      | /' >&2
for name in $NAMES; do
    check_match "$name: a module without pipelining runs, as root" "^$name \| CHANGED \| rc=0 \| \(stdout\) root\$" "$nopipe"
done
require_ok "the become playbook"

# ---------------------------------------------------------------------------------------------
section "stop"
ap --timeout 120 stop
check_rc "stop" 0
for pid in "${PIDS[@]}"; do
    check_not "leader pid $pid is gone" test -d "/proc/$pid"
done
ap status
check_rc "status of a stopped fleet" 1
check_contains "status says what failed" "[ FAIL ]" "$AP_ERR"
ap pids
check_rc "pids of a stopped fleet" 1
check_eq "pids prints no pid for a stopped fleet" "" "$AP_OUT"
ap --timeout 120 stop
check_rc "stop a second time" 0
for name in $NAMES; do
    check "stop keeps $name's data" test -f "$UPPER/$name/root/aplspawn-e2e-marker"
done
require_ok "stop"

# ---------------------------------------------------------------------------------------------
section "spawn again: the data is still there"
ap --timeout 300 spawn
check_rc "spawn again" 0
((AP_RC == 0)) || diagnose_fleet
ap status
check_rc "status after the second spawn" 0
ap pids
check_rc "pids after the second spawn" 0
PIDS2=($AP_OUT)
check_eq "pids: three again" 3 "${#PIDS2[@]}"
for pid in "${PIDS2[@]}"; do
    check "new leader pid $pid is alive" test -d "/proc/$pid"
done
cat_out=$(timeout 120 "$APLSPAWN" -c "$CONFIG" -o inventory 2>>"$WORK/inventory.err" |
    ANSIBLE_INVENTORY_ENABLED=ini timeout 120 ansible -i /dev/stdin aplspawned --become -o \
        -m ansible.builtin.command -a "cat /root/aplspawn-e2e-marker" 2>&1) || true
printf '%s\n' "$cat_out" | sed 's/^/      | /' >&2
for name in $NAMES; do
    check_match "$name still has the marker (read through ssh + sudo)" \
        "^$name \| CHANGED \| rc=0 \| \(stdout\) $name $MARKER\$" "$cat_out"
done
require_ok "the second spawn"

# ---------------------------------------------------------------------------------------------
section "stop, cleanup, netdown"
ap --timeout 120 stop
check_rc "stop" 0
for pid in "${PIDS2[@]}"; do
    check_not "leader pid $pid is gone" test -d "/proc/$pid"
done
ap cleanup
check_rc "cleanup" 0
for name in $NAMES; do
    check_not "cleanup removed $name's data" test -e "$UPPER/$name"
    check_not "cleanup removed $name's merged root" mountpoint -q "$WORK/machines/$name"
done
ap cleanup
check_rc "cleanup a second time" 0
ap netdown
check_rc "netdown" 0
check_not "bridge $BRIDGE is gone" ip link show dev "$BRIDGE"
check_not_contains "nftables table $TABLE is gone" "$TABLE" "$(nft list tables 2>&1)"
check_eq "ip_forward is back to $FORWARD_BEFORE" "$FORWARD_BEFORE" "$(</proc/sys/net/ipv4/ip_forward)"
ap netdown
check_rc "netdown a second time" 0

# ---------------------------------------------------------------------------------------------
section "nothing of the fleet is left"
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$WORK")"
check_eq "no overlay mount left in this namespace" 0 "$(grep -c '^overlay ' /proc/mounts || true)"
finish
