#!/bin/bash
# End-to-end: the default images' trimmed boot (issue 16) keeps a test host whole, on both
# releases the recipe builds (bookworm, trixie). For each, a fleet of 2 (file:// store):
#   - systemd reaches "running" with no failed unit; the boot's cuts are in place (units with
#     ConditionNeedsUpdate= skipped, the boot profile's masks made, no credentials mount, bookworm's
#     sshd without a re-exec per connection);
#   - journald works: this boot's journal has systemd's "Startup finished", and later the
#     messages of a service a playbook started;
#   - an SSH login of the fleet's user is a logind session (remote, sshd, active), with its
#     runtime directory and a working `systemctl --user`;
#   - a playbook with become installs a local .deb (apt), enables, starts, restarts (a new main
#     process) and stops its service (systemd, service), and makes a user with a home (user);
#     afterwards the system is still "running" with no failed unit;
# then stop, cleanup, netdown, and nothing of the fleets is left.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/host_services.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
ansible_env
SVC=aplspawn-e2e-svc

# A local package file with a systemd unit, as a role would install one.
make_deb() {
    local d=$WORK/deb/root
    mkdir -p "$d/DEBIAN" "$d/usr/lib/systemd/system"
    cat >"$d/DEBIAN/control" <<EOF
Package: $SVC
Version: 1.0
Architecture: all
Maintainer: aplspawn tests <tests@aplspawn.invalid>
Description: aplspawn end-to-end test service
EOF
    cat >"$d/usr/lib/systemd/system/$SVC.service" <<EOF
[Unit]
Description=aplspawn end-to-end test service
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
EOF
    dpkg-deb --root-owner-group --build "$d" "$WORK/deb/$SVC.deb" >/dev/null
}
make_deb

# In the container of leader PID: a command's output (stderr too), bounded.
in_ct() { # PID CMD...
    local pid=$1
    shift
    timeout 30 nsenter -t "$pid" -a "$@" 2>&1 </dev/null
}

# The system of leader PID: "running", no failed unit (bounded wait for the boot to settle).
check_running() { # PID WHAT
    local pid=$1 what=$2
    check_eq "$what: systemctl is-system-running" running \
        "$(timeout 70 nsenter -t "$pid" -a systemctl is-system-running --wait 2>&1 </dev/null)"
    check_eq "$what: no failed unit" "" "$(in_ct "$pid" systemctl --failed --plain --no-legend)"
}

fleet() { # RELEASE NET
    local release=$1 net=$2
    local base=$WORK/$release bridge=e2ehost${release:0:1}0
    default_image "$release"
    mkdir -p "$base"
    write_config "$base" "file://$IMAGE_REPO" "$bridge" "$net" 2

    section "$release: netup, getimage, spawn 2"
    ap netup
    check_rc "netup" 0
    ap getimage
    check_rc "getimage (file://)" 0
    ap --timeout 300 spawn
    check_rc "spawn" 0
    ((AP_RC == 0)) || diagnose_fleet
    require_ok "$release: spawn"
    ap pids
    local -a pids=($AP_OUT)
    check_eq "pids: one per container" 2 "${#pids[@]}"

    section "$release: the boot: running, no failed unit, the cuts in place, journald"
    local pid i
    for pid in "${pids[@]}"; do
        check_running "$pid" "container $pid after the boot"
        check_contains "container $pid runs Debian $release" "VERSION_CODENAME=$release" \
            "$(in_ct "$pid" cat /etc/os-release)"
        # /etc/.updated from the image build: nothing for ConditionNeedsUpdate= to redo.
        check_eq "container $pid: systemd-sysusers.service skipped (ConditionNeedsUpdate)" \
            "ConditionResult=no" "$(in_ct "$pid" systemctl show -p ConditionResult systemd-sysusers.service)"
        # The boot profile (full, the default): a generator and a unit that do nothing here.
        check_eq "container $pid: the getty generator is masked" /dev/null \
            "$(readlink "/proc/$pid/root/etc/systemd/system-generators/systemd-getty-generator")"
        check_eq "container $pid: console-getty.service is masked" masked \
            "$(in_ct "$pid" systemctl is-enabled console-getty.service)"
        # The image's drop-ins: no credentials file system mounted for systemd-tmpfiles-setup
        # (or trixie's journald); on bookworm sshd keeps its forked child per connection (-r).
        check_eq "container $pid: no credentials mount" "" \
            "$(in_ct "$pid" findmnt -rn -o TARGET | grep '^/run/credentials' || true)"
        if [[ $release == bookworm ]]; then
            check_match "container $pid: sshd runs without re-exec (-r)" '^sshd: /usr/sbin/sshd -D -r' \
                "$(in_ct "$pid" ps -o args= -C sshd)"
        fi
        check_match "container $pid: journalctl shows this boot (systemd's Startup finished)" \
            '^Startup finished in ' "$(in_ct "$pid" journalctl -b -q --no-pager -o cat)"
    done
    require_ok "$release: the boot"

    section "$release: an SSH login of the fleet's user is a logind session"
    local key=$base/fleet_key session
    for i in 0 1; do
        session=$(timeout 30 ssh -F none -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no \
            -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "e2e@$net.1$i" \
            'loginctl show-session "$XDG_SESSION_ID" -p Name -p Remote -p Service -p State -p Type;
             echo "runtime=$XDG_RUNTIME_DIR"; test -d "$XDG_RUNTIME_DIR" && echo runtime-dir-ok;
             echo "user-manager=$(systemctl --user is-system-running 2>&1)";
             loginctl list-sessions --no-legend' 2>&1 </dev/null) || true
        for want in Name=e2e Remote=yes Service=sshd State=active "runtime=/run/user/" runtime-dir-ok \
            user-manager=running; do
            check_contains "login to $net.1$i: $want" "$want" "$session"
        done
        check_match "login to $net.1$i: loginctl list-sessions has it" "^ *[c0-9]+ +[0-9]+ +e2e " "$session"
    done
    require_ok "$release: logind sessions"

    section "$release: a playbook: apt (local .deb), systemd, service, user"
    ap inventory
    check_rc "inventory" 0
    local play rc=0
    play=$(timeout 600 env ANSIBLE_INVENTORY_ENABLED=ini ansible-playbook -i "$base/inventory.ini" \
        -e "deb=$WORK/deb/$SVC.deb" -e "svc=$SVC" "$E2E_DIR/host-services.yml" 2>&1) || rc=$?
    printf '%s\n' "$play" | sed 's/^/      | /' >&2
    check_eq "ansible-playbook exit code" 0 "$rc"
    local name
    for name in aplspawn10 aplspawn11; do
        check_match "play recap of $name: no failures" \
            "$name +: ok=[1-9][0-9]* +changed=[1-9][0-9]* +unreachable=0 +failed=0" "$play"
    done
    for pid in "${pids[@]}"; do
        check_contains "container $pid: the package is installed" "Status: install ok installed" \
            "$(in_ct "$pid" dpkg -s "$SVC")"
        check_eq "container $pid: its unit is enabled" enabled "$(in_ct "$pid" systemctl is-enabled "$SVC")"
        check_eq "container $pid: and stopped, as the play left it" inactive \
            "$(in_ct "$pid" systemctl is-active "$SVC")"
        check_eq "container $pid: journald has its two starts" 2 \
            "$(in_ct "$pid" journalctl -b -q --no-pager -o cat -u "$SVC" | grep -c '^Started ' || true)"
        check_match "container $pid: user e2ealice exists" '^uid=[0-9]+\(e2ealice\)' "$(in_ct "$pid" id e2ealice)"
        check "container $pid: e2ealice has a home" test -d "/proc/$pid/root/home/e2ealice"
        check_eq "container $pid: facts: $release, systemd" "$release systemd" \
            "$(cat "/proc/$pid/root/root/aplspawn-e2e-facts" 2>&1)"
        check_running "$pid" "container $pid after the play"
    done
    require_ok "$release: the playbook"

    section "$release: stop, cleanup, netdown"
    ap --timeout 120 stop
    check_rc "stop" 0
    ap cleanup
    check_rc "cleanup" 0
    ap netdown
    check_rc "netdown" 0
    check_eq "nothing of the $release fleet is left" "" "$(leftovers "$base")"
}

fleet bookworm 10.87.21
fleet trixie 10.87.22

section "nothing of the fleets is left"
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$WORK")"
finish
