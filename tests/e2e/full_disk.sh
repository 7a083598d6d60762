#!/bin/bash
# End-to-end: full filesystems (issue 17). Each of these lives on a small tmpfs of the test's own
# mount namespace, filled to the last byte before the command: the image store (getimage), the
# fleet key's directory, the state directory (spawn's state writes) and the upper directories
# (provisioning). Each time: exit 1, a FAIL line naming the path and "no space", no half-written
# state or key file, and once the space is freed the same command succeeds.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/full_disk.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
BRIDGE=e2efull0
NET=10.87.6
base=$WORK/f
mkdir -p "$base"
write_config "$base" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 1
# The directories that fill up, each its own filesystem.
STORE=$base/lib/images
KEYDIR=$base/key
STATE=$base/state
DATA=$base/data
sed -i "s|^  workingDirectory: .*|&\n  imageUpperPath: $DATA/upper\n  imageWorkPath: $DATA/work\n  stateDirectory: $STATE|" "$CONFIG"
sed -i "s|$base/fleet_key|$KEYDIR/fleet_key|" "$CONFIG"
NAME=aplspawn10

small_fs() { # DIR SIZE
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1"
}
fill() { dd if=/dev/zero of="$1/.filler" bs=64k status=none 2>/dev/null || true; }
free_space() { rm -f "$1/.filler"; }
# Temporary files aplspawn writes before a rename (sys::write_file_atomic: .NAME.tmpXXXXXXXX;
# RootFs: .NAME.aplspawn-X; the fleet key: .aplspawn-keygen.X), one a line.
temp_files() { find "$@" \( -name '.*.tmp*' -o -name '.*.aplspawn-*' -o -name '.aplspawn-keygen.*' \) 2>/dev/null; }
# The FAIL line(s) of the last `ap`.
fails() { fail_lines; }

section "setup: netup"
small_fs "$STORE" 16m
small_fs "$KEYDIR" 1m
small_fs "$STATE" 1m
small_fs "$DATA" 128m
ap netup
check_rc "netup" 0
require_ok "netup"

# ---------------------------------------------------------------------------------------------
section "getimage into a full store"
fill "$STORE"
ap getimage
check_rc "getimage into a full store" 1
check_match "the FAIL line names the store and says no space" "\[ FAIL \] .*no space in $STORE for image" "$(fails)"
check_eq "nothing of the image in the store" "" \
    "$(find "$STORE" -type f ! -name .filler ! -path '*/.partial/lock' 2>/dev/null)"
free_space "$STORE"
mount -o remount,size=1g "$STORE"
ap getimage
check_rc "getimage once space is freed" 0
require_ok "getimage"

# ---------------------------------------------------------------------------------------------
section "spawn with the fleet key's directory full"
fill "$KEYDIR"
ap --timeout 300 spawn
check_rc "spawn" 1
check_match "the FAIL line names the key's directory and says no space" \
    "\[ FAIL \] Generating the fleet's SSH key: .*no space left on the filesystem of $KEYDIR" "$(fails)"
check_eq "no key file, half or whole, and no temporary directory" ".filler" "$(ls -A "$KEYDIR")"
free_space "$KEYDIR"
ap --timeout 300 spawn
check_rc "spawn once space is freed" 0
check "the key pair exists" test -s "$KEYDIR/fleet_key" -a -s "$KEYDIR/fleet_key.pub"
ap --timeout 120 stop
check_rc "stop" 0

# ---------------------------------------------------------------------------------------------
section "spawn with the state directory full"
fill "$STATE"
ap --timeout 300 spawn
check_rc "spawn" 1
check_match "the FAIL line names the state directory and says no space" \
    "\[ FAIL \] .*no space left on the filesystem of $STATE" "$(fails)"
check_eq "no temporary file left in the state directory" "" "$(temp_files "$STATE")"
bad_json=""
for f in $(find "$STATE" -name '*.json'); do
    python3 -m json.tool "$f" >/dev/null 2>&1 || bad_json+="$f "
done
check_eq "every state file is whole (valid JSON)" "" "$bad_json"
free_space "$STATE"
ap --timeout 300 spawn
check_rc "spawn once space is freed" 0
ap status
check_rc "status" 0
ap --timeout 120 stop
check_rc "stop" 0

# ---------------------------------------------------------------------------------------------
section "spawn with the upper directories' filesystem full (provisioning)"
ap cleanup
check_rc "cleanup (the next spawn provisions anew)" 0
fill "$DATA"
ap --timeout 300 spawn
check_rc "spawn" 1
check_match "the container's FAIL line names its upper directory and says no space" \
    "\[ FAIL \] Provisioning $NAME .*no space left on the filesystem of $DATA/upper/$NAME" "$AP_ERR"
check_eq "no temporary file left in the upper directory" "" "$(temp_files "$DATA/upper")"
ap pids
check_rc "the container was not started" 1
free_space "$DATA"
ap --timeout 300 spawn
check_rc "spawn once space is freed" 0
((AP_RC == 0)) || diagnose_fleet
ap status
check_rc "status" 0

# ---------------------------------------------------------------------------------------------
section "stop, cleanup, netdown"
ap --timeout 120 stop
check_rc "stop" 0
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
check_eq "no loop device, link or nftables table left" "" "$(leftovers "$base" | grep -v '^mount: ' || true)"
check_eq "only the test's own filesystems are mounted" \
    "$(printf '%s\n' "$DATA" "$KEYDIR" "$STATE" "$STORE" | sort)" \
    "$(grep -F " $base/" /proc/mounts | awk '{print $2}' | sort)"
finish
