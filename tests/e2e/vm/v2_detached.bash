#!/bin/bash
# Inside the cgroup v2 VM of tests/e2e/cgroup_v2.sh, PID 1 tests/e2e/vm/guest-init (no systemd):
# the detached launcher on a bare cgroup v2 host. The cgroup2 root enables no controller for its
# children: spawn must enable memory, cpuset and pids down to the container's own cgroup and write
# memory.max, memory.swap.max, cpuset.cpus and pids.max there before nspawn starts. db
# {memory: 256M, cpus: 1, tasks: 4096} sees 256 MiB and 1 CPU; a 1 GiB allocation in db is
# OOM-killed inside while its systemd and sshd live on; status reports the kill; stop removes the
# cgroup (with the payload and supervisor cgroups nspawn made below it on v2).
set -euo pipefail
E2E_NAME=cgroup_v2-detached
source "$APLSPAWN_SOURCE_DIR/tests/e2e/vm/guest.bash"

has_controllers() { # FILE : memory, cpuset and pids are in it
    local c
    for c in memory cpuset pids; do [[ " $(<"$1") " == *" $c "* ]] || return 1; done
}

section "a bare cgroup v2 kernel: no systemd, nothing enabled below the root"
check_v2_kernel
check_eq "the root enables no controller for its children" "" "$(<"$CG/cgroup.subtree_control")"
check_eq "PID 1 is guest-init, not systemd" guest-init "$(basename "$(tr '\0' '\n' </proc/1/cmdline | sed -n 2p)")"
check_not "no systemd runs" test -d /run/systemd/system

bring_up_fleet
require_ok "spawn"
DB_CG=$(state_field "$DB" cgroup)
DB_LEADER=$(state_field "$DB" leader_pid)
measured "db's cgroup" "$DB_CG"
check "spawn enabled memory, cpuset and pids in the root's subtree_control" has_controllers "$CG/cgroup.subtree_control"
check "... and in ${DB_CG%/*}'s" has_controllers "$CG/${DB_CG%/*}/cgroup.subtree_control"
check_limit_files "$CG/$DB_CG" "db's cgroup"
measured "db's PID 1 cgroup" "$(cat "/proc/$DB_LEADER/cgroup")"
check_match "db's PID 1 is in db's cgroup (or below it)" "^0::/$DB_CG(/.*)?\$" "$(cat "/proc/$DB_LEADER/cgroup")"
check_eq "db's PID 1 may run on CPU 0 only" 0 "$(awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$DB_LEADER/status")"

section "what db sees"
check_guest_views

section "out of memory stays inside db"
check_oom "$CG/$DB_CG/memory.events"
check "db's PID 1 is the one it had" test -d "/proc/$DB_LEADER"

section "stop: db's cgroup goes"
ap stop
check_rc "stop" 0
check_not "db's cgroup is gone" test -d "$CG/$DB_CG"

section "in a cgroup namespace whose root holds processes (a container without systemd)"
# aplspawn runs in cgroup busy, made the root of its own cgroup namespace and cgroup2 mount, as
# in a Docker container: cgroup v2 refuses to enable controllers there (EBUSY).
mkdir -p "$CG/busy"
AP_PREFIX=(bash -c 'echo $$ >/sys/fs/cgroup/busy/cgroup.procs &&
    exec unshare --cgroup --mount --propagation private -- bash -c "umount -l /sys/fs/cgroup &&
        mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"\$@\"" inner "$@"' outer)
ap --timeout 300 spawn
AP_PREFIX=()
check_rc "spawn" 1
check_contains "the error names the cgroup and the rule" \
    "enable +cpuset +memory +pids in /sys/fs/cgroup/cgroup.subtree_control: the cgroup has processes of its own" "$AP_ERR"
check_contains "... and says what to do" "write each pid to /sys/fs/cgroup/init/cgroup.procs" "$AP_ERR"
ap stop
check_rc "stop after it" 0
check "nothing is left in busy" rmdir "$CG/busy"
finish
