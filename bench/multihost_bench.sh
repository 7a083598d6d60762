#!/bin/bash
# bench/multihost_bench.sh: one fleet over two hosts against the same fleet on one (issue 18).
# Two simulated hosts on one datacenter bridge (tests/e2e/multihost.bash: booted systemd hosts,
# each in its own network namespace, on this one machine), aplspawn run inside them directly
# (the playbook's netup/spawn with --host, without Ansible's own cost):
#  - spawn: a fleet of 4 (web x2, db x2) spread over hostA and hostB (both spawns at once, as the
#    playbook runs them) against the same 4 on hostA alone; the variants alternate run by run,
#    each spawn followed by stop and cleanup; wall time from start to every container answering
#    SSH (the later of the two hosts).
#  - latency: ping (50 echo requests, 20 ms apart) between two containers on one host and between
#    two containers on different hosts (through the VXLAN), from inside the containers.
#  - TCP throughput: iperf3 (5 s, one stream) in the containers' network namespaces, on one host
#    and across the VXLAN, and between the two hosts themselves (the underlay, no VXLAN).
# Both hosts share this machine's CPUs and kernel: the two-host spawn shows what the fabric and a
# second host's aplspawn cost, not what a second machine would add, and throughput is CPU-bound.
#
#   tests/lib/run-in-ns bench/multihost_bench.sh [RUNS]        (as root; default 3)
#   APLSPAWN_BINARY=build/aplspawn (default)
set -euo pipefail
export APLSPAWN_BINARY=${APLSPAWN_BINARY:-$(cd "$(dirname "$0")/.." && pwd)/build/aplspawn}
source "$(dirname "${BASH_SOURCE[0]}")/../tests/e2e/lib.bash"
source "$E2E_DIR/multihost.bash"
RUNS=${1:-3}
e2e_init
default_image
command -v iperf3 >/dev/null || { say "iperf3 missing (scripts/install-deps installs it)"; exit 1; }
mh_datacenter hostA hostB
((E2E_FAILED == 0)) || finish

BASE=/run/aplspawn-mhbench # in each host (its own tmpfs)
NET=10.88.13
# One fleet file per variant: the same groups; `two` places db on hostB, `one` has hostA alone.
fleet_file() { # VARIANT
    local db_host=hostB
    [[ $1 == one ]] && db_host=hostA
    cat <<EOF
bridge: {name: mhbbr0, address: $NET.1, netPrefix: 24}
ipt: {chainName: MHBENCH}
path: {workingDirectory: $BASE/lib}
image: {os: debian, release: $IMAGE_RELEASE, repo: "file://$IMAGE_REPO"}
cntVariables: {userName: bench, sshPublicKeyPath: $BASE/fleet_key.pub}
cntCommon: {sshPrivateKeyPath: $BASE/fleet_key, homePath: $BASE/machines, readyTimeout: 120}
groups:
  web: {amount: 2, ipRange: [$NET.10, $NET.19]}
  db: {amount: 2, ipRange: [$NET.20, $NET.29]}
hosts:
$(if [[ $db_host == hostA ]]; then
        printf '  hostA: {address: %s, groups: [web, db]}\n' "${HOST_IP[hostA]}"
    else
        printf '  hostA: {address: %s, groups: [web]}\n  hostB: {address: %s, groups: [db]}\n' "${HOST_IP[hostA]}" "${HOST_IP[hostB]}"
    fi)
EOF
}
ssh-keygen -q -t ed25519 -N '' -C mhbench -f "$WORK/fleet_key"
for h in hostA hostB; do
    in_host "$h" mkdir -p "$BASE"
    for f in fleet_key fleet_key.pub; do in_host "$h" sh -c "cat >$BASE/$f && chmod 600 $BASE/$f" <"$WORK/$f"; done
    for v in one two; do fleet_file "$v" | in_host "$h" sh -c "cat >$BASE/$v.yaml"; done
done
# aplspawn in host H for fleet file V: "OUT ERR" of the run under $WORK/H.*; returns its status.
apl() { # HOST VARIANT [--timeout S] OP...
    local h=$1 v=$2 limit=300
    shift 2
    [[ $1 == --timeout ]] && { limit=$2; shift 2; }
    in_host "$h" --timeout "$limit" env NO_COLOR=1 "$APLSPAWN" -c "$BASE/$v.yaml" --host "$h" -o "$@" \
        >"$WORK/$h.out" 2>"$WORK/$h.err"
}
must() { "$@" || { say "FAILED: $*"; sed 's/^/    | /' "$WORK/$2.err" >&2; exit 1; }; }
for h in hostA hostB; do must apl "$h" two --timeout 900 getimage; done
now_ms() { date +%s%3N; }

declare -A wall
for ((r = 1; r <= RUNS; r++)); do
    for v in two one; do
        hosts=(hostA)
        [[ $v == two ]] && hosts=(hostA hostB)
        for h in "${hosts[@]}"; do must apl "$h" "$v" netup; done
        t0=$(now_ms)
        pids=()
        for h in "${hosts[@]}"; do
            apl "$h" "$v" --timeout 600 spawn &
            pids+=($!)
        done
        rc=0
        for p in "${pids[@]}"; do wait "$p" || rc=1; done
        t1=$(now_ms)
        ((rc == 0)) || { for h in "${hosts[@]}"; do sed 's/^/    | /' "$WORK/$h.err" >&2; done; say "spawn ($v) failed"; exit 1; }
        wall[$v]+="$((t1 - t0)) "
        say "run $r, fleet of 4 on ${#hosts[@]} host(s): spawn in $((t1 - t0)) ms"
        if ((r == RUNS)) && [[ $v == two ]]; then
            # ---- the network, measured on the two-host fleet of the last run ----
            leader() { in_host "$1" machinectl show "$2" -p Leader --value; }
            ping_avg() { # HOST CONTAINER ADDRESS: average rtt in ms
                in_host "$1" --timeout 60 nsenter -t "$(leader "$1" "$2")" -a ping -q -c 50 -i 0.02 -W 2 "$3" |
                    sed -n 's|^rtt .* = [0-9.]*/\([0-9.]*\)/.*|\1|p'
            }
            LAT_SAME=$(ping_avg hostA web10 $NET.11)
            LAT_CROSS=$(ping_avg hostA web10 $NET.20)
            LAT_UNDER=$(in_host hostA --timeout 60 nsenter -t "$(leader hostA web10)" -a ping -q -c 50 -i 0.02 -W 2 "${HOST_IP[hostB]}" |
                sed -n 's|^rtt .* = [0-9.]*/\([0-9.]*\)/.*|\1|p')
            iperf() { # SERVER_HOST SERVER_NETNS|- CLIENT_HOST CLIENT_NETNS|- ADDRESS: Gbit/s
                local sh=$1 sn=$2 ch=$3 cn=$4 addr=$5 sx=() cx=()
                [[ $sn != - ]] && sx=(ip netns exec "$sn")
                [[ $cn != - ]] && cx=(ip netns exec "$cn")
                in_host "$sh" "${sx[@]}" iperf3 -s -1 -D -p 5201
                sleep 0.5
                in_host "$ch" --timeout 60 "${cx[@]}" iperf3 -c "$addr" -p 5201 -t 5 -J |
                    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 2))'
            }
            TP_SAME=$(iperf hostA aplspawn-web11 hostA aplspawn-web10 $NET.11)
            TP_CROSS=$(iperf hostB aplspawn-db20 hostA aplspawn-web10 $NET.20)
            TP_UNDER=$(iperf hostB - hostA - "${HOST_IP[hostB]}")
            MTU=$(in_host hostA ip netns exec aplspawn-web10 cat /sys/class/net/host0/mtu)
            say "latency (avg ms): same host $LAT_SAME, across $LAT_CROSS, to the other host $LAT_UNDER"
            say "TCP (Gbit/s): same host $TP_SAME, across $TP_CROSS, host to host $TP_UNDER; container MTU $MTU"
        fi
        for h in "${hosts[@]}"; do
            must apl "$h" "$v" --timeout 300 stop
            must apl "$h" "$v" cleanup
            must apl "$h" "$v" netdown
        done
    done
done
python3 - "${wall[two]}" "${wall[one]}" "$LAT_SAME" "$LAT_CROSS" "$LAT_UNDER" "$TP_SAME" "$TP_CROSS" "$TP_UNDER" "$MTU" <<'PY'
import statistics as st, sys
two, one = ([float(x) for x in a.split()] for a in sys.argv[1:3])
ls, lc, lu, ts, tc, tu, mtu = sys.argv[3:10]
print("| fleet of 4 (web x2, db x2) | over two hosts | on one host | ratio |")
print("| --- | --- | --- | --- |")
print(f"| spawn wall, median s | {st.median(two)/1000:.2f} | {st.median(one)/1000:.2f} | {st.median(two)/st.median(one):.2f} x |")
print(f"| samples (ms) | {' '.join(str(int(x)) for x in two)} | {' '.join(str(int(x)) for x in one)} | |")
print()
print(f"| between containers (MTU {mtu}) | one host | across the VXLAN | host to host (underlay) |")
print("| --- | --- | --- | --- |")
print(f"| ping rtt, avg of 50, ms | {ls} | {lc} | {lu} (container to the other host) |")
print(f"| TCP, iperf3 5 s one stream, Gbit/s | {ts} | {tc} | {tu} |")
PY
finish
