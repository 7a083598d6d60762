#!/bin/bash
# bench/resources_bench.sh: what lxcfs costs a spawn (issue 14). With lxcfs installed, every
# container gets its files bound over /proc (seven more mounts) and the first spawn starts the
# daemon; this compares spawn of a fleet of N with lxcfs (started by the spawn itself: the
# first-spawn case) against the same fleet with lxcfs out of PATH (as before issue 14), the two
# variants alternating in one run, each spawn followed by stop and cleanup. Wall time and the CPU
# time of aplspawn and everything it started (the containers' boots included) per spawn.
#
#   tests/lib/run-in-ns bench/resources_bench.sh [N] [RUNS]     (as root; default 10 and 3)
#   APLSPAWN_BINARY=build/aplspawn (default)
set -euo pipefail
export APLSPAWN_BINARY=${APLSPAWN_BINARY:-$(cd "$(dirname "$0")/.." && pwd)/build/aplspawn}
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"
N=${1:-10}
RUNS=${2:-3}
e2e_init
default_image
write_config "$WORK" "file://$IMAGE_REPO" benchres0 10.87.16 "$N"
NO_LXCFS=$WORK/path-without-lxcfs
mkdir -p "$NO_LXCFS"
for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
    [[ -d $d ]] && find "$d" -maxdepth 1 -mindepth 1 \( -type f -o -type l \) -exec ln -sf -t "$NO_LXCFS" {} +
done
rm -f "$NO_LXCFS/lxcfs"
ap netup
ap getimage
((AP_RC == 0)) || exit 1

# One spawn: "WALL_MS CPU_S" into $WORK/sample (CPU: user + system of aplspawn and its waited-for children,
# plus the containers' cgroups' usage read at the end; lxcfs's own CPU when this spawn started it).
spawn_once() { # VARIANT
    local path=$PATH t0 t1 cpu0 cpu1
    [[ $1 == without-lxcfs ]] && path=$NO_LXCFS
    # the whole namespace's CPU: every process of this test is in it, /proc/stat of the machine is
    # not; sum utime+stime of every live process plus the reaped children of this shell
    cpu0=$(ns_cpu)
    t0=$(date +%s%N)
    PATH=$path ap --timeout 600 spawn
    t1=$(date +%s%N)
    ((AP_RC == 0)) || { say "spawn failed"; exit 1; }
    cpu1=$(ns_cpu)
    printf '%s %s\n' "$(( (t1 - t0) / 1000000 ))" "$(python3 -c "print(round(($cpu1 - $cpu0) / 100, 2))")" >"$WORK/sample"
    ap stop
    ap cleanup
    # lxcfs started by this spawn: stopped, so that every with-lxcfs spawn starts it again
    if [[ -s $WORK/lib/state/lxcfs.json ]]; then
        kill "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$WORK/lib/state/lxcfs.json")" 2>/dev/null || true
        wait_until 10 sh -c '! grep -q " /var/lib/lxcfs fuse.lxcfs " /proc/mounts' || umount -l /var/lib/lxcfs
        rm -f "$WORK/lib/state/lxcfs.json"
    fi
}
# CPU ticks (utime + stime + cutime + cstime) of every process in this pid namespace.
ns_cpu() {
    awk '{ s += $14 + $15 + $16 + $17 } END { print s }' /proc/[0-9]*/stat 2>/dev/null
}

declare -A wall cpu
for ((r = 1; r <= RUNS; r++)); do
    for v in with-lxcfs without-lxcfs; do
        spawn_once "$v"
        read -r w c <"$WORK/sample"
        wall[$v]+="$w "
        cpu[$v]+="$c "
        say "run $r $v: spawn of $N in $w ms, $c CPU-s"
    done
done
ap netdown
python3 - "$N" "${wall[with-lxcfs]}" "${wall[without-lxcfs]}" "${cpu[with-lxcfs]}" "${cpu[without-lxcfs]}" <<'PY'
import statistics as st, sys
n = sys.argv[1]
ww, wo, cw, co = ([float(x) for x in a.split()] for a in sys.argv[2:6])
print(f"| N = {n} | with lxcfs | without | ratio |")
print("| --- | --- | --- | --- |")
print(f"| spawn wall, median s | {st.median(ww)/1000:.2f} | {st.median(wo)/1000:.2f} | {st.median(ww)/st.median(wo):.2f} x |")
print(f"| CPU-s per spawn, median | {st.median(cw):.2f} | {st.median(co):.2f} | {st.median(cw)/st.median(co):.2f} x |")
print(f"| samples (wall ms) | {' '.join(str(int(x)) for x in ww)} | {' '.join(str(int(x)) for x in wo)} | |")
PY
finish
