#!/bin/bash
# Inside the cgroup v2 VM of tests/e2e/cgroup_v2.sh with systemd as PID 1 (run by
# tests/e2e/vm/guest-systemd as the kernel command line's systemd.run= service): the systemd
# launcher on a unified systemd host. db {memory: 256M, cpus: 1, tasks: 4096} runs as the unit
# aplspawn-db20.service with MemoryMax=, MemorySwapMax=0, AllowedCPUs= and TasksMax=, which
# systemd writes to memory.max, memory.swap.max, cpuset.cpus and pids.max of the unit's cgroup
# (AllowedCPUs= takes effect on v2 only); db sees 256 MiB and 1 CPU; the OOM kill stays inside
# and status reports it; stop removes the unit.
set -euo pipefail
source "$APLSPAWN_SOURCE_DIR/tests/e2e/vm/guest.bash"

UNIT=aplspawn-$DB.service
UNIT_CG=$CG/machine.slice/$UNIT

section "a cgroup v2 kernel with systemd as PID 1"
check_v2_kernel
check_eq "PID 1 is systemd" systemd "$(cat /proc/1/comm)"
check "systemd runs (/run/systemd/system)" test -d /run/systemd/system

bring_up_fleet
check_not_contains "the systemd launcher started db (no detached fallback)" "containers are started detached" "$AP_ERR"
require_ok "spawn"
check_match "machinectl lists db" "^$DB " "$(machinectl list --no-legend 2>&1)"
for p in MemoryMax MemorySwapMax AllowedCPUs TasksMax; do
    measured "$UNIT $p" "$(systemctl show -p "$p" --value "$UNIT")"
done
check_eq "$UNIT: MemoryMax" 268435456 "$(systemctl show -p MemoryMax --value "$UNIT")"
check_eq "$UNIT: MemorySwapMax" 0 "$(systemctl show -p MemorySwapMax --value "$UNIT")"
check_eq "$UNIT: AllowedCPUs" 0 "$(systemctl show -p AllowedCPUs --value "$UNIT")"
check_eq "$UNIT: TasksMax" 4096 "$(systemctl show -p TasksMax --value "$UNIT")"
check_limit_files "$UNIT_CG" "the unit's cgroup (systemd wrote it)"
DB_LEADER=$(state_field "$DB" leader_pid)
measured "db's PID 1 cgroup" "$(cat "/proc/$DB_LEADER/cgroup")"
check_match "db's PID 1 is in the unit's cgroup" "^0::/machine.slice/$UNIT(/.*)?\$" "$(cat "/proc/$DB_LEADER/cgroup")"
check_eq "db's PID 1 may run on CPU 0 only" 0 "$(awk '/^Cpus_allowed_list:/ {print $2}' "/proc/$DB_LEADER/status")"

section "what db sees"
check_guest_views

section "out of memory stays inside db"
check_oom "$UNIT_CG/memory.events"

section "stop: the unit goes"
ap stop
check_rc "stop" 0
check_not "$UNIT is gone" systemctl is-active --quiet "$UNIT"
finish
