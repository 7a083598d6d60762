#!/bin/bash
# End-to-end: snapshots and reset (issue 15), driven like a user. One container is prepared by a
# playbook (a package from a local .deb, a file) and snapshotted as `golden`; a group of three
# made from it has the package and the file, three machine-ids, host keys and host names of its
# own, and Ansible reaches it with strict host key checking; a file written in one goes with
# `reset`, the package stays and SSH works with the same known_hosts. Refusals (a name that
# exists, an unknown container, too little room in the store); a snapshot killed (-9) half-way
# leaves nothing; the store serves the snapshot to a second config over file:// and HTTP;
# `images` and `cleanup --images`; teardown leaves nothing.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/snapshots.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image bookworm
serve_http "$IMAGE_REPO" 8714
ansible_env
BRIDGE=e2esnp0
NET=10.87.5
MARKER=e2e-$RANDOM$RANDOM
STORE=$WORK/lib/images
UPPER=$WORK/lib/upper
KNOWN_HOSTS=$WORK/lib/state/known_hosts

# The package the playbook installs: a .deb made here, nothing from the network.
mkdir -p "$WORK/deb/DEBIAN" "$WORK/deb/usr/share/e2e-golden"
printf 'Package: e2e-golden\nVersion: 1.0\nArchitecture: all\nMaintainer: e2e <e2e@example.org>\nDescription: marker of the golden host\n' \
    >"$WORK/deb/DEBIAN/control"
printf '%s\n' "$MARKER" >"$WORK/deb/usr/share/e2e-golden/marker"
dpkg-deb --root-owner-group --build "$WORK/deb" "$WORK/e2e-golden.deb" >/dev/null

CONFIG=$WORK/aplspawn.yaml
cat >"$CONFIG" <<EOC
# end-to-end test snapshots: every path under $WORK
bridge: {name: $BRIDGE, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_SNAPSHOTS}
path: {workingDirectory: $WORK/lib}
image: {os: debian, release: bookworm, repo: $HTTP_URL}
cntVariables: {userName: e2e, sshPublicKeyPath: $WORK/fleet_key.pub}
cntCommon:
  sshPrivateKeyPath: $WORK/fleet_key
  homePath: $WORK/machines
  readyTimeout: 180
  inventoryFile: $WORK/inventory.ini
groups:
  base:
    amount: 1
    ipRange: ["$NET.10", "$NET.20"]
  gold:
    amount: 3
    ipRange: ["$NET.30", "$NET.40"]
    image: {snapshot: golden}
EOC
pid_of() { "$APLSPAWN" -c "$CONFIG" pids "$1" 2>/dev/null; }
in_root() { # NAME FILE: a file of the running container NAME
    local pid
    pid=$(pid_of "$1") && cat "/proc/$pid/root$2" 2>&1
}
ssh_strict() { # IP CMD...: the fleet user over SSH, strict host key checking on aplspawn's file
    local ip=$1
    shift
    timeout 60 ssh -F none -i "$WORK/fleet_key" -o BatchMode=yes -o UserKnownHostsFile="$KNOWN_HOSTS" \
        -o StrictHostKeyChecking=yes "e2e@$ip" "$@"
}

# ---------------------------------------------------------------------------------------------
section "a group of a snapshot that does not exist yet"
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage with golden missing" 2
check_contains "the refusal names the snapshot and the key" "golden" "$AP_ERR"
check_contains "the refusal names the config key" "groups.gold.image.snapshot" "$AP_ERR"
ap getimage base
check_rc "getimage base" 0
ap --timeout 300 spawn base
check_rc "spawn base" 0
((AP_RC == 0)) || diagnose_fleet
ap inventory
check_rc "inventory" 0
require_ok "the base container"

# ---------------------------------------------------------------------------------------------
section "prepare the golden host with a playbook, snapshot it"
rc=0
play=$(timeout 300 env ANSIBLE_INVENTORY_ENABLED=ini ansible-playbook -i "$WORK/inventory.ini" \
    -e "marker=$MARKER" -e "deb=$WORK/e2e-golden.deb" "$E2E_DIR/golden-play.yml" 2>&1) || rc=$?
printf '%s\n' "$play" | sed 's/^/      | /' >&2
check_eq "the golden play: exit 0" 0 "$rc"
check_eq "base10 has the package's file" "$MARKER" "$(in_root base10 /usr/share/e2e-golden/marker)"
base_machine_id=$(in_root base10 /etc/machine-id)

ap snapshot nosuch golden
check_rc "snapshot of a container that does not exist" 2
check_contains "it is named" "nosuch is not a container of the fleet" "$AP_ERR"
ap snapshot base10 ../golden
check_rc "a snapshot name that is a path" 2
# Too little room in the store: refused before the container is stopped or anything is written.
used_kib=$(df --output=used -k "$WORK" | tail -n 1)
mount -o remount,size=$((used_kib + 20 * 1024))k "$WORK"
ap snapshot base10 golden
check_rc "snapshot with 20 MiB free in the store" 1
check_contains "no space, naming the store" "no space in $STORE" "$AP_ERR"
check "base10 still runs" pid_of base10
check_not "no golden.img" test -e "$STORE/golden.img"
mount -o remount,size=4g "$WORK"

before_pid=$(pid_of base10)
ap --timeout 300 snapshot base10 golden
check_rc "snapshot base10 golden" 0
check_contains "base10 was stopped for the copy" "base10 runs: stopping it for a consistent copy" "$AP_ERR"
check "golden.img is in the store" test -f "$STORE/golden.img"
sum=$(sha256sum "$STORE/golden.img" | cut -d' ' -f1)
check_contains "SHA256SUMS lists it with its checksum" "$sum  golden.img" "$(cat "$STORE/SHA256SUMS")"
check_contains "the checksum is reported" "sha256 $sum" "$AP_ERR"
check_eq "it is a GPT disk image with a squashfs partition" "squashfs" \
    "$(blkid -p -o value -s TYPE --offset 1048576 "$STORE/golden.img" 2>&1)"
after_pid=$(pid_of base10) || after_pid=
check "base10 runs again" test -n "$after_pid"
check_not "base10 is a new process (it was stopped and started)" test "$before_pid" = "$after_pid"
check "base10 answers SSH as before" ssh_strict "$NET.10" true
check_eq "base10 kept its machine-id" "$base_machine_id" "$(in_root base10 /etc/machine-id)"
ap snapshot base10 golden
check_rc "a snapshot name that exists" 1
check_contains "it says --force" "golden.img already: choose another name, or --force" "$AP_ERR"
ap images
check_rc "images" 0
check_match "images lists golden as base10's snapshot, used by group gold" '^golden\.img +[0-9.]+M +[0-9a-f]{12} .* group gold +snapshot of base10 \(debian-bookworm-latest\)$' "$AP_OUT"
require_ok "the snapshot"

# ---------------------------------------------------------------------------------------------
section "a snapshot killed half-way leaves nothing"
setsid "$APLSPAWN" -c "$CONFIG" snapshot --force base10 golden2 >"$WORK/killed.out" 2>&1 &
killed=$!
check "mksquashfs runs (the snapshot is half-way)" wait_until 120 pgrep -f "mksquashfs .*golden2.img"
kill -9 -- "-$killed" 2>/dev/null || true
wait "$killed" 2>/dev/null || true
check "the killed run left its scratch directory" test -d "$STORE/.partial/snapshot-golden2"
check_not "no golden2.img in the store" test -e "$STORE/golden2.img"
check_not "no golden2 line in SHA256SUMS" grep -q golden2 "$STORE/SHA256SUMS"
ap --timeout 300 spawn base
check_rc "spawn brings base10 back after the kill" 0
ap images
check_not_contains "images does not list golden2" "golden2" "$AP_OUT"
ap images --remove golden
check_rc "removing golden while group gold uses it" 1
ap --timeout 300 snapshot --force base10 golden
check_rc "snapshot --force replaces golden after the kill" 0
check_eq "nothing of the killed run is left in the store's scratch" "" \
    "$(ls -A "$STORE/.partial" 2>/dev/null | grep -v '^lock$' || true)"
check_eq "no mount of the killed run" "" "$(grep -F "$STORE/.partial" /proc/mounts || true)"
sum=$(sha256sum "$STORE/golden.img" | cut -d' ' -f1)
require_ok "the killed snapshot"

# ---------------------------------------------------------------------------------------------
section "a group of three from golden"
ap getimage
check_rc "getimage has nothing to fetch for a snapshot" 0
ap --timeout 400 spawn gold
check_rc "spawn gold" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn gold"
ids="" keys="" names=""
for n in gold30 gold31 gold32; do
    check_eq "$n has the package's file" "$MARKER" "$(in_root $n /usr/share/e2e-golden/marker)"
    check_eq "$n has the golden file" "golden $MARKER" "$(in_root $n /etc/e2e-golden.conf)"
    ids+="$(in_root $n /etc/machine-id)"$'\n'
    keys+="$(in_root $n /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)"$'\n'
    names+="$(in_root $n /etc/hostname)"$'\n'
done
check_eq "three distinct machine-ids, none of base10's" 3 "$(grep -v -x -e "$base_machine_id" -e '' <<<"$ids" | sort -u | wc -l)"
check_eq "three distinct host keys" 3 "$(grep -v '^$' <<<"$keys" | sort -u | wc -l)"
check_eq "their own host names" "gold30 gold31 gold32" "$(grep -v '^$' <<<"$names" | tr '\n' ' ' | sed 's/ $//')"
check_not_contains "gold31's /etc/hosts does not carry base10's own lines" "127.0.1.1	base10" "$(in_root gold31 /etc/hosts)"
ans gold -m ansible.builtin.command -a "dpkg-query -W -f=\${Status} e2e-golden"
check_eq "Ansible (strict host keys): exit 0" 0 "$ANS_RC"
check_eq "Ansible reached the three" "gold30
gold31
gold32" "$(sed -n 's/^\([^ ]*\) | CHANGED.*/\1/p' <<<"$ANS" | sort)"
check_eq "the package is installed on the three" 3 "$(grep -c 'install ok installed' <<<"$ANS" || true)"
ap status --summary gold
check_rc "status of gold" 0
require_ok "the gold group"

# ---------------------------------------------------------------------------------------------
section "reset: back to golden, same name, address and host keys"
ans gold31 -b -m ansible.builtin.copy -a "dest=/etc/e2e-scratch content=scratch"
check_eq "a file written in gold31" 0 "$ANS_RC"
kh_before=$(sha256sum <"$KNOWN_HOSTS")
key_before=$(in_root gold31 /etc/ssh/ssh_host_ed25519_key.pub)
id_before=$(in_root gold31 /etc/machine-id)
ap --timeout 300 reset gold31
check_rc "reset gold31" 0
check_not "the file is gone" test -e "/proc/$(pid_of gold31)/root/etc/e2e-scratch"
check_eq "the package is there" "$MARKER" "$(in_root gold31 /usr/share/e2e-golden/marker)"
check_eq "the same host key" "$key_before" "$(in_root gold31 /etc/ssh/ssh_host_ed25519_key.pub)"
check_eq "the same machine-id" "$id_before" "$(in_root gold31 /etc/machine-id)"
check "SSH works, strict, with the same known_hosts" ssh_strict "$NET.31" true
check_eq "known_hosts untouched" "$kh_before" "$(sha256sum <"$KNOWN_HOSTS")"
ap reset nosuch
check_rc "reset of an unknown target" 2
require_ok "reset"

# ---------------------------------------------------------------------------------------------
section "the store as an image repo for a second config, over file:// and HTTP"
kill "$HTTP_PID" 2>/dev/null && wait "$HTTP_PID" 2>/dev/null || true
serve_http "$STORE" 8715
for repo in "file://$STORE" "$HTTP_URL"; do
    other=$WORK/other-${repo%%:*}
    mkdir -p "$other"
    cat >"$other/aplspawn.yaml" <<EOC
bridge: {name: e2esnp1, address: 10.87.6.1, netPrefix: 24}
ipt: {chainName: E2E_SNAP2}
path: {workingDirectory: $other/lib}
image: {url: $repo/golden.img}
cntVariables: {userName: e2e, sshPublicKeyPath: $WORK/fleet_key.pub}
cntCommon: {sshPrivateKeyPath: $WORK/fleet_key, amount: 1, ipRange: [10.87.6.10, 10.87.6.20]}
EOC
    rc=0
    out=$(timeout 120 "$APLSPAWN" -c "$other/aplspawn.yaml" getimage 2>&1) || rc=$?
    printf '%s\n' "$out" | sed 's/^/      | /' >&2
    check_eq "getimage of golden from $repo: exit 0" 0 "$rc"
    check_contains "verified against the store's SHA256SUMS" "Verifying image checksum" "$out"
    check_eq "the same bytes" "$sum" "$(sha256sum "$other/lib/images/golden.img" 2>&1 | cut -d' ' -f1)"
done
check_contains "golden came over HTTP" '"GET /golden.img HTTP/1.1" 200' "$(<"$WORK/http.log")"
require_ok "the store as a repo"

# ---------------------------------------------------------------------------------------------
section "cleanup --images keeps what is used; teardown leaves nothing"
ap --timeout 120 stop
check_rc "stop" 0
ap cleanup --images
check_rc "cleanup --images" 0
check "golden.img stays: group gold uses it" test -f "$STORE/golden.img"
ap cleanup --images --force
check_rc "cleanup --images --force" 0
check_not "the store is gone" test -e "$STORE/golden.img"
ap netdown
check_rc "netdown" 0
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$WORK")"
finish
