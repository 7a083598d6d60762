#!/bin/bash
# End-to-end: resource limits the guest sees (issue 14), driven like a user on this host (no
# systemd, cgroup v1/hybrid: the detached launcher). db {memory: 256M, cpus: 1, tasks: 4096} and
# web without limits, one spawn: spawn starts lxcfs (none runs), the limits are in db's own
# memory, cpuset and pids cgroups before it starts; inside db (over SSH: a process in the
# container's cgroups) `free -m` says 256 within 1 %, nproc 1, its uptime is its own; Ansible's
# setup says ansible_memtotal_mb ~ 256 and ansible_processor_nproc 1 on db, the host's on web; the
# inventory has aplspawn_memory_mb and aplspawn_cpus; status checks lxcfs and OOM kills. A
# process in db that allocates 1 GiB is killed there; db's systemd and sshd keep running, web and
# the host are untouched, status fails naming the OOM kill (--json too). A second spawn uses the
# running lxcfs. Teardown leaves no cgroup, mount, link or table. A bad value is exit 2; without
# lxcfs installed a group with resources is refused (naming the package), one without runs.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/resources.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image bookworm
ansible_env
BRIDGE=e2eres0
NET=10.87.14
DB=db20
WEB=web10

write_resources_config() { # DB_RESOURCES
    CONFIG=$WORK/aplspawn.yaml
    cat >"$CONFIG" <<EOC
# end-to-end test resources: every path under $WORK
bridge: {name: $BRIDGE, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_RESOURCES}
path: {workingDirectory: $WORK/lib}
image: {os: debian, release: bookworm, repo: $IMAGE_REPO}
cntVariables: {userName: e2e, sshPublicKeyPath: $WORK/fleet_key.pub}
cntCommon:
  sshPrivateKeyPath: $WORK/fleet_key
  homePath: $WORK/machines
  readyTimeout: 180
  inventoryFile: $WORK/inventory.ini
groups:
  web:
    amount: 1
    ipRange: ["$NET.10", "$NET.20"]
  db:
    amount: 1
    ipRange: ["$NET.20", "$NET.30"]
    resources: $1
EOC
}
write_resources_config "{memory: 256M, cpus: 1, tasks: 4096}"
STATE=$WORK/lib/state
# A command inside a container over SSH: its processes are in the container's cgroups, which is
# what lxcfs answers for (nsenter would stay in ours). ssh joins the words into one shell line:
# quote a command with blanks in its arguments as one word.
in_ct() { # IP CMD...
    local ip=$1
    shift
    timeout 60 ssh -i "$WORK/fleet_key" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$STATE/known_hosts" -o ConnectTimeout=10 "e2e@$ip" "$@" </dev/null
}
# A fact of one host from `ansible -m setup` output (one JSON document per host).
fact() { # HOST FACT
    python3 - "$1" "$2" "$WORK/setup.out" <<'PY'
import json, re, sys
host, fact, text = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
m = re.search(r'^' + re.escape(host) + r' \| SUCCESS => (\{.*?^\})', text, re.S | re.M)
print(json.loads(m.group(1))["ansible_facts"][fact] if m else "missing")
PY
}
within_1pct() { # WANT GOT
    python3 -c 'import sys; w, g = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(g - w) <= w / 100 else 1)' "$1" "$2"
}
HOST_MEM=$(free -m | awk '/^Mem:/ {print $2}')
HOST_NPROC=$(nproc)

# ---------------------------------------------------------------------------------------------
section "a bad value is refused before anything changes"
write_resources_config "{memory: 256M, cpus: 999}"
ap spawn
check_rc "cpus beyond the host's CPUs" 2
check_match "the message names file:line, key and value" "aplspawn.yaml:[0-9]+: groups\.db\.resources\.cpus: 999 is out of range 1\.\.$HOST_NPROC" "$AP_ERR"
check "nothing was made" test ! -e "$WORK/lib"
write_resources_config "{memory: 256M, cpus: 1, tasks: 4096}"

# ---------------------------------------------------------------------------------------------
section "netup, getimage, spawn: lxcfs started, limits in db's own cgroups"
check_not "no lxcfs runs before spawn" grep -q ' /var/lib/lxcfs fuse.lxcfs ' /proc/mounts
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage" 0

# PATH without lxcfs: a group with resources is refused before anything changes; one without
# runs with the host's /proc and a note.
NO_LXCFS=$WORK/path-without-lxcfs
mkdir -p "$NO_LXCFS"
for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
    [[ -d $d ]] && find "$d" -maxdepth 1 -mindepth 1 \( -type f -o -type l \) -exec ln -sf -t "$NO_LXCFS" {} +
done
rm -f "$NO_LXCFS/lxcfs"
PATH=$NO_LXCFS ap spawn db
check_rc "spawn of db without lxcfs installed" 1
check_match "one line names lxcfs and its package" "resources \(groups\.NAME\.resources\) need lxcfs: .*lxcfs.*Debian package lxcfs" "$AP_ERR"
check "no container was started" test ! -e "$STATE/containers/$DB.json"
check_not "no lxcfs was started" grep -q ' /var/lib/lxcfs fuse.lxcfs ' /proc/mounts
PATH=$NO_LXCFS ap --timeout 400 spawn web
check_rc "spawn of web (no resources) without lxcfs installed" 0
check_contains "a note says so" "[ INFO ] lxcfs is not installed (Debian package lxcfs): containers see the host's memory, CPUs and uptime in /proc" "$AP_ERR"
check_eq "web's /proc/meminfo is the kernel's" "" "$(in_ct "$NET.10" "grep ' /proc/meminfo ' /proc/self/mountinfo")"
ap stop web
check_rc "stop web" 0

ap --timeout 400 spawn
check_rc "spawn" 0
((AP_RC == 0)) || diagnose_fleet
check_contains "spawn started lxcfs" "[ OK ] lxcfs at /var/lib/lxcfs shows each container its own /proc" "$AP_ERR"
check_not_contains "... it was not already running" "lxcfs at /var/lib/lxcfs shows each container its own /proc (already so)" "$AP_ERR"
check "lxcfs is mounted" grep -q ' /var/lib/lxcfs fuse.lxcfs ' /proc/mounts
check "lxcfs is recorded in the state directory" test -s "$STATE/lxcfs.json"
require_ok "spawn"
DB_CG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cgroup"])' "$STATE/containers/$DB.json")
WEB_CG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cgroup"])' "$STATE/containers/$WEB.json")
show "db's cgroup" "$DB_CG"
check_eq "memory.limit_in_bytes of db" 268435456 "$(cat "/sys/fs/cgroup/memory/$DB_CG/memory.limit_in_bytes")"
check_eq "cpuset.cpus of db" 0 "$(cat "/sys/fs/cgroup/cpuset/$DB_CG/cpuset.cpus")"
check_eq "pids.max of db" 4096 "$(cat "/sys/fs/cgroup/pids/$DB_CG/pids.max")"
DB_LEADER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["leader_pid"])' "$STATE/containers/$DB.json")
check_match "db's PID 1 is in that memory cgroup" "^[0-9]+:memory:/$DB_CG\$" "$(cat "/proc/$DB_LEADER/cgroup")"
WEB_LEADER=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["leader_pid"])' "$STATE/containers/$WEB.json")
check_not "web has no memory cgroup of its own" test -d "/sys/fs/cgroup/memory/$WEB_CG"

# ---------------------------------------------------------------------------------------------
section "what the guests see"
DB_MEM=$(in_ct "$NET.20" free -m | awk '/^Mem:/ {print $2}')
show "free -m total in db" "$DB_MEM"
check "db: free -m total within 1 % of 256" within_1pct 256 "$DB_MEM"
check_eq "db: nproc" 1 "$(in_ct "$NET.20" nproc)"
check_eq "db: /proc/cpuinfo lists one processor" 1 "$(in_ct "$NET.20" grep -c ^processor /proc/cpuinfo)"
DB_UP=$(in_ct "$NET.20" "cut -d' ' -f1 /proc/uptime")
HOST_UP=$(cut -d' ' -f1 /proc/uptime)
show "uptime: db, host" "$DB_UP $HOST_UP"
check "db: its uptime is its own (smaller than the host's)" python3 -c "import sys; sys.exit(0 if float('$DB_UP') < float('$HOST_UP') and float('$DB_UP') < 3600 else 1)"
check_match "db: /proc/meminfo, uptime, cpuinfo, stat, loadavg, swaps and diskstats are lxcfs's" \
    "^7\$" "$(in_ct "$NET.20" "grep -cE ' /proc/(meminfo|uptime|cpuinfo|stat|loadavg|swaps|diskstats) .* - fuse.lxcfs ' /proc/self/mountinfo")"
WEB_MEM=$(in_ct "$NET.10" free -m | awk '/^Mem:/ {print $2}')
check "web: free -m total is the host's ($HOST_MEM)" within_1pct "$HOST_MEM" "$WEB_MEM"
check_eq "web: nproc is the host's" "$HOST_NPROC" "$(in_ct "$NET.10" nproc)"
WEB_UP=$(in_ct "$NET.10" "cut -d' ' -f1 /proc/uptime")
check "web: lxcfs gives it its own uptime too" python3 -c "import sys; sys.exit(0 if float('$WEB_UP') < float('$HOST_UP') and float('$WEB_UP') < 3600 else 1)"

section "Ansible: setup facts and the inventory's host vars"
ap inventory
check_rc "inventory" 0
ans aplspawned -m setup
check_eq "ansible setup on both" "$DB
$WEB" "$(ansible_successes "$ANS")"
printf '%s\n' "$ANS" >"$WORK/setup.out"
check "db: ansible_memtotal_mb within 1 % of 256" within_1pct 256 "$(fact "$DB" ansible_memtotal_mb)"
check_eq "db: ansible_processor_nproc" 1 "$(fact "$DB" ansible_processor_nproc)"
show "db: ansible_processor_vcpus (cpuinfo's topology)" "$(fact "$DB" ansible_processor_vcpus)"
check "web: ansible_memtotal_mb is the host's" within_1pct "$HOST_MEM" "$(fact "$WEB" ansible_memtotal_mb)"
check_eq "web: ansible_processor_nproc is the host's" "$HOST_NPROC" "$(fact "$WEB" ansible_processor_nproc)"
ans aplspawned -m debug -a "msg={{ aplspawn_memory_mb | default('none') }}/{{ aplspawn_cpus | default('none') }}/{{ (aplspawn_memory_mb | default(0)) is number }}"
check_match "db: aplspawn_memory_mb 256, aplspawn_cpus 1, a number" "\"msg\": \"256/1/True\"" "$(grep -A2 "^$DB " <<<"$ANS")"
check_match "web: no limit vars" "\"msg\": \"none/none/True\"" "$(grep -A2 "^$WEB " <<<"$ANS")"

section "status: lxcfs answers, no OOM kill yet"
ap status -v
check_rc "status" 0
check_contains "lxcfs check of db" "[ OK ] Checking lxcfs answers for $DB" "$AP_ERR"
check_contains "lxcfs check of web" "[ OK ] Checking lxcfs answers for $WEB" "$AP_ERR"
check_contains "oom check of db" "[ OK ] Checking out-of-memory kills in $DB" "$AP_ERR"
check_not_contains "no oom check for web (no memory limit)" "out-of-memory kills in $WEB" "$AP_ERR"

# ---------------------------------------------------------------------------------------------
section "out of memory stays inside db"
# (Not the last command of the line: the shell would exec it, and ssh would report the signal as
# its own exit 255.)
OOM_OUT=$(in_ct "$NET.20" "python3 -c 'b = bytearray(1 << 30); print(len(b))'; echo rc=\$?" 2>&1 || true)
show "the allocation in db" "$OOM_OUT"
check_match "a 1 GiB allocation in db is killed (SIGKILL: 128 + 9)" "^rc=137\$" "$OOM_OUT"
check_match "the kernel counted it in db's memory cgroup" "^oom_kill [1-9]" "$(cat "/sys/fs/cgroup/memory/$DB_CG/memory.oom_control")"
check_eq "db's sshd still answers" e2e "$(in_ct "$NET.20" id -un)"
check_match "db's systemd keeps running" "^(running|degraded)\$" "$(in_ct "$NET.20" systemctl is-system-running || true)"
check_eq "web is untouched" e2e "$(in_ct "$NET.10" id -un)"
check "web's PID 1 is the one it had" test "$WEB_LEADER" = "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["leader_pid"])' "$STATE/containers/$WEB.json")" -a -d "/proc/$WEB_LEADER"
check "db's PID 1 is the one it had" test -d "/proc/$DB_LEADER"
check "lxcfs still answers on the host" head -1 /var/lib/lxcfs/proc/meminfo
ap status
check_rc "status fails after the OOM kill" 1
check_match "status names it" "\[ FAIL \] Checking out-of-memory kills in $DB: 1 process was killed by the kernel's OOM killer at the 256 MiB memory limit" "$AP_ERR"
ap status --json
check_eq "status --json: db's oom check failed, web's checks passed" "db20 oom False
web10 True" "$(python3 -c '
import json, sys
checks = json.load(sys.stdin)
print("db20 oom", [c["ok"] for c in checks if c["container"] == "db20" and c["check"] == "oom"][0])
print("web10", all(c["ok"] for c in checks if c["container"] == "web10"))' <<<"$AP_OUT")"

# ---------------------------------------------------------------------------------------------
section "stop, spawn again: the running lxcfs is used; teardown"
ap stop
check_rc "stop" 0
check_not "db's memory cgroup is gone" test -d "/sys/fs/cgroup/memory/$DB_CG"
check_not "db's cpuset cgroup is gone" test -d "/sys/fs/cgroup/cpuset/$DB_CG"
check_not "db's pids cgroup is gone" test -d "/sys/fs/cgroup/pids/$DB_CG"
ap --timeout 400 spawn
check_rc "spawn again" 0
check_contains "the running lxcfs is used" "lxcfs at /var/lib/lxcfs shows each container its own /proc (already so)" "$AP_ERR"
DB_MEM=$(in_ct "$NET.20" free -m | awk '/^Mem:/ {print $2}')
check "db again: free -m total within 1 % of 256" within_1pct 256 "$DB_MEM"
ap status
check_rc "status after the restart (a new cgroup: no OOM kill)" 0
DB_CG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cgroup"])' "$STATE/containers/$DB.json")
ap stop
check_rc "stop" 0
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
check_eq "no cgroup of db left" "" "$(ls -d /sys/fs/cgroup/{memory,cpuset,pids}/"$DB_CG" 2>/dev/null || true)"
check_eq "nothing left" "" "$(leftovers "$WORK")"

finish
