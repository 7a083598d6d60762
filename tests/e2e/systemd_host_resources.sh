#!/bin/bash
# End-to-end: resource limits (issue 14) on a host WITH systemd as PID 1 (the simulated host of
# tests/support/systemd-host; cgroup v1/hybrid like this machine). The same fleet as
# resources.sh: db {memory: 256M, cpus: 1, tasks: 4096}, web without limits. The limits are
# properties of db's unit (MemoryMax=, TasksMax=, AllowedCPUs=) that systemd writes to its
# memory and pids cgroups; spawn starts lxcfs inside the host (the package's service does not run
# in a container); inside db `free -m` says 256, nproc 1, Ansible's facts agree, web has the
# host's; the OOM test; status; teardown.
#
# The simulated host gets /dev/fuse (lxcfs) and its v1 memory and pids hierarchies writable
# (nspawn mounts them read-only in a container; a real systemd host has them writable), then
# systemd re-executes to take them up. Its systemd then makes cgroups in this machine's memory and
# pids hierarchies (machine.slice, system.slice, init.scope): those it leaves are removed when
# the test ends.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/systemd_host_resources.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
HOST_SCRIPT=$SOURCE_DIR/tests/support/systemd-host
HOST_DIR=$WORK/host
BASE=/run/aplspawn-e2e
BRIDGE=e2esdres0
NET=10.87.15
DB=db20
WEB=web10
MARKER_FILE=$WORK/start-marker
: >"$MARKER_FILE"

in_host() { # [--timeout SEC] CMD...
    local limit=60
    if [[ $1 == --timeout ]]; then
        limit=$2
        shift 2
    fi
    timeout --kill-after=10 "$limit" "$HOST_SCRIPT" exec --dir "$HOST_DIR" -- "$@"
}
stop_host() { "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 30; }
# The cgroups the simulated host's systemd made in this machine's memory and pids hierarchies
# during the test and left empty.
remove_host_cgroups() {
    local h tree
    for h in /sys/fs/cgroup/memory /sys/fs/cgroup/pids; do
        for tree in "$h"/*.slice "$h"/init.scope; do
            [[ -d $tree && $tree -nt $MARKER_FILE ]] || continue
            find "$tree" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done
    done
}
E2E_CLEANUP+=(remove_host_cgroups stop_host)

# ---------------------------------------------------------------------------------------------
section "boot the simulated systemd host with /dev/fuse and writable memory and pids hierarchies"
binds=(--bind /dev/fuse)
case $APLSPAWN in
"$SOURCE_DIR"/* | "$APLSPAWN_BUILD_DIR"/*) ;;
*) binds+=(--bind-ro "$(dirname "$APLSPAWN")") ;;
esac
rc=0
run_logged 150 "$HOST_SCRIPT" start --dir "$HOST_DIR" --timeout 120 "${binds[@]}" || rc=$?
check_eq "systemd-host start" 0 "$rc"
require_ok "booting the simulated host"
check "memory hierarchy writable" in_host mount -o remount,bind,rw /sys/fs/cgroup/memory
check "pids hierarchy writable" in_host mount -o remount,bind,rw /sys/fs/cgroup/pids
check "systemd re-executes" in_host systemctl daemon-reexec
wait_until 30 in_host systemctl is-system-running --quiet || true
check_match "the host's systemd runs" "^(running|degraded)\$" "$(in_host systemctl is-system-running 2>&1 || true)"
require_ok "the simulated host"

AP_PREFIX=("$HOST_SCRIPT" exec --dir "$HOST_DIR" -- env NO_COLOR=1)
mkdir -p "$WORK/cfg"
cat >"$WORK/cfg/aplspawn.yaml" <<EOC
bridge: {name: $BRIDGE, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_SD_RESOURCES}
path: {workingDirectory: $BASE/lib}
image: {os: debian, release: $IMAGE_RELEASE, repo: file://$IMAGE_REPO}
cntVariables: {userName: e2e, sshPublicKeyPath: $BASE/fleet_key.pub}
cntCommon:
  sshPrivateKeyPath: $BASE/fleet_key
  homePath: $BASE/machines
  readyTimeout: 180
  inventoryFile: $BASE/inventory.ini
groups:
  web:
    amount: 1
    ipRange: ["$NET.10", "$NET.20"]
  db:
    amount: 1
    ipRange: ["$NET.20", "$NET.30"]
    resources: {memory: 256M, cpus: 1, tasks: 4096}
EOC
check "config written into the host" in_host sh -c "mkdir -p $BASE && cat >$BASE/aplspawn.yaml" \
    <"$WORK/cfg/aplspawn.yaml"
CONFIG=$BASE/aplspawn.yaml
STATE=$BASE/lib/state
in_ct() { # IP CMD: over SSH from inside the host (the command as one word)
    in_host timeout 60 ssh -i "$BASE/fleet_key" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$STATE/known_hosts" -o ConnectTimeout=10 "e2e@$1" "$2" </dev/null
}
within_1pct() { python3 -c 'import sys; w, g = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(g - w) <= w / 100 else 1)' "$1" "$2"; }
HOST_MEM=$(in_host free -m | awk '/^Mem:/ {print $2}')
HOST_NPROC=$(in_host nproc)

# ---------------------------------------------------------------------------------------------
section "netup, getimage, spawn: limits as unit properties"
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage" 0
ap --timeout 400 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn"
check_contains "spawn started lxcfs in the host" "[ OK ] lxcfs at /var/lib/lxcfs shows each container its own /proc" "$AP_ERR"
UNIT=aplspawn-$DB.service
check_eq "$UNIT: MemoryMax" 268435456 "$(in_host systemctl show -p MemoryMax --value "$UNIT")"
check_eq "$UNIT: TasksMax" 4096 "$(in_host systemctl show -p TasksMax --value "$UNIT")"
check_eq "$UNIT: AllowedCPUs" 0 "$(in_host systemctl show -p AllowedCPUs --value "$UNIT")"
check_eq "systemd wrote memory.limit_in_bytes of the unit's cgroup" 268435456 \
    "$(in_host cat "/sys/fs/cgroup/memory/machine.slice/$UNIT/memory.limit_in_bytes")"
check_eq "systemd wrote pids.max of the unit's cgroup" 4096 \
    "$(in_host cat "/sys/fs/cgroup/pids/machine.slice/$UNIT/pids.max")"
check_eq "aplspawn-$WEB.service has no MemoryMax" infinity "$(in_host systemctl show -p MemoryMax --value "aplspawn-$WEB.service")"

section "what the guests see"
DB_MEM=$(in_ct "$NET.20" "free -m" | awk '/^Mem:/ {print $2}')
show "free -m total in db" "$DB_MEM"
check "db: free -m total within 1 % of 256" within_1pct 256 "$DB_MEM"
check_eq "db: nproc" 1 "$(in_ct "$NET.20" nproc)"
DB_UP=$(in_ct "$NET.20" "cut -d' ' -f1 /proc/uptime")
HOST_UP=$(cut -d' ' -f1 /proc/uptime)
check "db: its uptime is its own" python3 -c "import sys; sys.exit(0 if float('$DB_UP') < float('$HOST_UP') and float('$DB_UP') < 3600 else 1)"
WEB_MEM=$(in_ct "$NET.10" "free -m" | awk '/^Mem:/ {print $2}')
check "web: free -m total is the host's ($HOST_MEM)" within_1pct "$HOST_MEM" "$WEB_MEM"
check_eq "web: nproc is the host's" "$HOST_NPROC" "$(in_ct "$NET.10" nproc)"

ANSIBLE_VARS=(ANSIBLE_HOME=$BASE/ansible ANSIBLE_LOCAL_TEMP=$BASE/ansible/tmp
    ANSIBLE_SSH_CONTROL_PATH_DIR=$BASE/ansible/cp ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
    ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_CONFIG=$BASE/ansible/ansible.cfg ANSIBLE_TIMEOUT=30
    ANSIBLE_INVENTORY_ENABLED=ini)
in_host sh -c "mkdir -p $BASE/ansible && : >$BASE/ansible/ansible.cfg"
ap inventory
check_rc "inventory" 0
# debug does not gather facts: run setup through a one-task play instead
facts=$(in_host --timeout 240 env "${ANSIBLE_VARS[@]}" sh -c "cat >$BASE/facts.yml <<'Y'
- hosts: aplspawned
  gather_facts: true
  tasks:
    - debug: {msg: \"FACTS {{ inventory_hostname }} {{ ansible_memtotal_mb }} {{ ansible_processor_nproc }} {{ aplspawn_memory_mb | default('none') }} {{ aplspawn_cpus | default('none') }}\"}
Y
ansible-playbook -i $BASE/inventory.ini $BASE/facts.yml" 2>&1) || true
printf '%s\n' "$facts" | sed 's/^/      | /' >&2
DB_FACTS=$(sed -n "s/.*\"msg\": \"FACTS $DB \(.*\)\"/\1/p" <<<"$facts")
WEB_FACTS=$(sed -n "s/.*\"msg\": \"FACTS $WEB \(.*\)\"/\1/p" <<<"$facts")
check "db: ansible_memtotal_mb within 1 % of 256" within_1pct 256 "$(cut -d' ' -f1 <<<"$DB_FACTS")"
check_eq "db: ansible_processor_nproc 1, aplspawn_memory_mb 256, aplspawn_cpus 1" "1 256 1" "$(cut -d' ' -f2- <<<"$DB_FACTS")"
check "web: ansible_memtotal_mb is the host's" within_1pct "$HOST_MEM" "$(cut -d' ' -f1 <<<"$WEB_FACTS")"
check_eq "web: ansible_processor_nproc is the host's, no limit vars" "$HOST_NPROC none none" "$(cut -d' ' -f2- <<<"$WEB_FACTS")"

section "status, out of memory"
ap status
check_rc "status" 0
check_contains "oom check of db" "[ OK ] Checking out-of-memory kills in $DB" "$AP_ERR"
check_contains "lxcfs check of db" "[ OK ] Checking lxcfs answers for $DB" "$AP_ERR"
OOM_OUT=$(in_ct "$NET.20" "python3 -c 'b = bytearray(1 << 30); print(len(b))'; echo rc=\$?" 2>&1 || true)
show "the allocation in db" "$OOM_OUT"
check_match "a 1 GiB allocation in db is killed" "^rc=137\$" "$OOM_OUT"
check_eq "db's sshd still answers" e2e "$(in_ct "$NET.20" "id -un")"
check_eq "$UNIT is still active" active "$(in_host systemctl show -p ActiveState --value "$UNIT")"
check_eq "web is untouched" e2e "$(in_ct "$NET.10" "id -un")"
ap status --json
check_rc "status fails after the OOM kill" 1
check_eq "status --json: db's oom check failed, web's checks passed" "db20 oom False
web10 True" "$(python3 -c '
import json, sys
checks = json.load(sys.stdin)
print("db20 oom", [c["ok"] for c in checks if c["container"] == "db20" and c["check"] == "oom"][0])
print("web10", all(c["ok"] for c in checks if c["container"] == "web10"))' <<<"$AP_OUT")"

# ---------------------------------------------------------------------------------------------
section "stop, cleanup, netdown"
ap --timeout 120 stop
check_rc "stop" 0
check_not "db's unit cgroup is gone" in_host test -d "/sys/fs/cgroup/memory/machine.slice/$UNIT"
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
rc=0
run_logged 60 "$HOST_SCRIPT" stop --dir "$HOST_DIR" --timeout 30 || rc=$?
check_eq "systemd-host stop" 0 "$rc"
remove_host_cgroups
check_eq "no cgroup of the simulated host left in this machine's memory and pids hierarchies" "" \
    "$(find /sys/fs/cgroup/memory /sys/fs/cgroup/pids -maxdepth 1 -newer "$MARKER_FILE" \( -name '*.slice' -o -name init.scope \) 2>/dev/null)"
check_eq "nothing left in the test's namespace" "" "$(leftovers "$WORK")"
finish
