#!/bin/bash
# End-to-end: a container's data stays the container's (issue 17). Inside the upper directories
# every file has the container's own uids: uid 1000 is the fleet user in every container and
# often a person on the host. The directories that hold container data (upper, work, lower,
# state, homePath: fleet/private_dirs.hpp) are 0700, so a host user with uid 1000 reads nothing
# of a container through them:
#   - directories left 0755 (as older versions made them) are restricted by spawn, one line each;
#   - as uid 1000, nothing under them can be listed or read (the fleet user's authorized_keys,
#     /etc/shadow, known_hosts, the merged root); with the upper directory opened up again by
#     hand the same read works (the check can fail), and the next spawn closes it again.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/private_data.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
BRIDGE=e2epriv0
NET=10.87.4
base=$WORK/f
mkdir -p "$base"
write_config "$base" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 1
LIB=$base/lib
NAME=aplspawn10
KEYS=$LIB/upper/$NAME/home/e2e/.ssh/authorized_keys
PRIVATE=("$LIB/upper" "$LIB/work" "$LIB/lower" "$LIB/state" "$base/machines")

# As a host user with uid/gid 1000 and no other groups.
as_1000() { setpriv --reuid=1000 --regid=1000 --clear-groups -- "$@"; }
modes() { stat -c '%a %n' "${PRIVATE[@]}" 2>&1; }

# ---------------------------------------------------------------------------------------------
section "fresh directories are created 0700"
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage" 0
check_eq "getimage made upper, work, lower, state and homePath 0700" \
    "$(printf '700 %s\n' "${PRIVATE[@]}")" "$(modes)"
require_ok "setup"

# ---------------------------------------------------------------------------------------------
section "spawn restricts directories an older version left 0755"
chmod 0755 "${PRIVATE[@]}"
ap --timeout 300 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn"
for key in path.imageUpperPath path.imageWorkPath path.imageLowerLayer path.stateDirectory cntCommon.homePath; do
    check_match "spawn says it restricted $key" "\[ INFO \] Restricted $key .* to 0700 \(it was 0755" "$AP_ERR"
done
check_eq "all five are 0700 again" "$(printf '700 %s\n' "${PRIVATE[@]}")" "$(modes)"
ap --timeout 300 spawn
check_rc "spawn again" 0
check_not_contains "a second spawn restricts nothing" "Restricted" "$AP_ERR"

# ---------------------------------------------------------------------------------------------
section "a host user with uid 1000 reads nothing of the container"
check_eq "inside, the fleet user e2e is uid 1000" 1000 "$(stat -c %u "$KEYS" 2>&1)"
check "root reads the fleet user's authorized_keys in the upper layer" test -s "$KEYS"
for dir in "${PRIVATE[@]}"; do
    check_not "uid 1000 cannot list $dir" as_1000 ls "$dir"
done
for file in "$KEYS" "$LIB/upper/$NAME/etc/shadow" "$base/machines/$NAME/etc/shadow" \
    "$base/machines/$NAME/home/e2e/.ssh/authorized_keys" "$base/machines/$NAME/etc/hostname" \
    "$LIB/state/known_hosts" "$LIB/state/containers/$NAME.json"; do
    check "root sees $file" test -e "$file"
    check_not "uid 1000 cannot read $file" as_1000 cat "$file"
done
check_eq "uid 1000 finds nothing below $base that belongs to the container" "" \
    "$(as_1000 find "${PRIVATE[@]}" -mindepth 1 2>/dev/null)"

section "the check can fail: opened up by hand, uid 1000 reads it; spawn closes it again"
chmod 0755 "$LIB/upper"
check "with upper 0755, uid 1000 reads the fleet user's authorized_keys" as_1000 cat "$KEYS"
ap --timeout 300 spawn
check_rc "spawn" 0
check_match "spawn restricted the upper directory again" "Restricted path.imageUpperPath .* to 0700" "$AP_ERR"
check_not "uid 1000 cannot read it any more" as_1000 cat "$KEYS"

# ---------------------------------------------------------------------------------------------
section "stop, cleanup, netdown"
ap --timeout 120 stop
check_rc "stop" 0
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$base")"
finish
