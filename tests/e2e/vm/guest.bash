# Shared by tests/e2e/vm/v2_*.bash, the tests inside the cgroup v2 VM of tests/e2e/cgroup_v2.sh:
# the e2e helpers of lib.bash, the fleet's config, SSH into a container, one MEASURED line per value
# the host's log shows. The VM is slow (qemu's TCG where KVM cannot run it), so the tests ask each
# container as few times as they can.
source "$APLSPAWN_SOURCE_DIR/tests/e2e/lib.bash"

e2e_init
IMAGE_REPO=$APLSPAWN_IMAGE_REPO
NET=10.87.16
DB=db20
CG=/sys/fs/cgroup
CONFIG=$WORK/aplspawn.yaml
STATE=$WORK/lib/state
cat >"$CONFIG" <<EOC
# end-to-end test cgroup v2 ($E2E_NAME): every path under $WORK
bridge: {name: v2res0, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_CGROUP_V2}
path: {workingDirectory: $WORK/lib}
image: {os: debian, release: bookworm, repo: $IMAGE_REPO}
cntVariables: {userName: e2e, sshPublicKeyPath: $WORK/fleet_key.pub}
cntCommon:
  sshPrivateKeyPath: $WORK/fleet_key
  homePath: $WORK/machines
  readyTimeout: 300
  inventoryFile: $WORK/inventory.ini
groups:
  db:
    amount: 1
    ipRange: ["$NET.20", "$NET.30"]
    resources: {memory: 256M, cpus: 1, tasks: 4096}
EOC
in_ct() { # IP CMD...
    local ip=$1
    shift
    timeout 300 ssh -i "$WORK/fleet_key" -o BatchMode=yes -o StrictHostKeyChecking=yes \
        -o UserKnownHostsFile="$STATE/known_hosts" -o ConnectTimeout=120 "e2e@$ip" "$@" </dev/null
}
within_1pct() { # WANT GOT
    python3 -c 'import sys; w, g = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(g - w) <= w / 100 else 1)' "$1" "$2"
}
state_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$STATE/containers/$1.json" "$2"; }
measured() { say "  MEASURED $1: $2"; }
VM_NPROC=$(nproc)
VM_MEM=$(free -m | awk '/^Mem:/ {print $2}')

check_v2_kernel() {
    check_eq "/sys/fs/cgroup is cgroup2" cgroup2fs "$(stat -f -c %T "$CG")"
    check_eq "no cgroup v1 hierarchy is mounted" "" "$(awk '$3 == "cgroup"' /proc/mounts)"
    local c
    for c in memory cpuset pids; do
        check_match "the root offers $c" "(^| )$c( |\$)" "$(<"$CG/cgroup.controllers")"
    done
    measured "VM CPUs, free -m total" "$VM_NPROC, $VM_MEM"
}

# netup, getimage and spawn of the fleet; the caller requires spawn's checks to pass.
bring_up_fleet() {
    section "netup, getimage, spawn"
    ap netup
    check_rc "netup" 0
    ap getimage
    check_rc "getimage" 0
    ap --timeout 600 spawn
    check_rc "spawn" 0
    ((AP_RC == 0)) || diagnose_fleet
}

# db's limits {memory: 256M, cpus: 1, tasks: 4096} as written in the cgroup DIR (WHAT names it).
check_limit_files() { # DIR WHAT
    local dir=$1 what=$2 f
    for f in memory.max memory.swap.max cpuset.cpus cpuset.cpus.effective pids.max; do
        measured "$what $f" "$(cat "$dir/$f" 2>&1)"
    done
    check_eq "memory.max of $what" 268435456 "$(cat "$dir/memory.max")"
    check_eq "memory.swap.max of $what" 0 "$(cat "$dir/memory.swap.max")"
    check_eq "cpuset.cpus of $what" 0 "$(cat "$dir/cpuset.cpus")"
    check_eq "cpuset.cpus.effective of $what" 0 "$(cat "$dir/cpuset.cpus.effective")"
    check_eq "pids.max of $what" 4096 "$(cat "$dir/pids.max")"
}

# Inside db, one SSH session: free -m total, nproc, cpuinfo's processors.
check_guest_views() {
    local views mem nproc cpus
    views=$(in_ct "$NET.20" "free -m | awk '/^Mem:/ {print \$2}'; nproc; grep -c ^processor /proc/cpuinfo" || true)
    read -r mem nproc cpus <<<"$(tr '\n' ' ' <<<"$views")"
    measured "db: free -m total, nproc, /proc/cpuinfo processors" "$mem, $nproc, $cpus"
    check "db: free -m total within 1 % of 256" within_1pct 256 "${mem:-0}"
    check_eq "db: nproc" 1 "$nproc"
    check_eq "db: /proc/cpuinfo lists one processor" 1 "$cpus"
}

# A 1 GiB allocation in db: killed there, db's systemd and sshd live on, status says so.
# MEMORY_EVENTS is db's memory.events file.
check_oom() { # MEMORY_EVENTS
    local out after
    # (Not the last command of the line: the shell would exec it, and ssh would report the
    # signal as its own exit 255.)
    out=$(in_ct "$NET.20" "python3 -c 'b = bytearray(1 << 30); print(len(b))'; echo rc=\$?" 2>&1 || true)
    measured "a 1 GiB allocation in db" "$(grep -m1 "^rc=" <<<"$out" || tail -1 <<<"$out")"
    check_match "a 1 GiB allocation in db is killed (SIGKILL: 128 + 9)" "^rc=137\$" "$out"
    measured "db memory.events" "$(tr '\n' ' ' <"$1")"
    check_match "the kernel counted it in db's memory.events" "^oom_kill [1-9]" "$(cat "$1")"
    after=$(in_ct "$NET.20" "id -un; systemctl is-system-running" 2>&1 || true)
    check_match "db's sshd still answers" "^e2e\$" "$after"
    check_match "db's systemd keeps running" "^(running|degraded)\$" "$after"
    # status's own SSH check has a fixed 10 s timeout, which a TCG VM can miss: only the oom check
    # counts here.
    ap status --json
    check_rc "status fails after the OOM kill" 1
    check_match "status names it" "\[ FAIL \] Checking out-of-memory kills in $DB: 1 process was killed by the kernel's OOM killer at the 256 MiB memory limit" "$AP_ERR"
    check_eq "status --json: db's oom check failed" "False" "$(python3 -c '
import json, sys
print([c["ok"] for c in json.load(sys.stdin) if c["container"] == "db20" and c["check"] == "oom"][0])' <<<"$AP_OUT" 2>&1)"
}
