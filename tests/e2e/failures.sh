#!/bin/bash
# End-to-end: failure paths a user meets, through the aplspawn binary (issue 7). Each must end
# with the documented exit code (docs/exit-codes.md: 1 failed, 2 usage/config) and one clear
# FAIL line, and leave nothing behind:
#   - getimage with a wrong image.sha256 (and with a SHA256SUMS that does not match): exit 1, one
#     line with both hashes, nothing left in the store;
#   - spawn before getimage: exit 1, one line saying to run getimage, nothing mounted;
#   - netdown while the fleet runs: exit 1, one line, the network and the container untouched;
#   - a config with an unknown key: exit 2, FILE:LINE: key.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/failures.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
IMAGE_SHA=$(awk '$2 == "debian-bookworm-latest.img" {print $1}' "$IMAGE_REPO/SHA256SUMS")
WRONG_SHA=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
BRIDGE=e2efail0
NET=10.87.2
TABLE=aplspawn_E2E_FAILURES

# A repository whose SHA256SUMS lies about the image (the image itself is the real one).
mkdir -p "$WORK/badrepo"
ln -s "$IMAGE_REPO/debian-bookworm-latest.img" "$WORK/badrepo/debian-bookworm-latest.img"
printf '%s  debian-bookworm-latest.img\n' "$WRONG_SHA" >"$WORK/badrepo/SHA256SUMS"
serve_http "$WORK/badrepo" 8712

# Exactly one FAIL line in the last `ap`'s stderr; prints it.
one_fail_line() { # DESC
    local lines
    lines=$(fail_lines)
    check_eq "$1: exactly one FAIL line" 1 "$(grep -c . <<<"$lines" || true)"
    FAIL_LINE=$lines
}
# What a store holds besides its lock file (.partial/lock: who holds it; kept, like any flock file):
# files and symlinks, one a line; nothing when the store is empty or missing.
store_files() {
    [[ -d $1 ]] || return 0
    find "$1" -mindepth 1 \( -type f -o -type l \) ! -path "$1/.partial/lock" -printf '%P\n' | sort
}

# ---------------------------------------------------------------------------------------------
section "getimage: image.sha256 does not match the image"
base=$WORK/sha
mkdir -p "$base"
write_config "$base" "$HTTP_URL" "$BRIDGE" "$NET" 1 "" "  sha256: $WRONG_SHA"
ap getimage
check_rc "getimage with a wrong image.sha256" 1
one_fail_line "getimage with a wrong image.sha256"
check_contains "the line names the expected sha256 (image.sha256)" "$WRONG_SHA" "$FAIL_LINE"
check_contains "the line names the image's real sha256" "$IMAGE_SHA" "$FAIL_LINE"
check_contains "the line names the image" "debian-bookworm-latest.img" "$FAIL_LINE"
check_contains "the image was downloaded (and then refused)" '"GET /debian-bookworm-latest.img HTTP/1.1" 200' \
    "$(<"$WORK/http.log")"
check_eq "nothing left in the store (but its lock file)" "" "$(store_files "$base/lib/images")"
check_not_contains "no OK line claims the image was verified" "Verifying image checksum" "$AP_ERR"

section "getimage: SHA256SUMS does not match the image"
base=$WORK/sums
mkdir -p "$base"
write_config "$base" "$HTTP_URL" "$BRIDGE" "$NET" 1
ap getimage
check_rc "getimage with a lying SHA256SUMS" 1
one_fail_line "getimage with a lying SHA256SUMS"
check_contains "the line names SHA256SUMS's sha256" "$WRONG_SHA" "$FAIL_LINE"
check_contains "the line names the image's real sha256" "$IMAGE_SHA" "$FAIL_LINE"
check_eq "nothing left in the store (but its lock file)" "" "$(store_files "$base/lib/images")"

# ---------------------------------------------------------------------------------------------
section "spawn before getimage"
base=$WORK/noimage
mkdir -p "$base"
write_config "$base" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 1
ap netup
check_rc "netup" 0
ap spawn
check_rc "spawn without an image in the store" 1
one_fail_line "spawn without an image"
check_eq "spawn printed nothing else" "$FAIL_LINE" "$AP_ERR"
check_contains "the line says to run getimage" "getimage" "$FAIL_LINE"
check_contains "the line names the image" "debian-bookworm-latest.img" "$FAIL_LINE"
check_eq "spawn mounted nothing and attached no loop device" "" \
    "$(leftovers "$base" | grep -v -e '^link: ' -e '^nftables: ' || true)"
check_not "spawn started no container" test -e "$base/lib/state/containers/aplspawn10.json"

# ---------------------------------------------------------------------------------------------
section "netdown while the fleet runs"
ap getimage
check_rc "getimage (file://)" 0
check_contains "store_files() sees a stored image" "debian-bookworm-latest.img" "$(store_files "$base/lib/images")"
ap --timeout 300 spawn
check_rc "spawn one container" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "the fleet for the netdown case"
ap pids
PID=$AP_OUT
ap netdown
check_rc "netdown while aplspawn10 runs" 1
one_fail_line "netdown while the fleet runs"
check_eq "netdown printed nothing else" "$FAIL_LINE" "$AP_ERR"
check_contains "the line names the running container" "aplspawn10" "$FAIL_LINE"
check_contains "the line says to stop first" "stop" "$FAIL_LINE"
check "bridge $BRIDGE is still there" ip link show dev "$BRIDGE"
check_contains "nftables table $TABLE is still there" "table ip $TABLE" "$(nft list tables 2>&1)"
check_eq "ip_forward is still on" 1 "$(</proc/sys/net/ipv4/ip_forward)"
check "the container still runs (leader $PID)" test -d "/proc/$PID"
ap status
check_rc "status: the fleet is still healthy" 0

ap stop
check_rc "stop" 0
ap netdown
check_rc "netdown after stop" 0
ap cleanup
check_rc "cleanup" 0

# ---------------------------------------------------------------------------------------------
section "a config with an unknown key"
base=$WORK/badconfig
mkdir -p "$base"
write_config "$base" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 1 "  amout: 3"
line=$(grep -n '^  amout: 3$' "$CONFIG" | cut -d: -f1)
ap netup
check_rc "netup with an unknown key" 2
check_eq "one line on stderr" 1 "$(grep -c . <<<"$AP_ERR" || true)"
check_contains "it names FILE:LINE and the key" "$CONFIG:$line: cntCommon.amout" "$AP_ERR"
check_not "nothing was done: no bridge" ip link show dev "$BRIDGE"

# ---------------------------------------------------------------------------------------------
section "nothing is left"
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$WORK")"
finish
