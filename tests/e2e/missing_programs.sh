#!/bin/bash
# End-to-end: a program aplspawn runs is missing or cannot run (issue 17). Each case is one line
# naming the program and its Debian package, exit 1, and no crash, in every operation:
#   - spawn with a PATH that lacks systemd-nspawn, ssh or ssh-keygen: refused before anything
#     changes (nothing mounted, no key made);
#   - spawn with a PATH that lacks visudo (the image has sudo): the container's FAIL line;
#   - status of a running fleet with a PATH that lacks ssh, and with an ssh that cannot run:
#     every container's ssh check fails with that line, its other checks pass, the process does
#     not die (it was "terminate called ... aplspawn::Error", exit 134, from a parallel worker);
#   - every other operation with a PATH without any of them: exit 0 or 1, never a crash.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/missing_programs.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
BRIDGE=e2eprog0
NET=10.87.5
base=$WORK/f
mkdir -p "$base"
write_config "$base" "file://$IMAGE_REPO" "$BRIDGE" "$NET" 2
NAMES=(aplspawn10 aplspawn11)

# A directory of links to every program of the usual PATH except the ones named: PATH=it lacks
# exactly those.
path_without() { # NAME...
    local dir=$WORK/path-without-$(IFS=-; echo "$*") d n
    mkdir -p "$dir"
    # Lowest precedence first: a later directory's program of the same name replaces the link.
    for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
        [[ -d $d ]] && find "$d" -maxdepth 1 -mindepth 1 \( -type f -o -type l \) \
            -exec ln -sf -t "$dir" {} +
    done
    for n; do rm -f "$dir/$n"; done
    echo "$dir"
}
# The last `ap`'s FAIL lines, one a line.
fails() { fail_lines; }
no_crash() { # DESC : the last `ap` ended by itself, with 0 or 1, and printed no C++ runtime abort
    check_not_contains "$1: no std::terminate" "terminate called" "$AP_ERR"
    if [[ $AP_RC == 0 || $AP_RC == 1 ]]; then pass "$1: exit $AP_RC"; else fail "$1: exit $AP_RC"; fi
}

# ---------------------------------------------------------------------------------------------
section "setup: netup, getimage"
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage" 0
require_ok "setup"

# ---------------------------------------------------------------------------------------------
for case in "systemd-nspawn systemd-container" "ssh openssh-client" "ssh-keygen openssh-client"; do
    read -r prog pkg <<<"$case"
    section "spawn with a PATH that lacks $prog"
    PATH=$(path_without "$prog") ap spawn
    check_rc "spawn without $prog" 1
    check_eq "one FAIL line naming $prog and $pkg" \
        "‣ [ FAIL ] $prog is not installed: no $prog in PATH (Debian package $pkg)" "$(fails)"
    no_crash "spawn without $prog"
    check_eq "nothing mounted" 0 "$(grep -c " $base/" /proc/mounts || true)"
    check_not "no fleet key made" test -e "$base/fleet_key"
done

# ---------------------------------------------------------------------------------------------
section "spawn with a PATH that lacks visudo (the image has sudo)"
PATH=$(path_without visudo) ap --timeout 300 spawn
check_rc "spawn without visudo" 1
no_crash "spawn without visudo"
for name in "${NAMES[@]}"; do
    check_match "$name's FAIL line names visudo and its package sudo" \
        "\[ FAIL \] Provisioning $name .*visudo is not installed: no visudo in PATH \(Debian package sudo\)" "$AP_ERR"
done
ap pids
check_rc "no container was started" 1

# ---------------------------------------------------------------------------------------------
section "spawn with the full PATH"
ap --timeout 300 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn"

# ---------------------------------------------------------------------------------------------
section "status of the running fleet with a PATH that lacks ssh"
PATH=$(path_without ssh) ap status
check_rc "status without ssh" 1
no_crash "status without ssh"
check_eq "exactly one FAIL line per container" 2 "$(fails | grep -c . || true)"
for name in "${NAMES[@]}"; do
    ip=10.87.5.$((${name#aplspawn}))
    check_contains "$name's ssh check names ssh and openssh-client" \
        "‣ [ FAIL ] Checking ssh connection to $ip: ssh is not installed: no ssh in PATH (Debian package openssh-client)" "$AP_ERR"
done
check_eq "the other checks pass: 4 per container" 8 \
    "$(grep -cE '\[ OK \] Checking (machinectl status|overlayFS mount|leader process|ping to)' <<<"$AP_ERR" || true)"
PATH=$(path_without ssh) ap status --json
check_rc "status --json without ssh" 1
check_eq "--json: both ssh checks failed, with the line as detail" \
    "aplspawn10 ssh is not installed: no ssh in PATH (Debian package openssh-client)
aplspawn11 ssh is not installed: no ssh in PATH (Debian package openssh-client)" \
    "$(python3 -c 'import json, sys
for c in json.load(sys.stdin):
    if c["check"] == "ssh": print(c["container"], c["detail"] if not c["ok"] else "ok")' <<<"$AP_OUT" 2>&1)"

section "status with an ssh that cannot run"
broken=$(path_without ssh)
printf '\177garbage: no ELF, no #!\n' >"$broken/ssh"
chmod 0755 "$broken/ssh"
PATH=$broken ap status
check_rc "status with a broken ssh" 1
no_crash "status with a broken ssh"
check_eq "exactly one FAIL line per container" 2 "$(fails | grep -c . || true)"
check_match "the line says ssh cannot run and to reinstall openssh-client" \
    "\[ FAIL \] Checking ssh connection to .*: ssh \($broken/ssh\) cannot run: Exec format error \(reinstall the Debian package openssh-client\)" "$AP_ERR"

section "status with the full PATH"
ap status
check_rc "status" 0

# ---------------------------------------------------------------------------------------------
section "every other operation with a PATH without any program aplspawn runs: no crash"
none=$(path_without systemd-nspawn ssh ssh-keygen visudo mksquashfs lxcfs journalctl)
for op in names pids inventory status netup getimage; do
    PATH=$none ap "$op"
    no_crash "$op without the programs"
done
PATH=$none ap --timeout 120 stop
check_rc "stop runs no program: works without them" 0
PATH=$none ap cleanup
check_rc "cleanup without the programs" 0
PATH=$none ap netdown
check_rc "netdown without the programs" 0
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$base")"
finish
