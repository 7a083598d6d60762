#!/bin/bash
# End-to-end: one fleet over two hosts (issue 18), aplspawn's own part of it. Two simulated hosts,
# each a network and mount namespace of its own on a "datacenter" bridge (dc0, 192.168.250.0/24),
# run aplspawn with the same file: hostA runs web ×2, hostB db ×1; both groups are also on an
# isolated backend network. netup joins each host's bridges over VXLAN (one VNI per bridge, no
# learning, one flood entry per peer, MTU 50 below the underlay's); the fleet is one L2 segment:
# web10 reaches db30 by name and address, full-size packets cross unfragmented, each container
# leaves through its own host's NAT, hostA logs into db30 with strict host keys, and Ansible on the
# "controller" (this namespace, a route per host) pings every container over the merged
# known_hosts. Refusals name the culprit; status checks the fabric; netdown removes exactly it.
# (ansible/fleet.yml drives the same over SSH: tests/e2e/multihost.sh.)
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/fabric.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image bookworm
ansible_env
NET=10.88.1
BACK=10.88.2
DC=192.168.250

CONFIG=$WORK/fleet.yaml
cat >"$CONFIG" <<EOC
# end-to-end test fabric: one fleet on two hosts
bridge: {name: fab0, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_FABRIC}
path: {workingDirectory: $WORK/host/lib}
image: {os: debian, release: bookworm, repo: $IMAGE_REPO}
cntVariables: {userName: e2e, sshPublicKeyPath: $WORK/fleet_key.pub}
cntCommon:
  sshPrivateKeyPath: $WORK/fleet_key
  homePath: $WORK/host/machines
  readyTimeout: 180
networks:
  backend: {bridge: fabbk0, address: $BACK.1, netPrefix: 24}
groups:
  web:
    amount: 2
    ipRange: ["$NET.10", "$NET.20"]
    networks: {backend: ["$BACK.10", "$BACK.20"]}
  db:
    amount: 1
    ipRange: ["$NET.30", "$NET.40"]
    networks: {backend: ["$BACK.30", "$BACK.40"]}
hosts:
  hostA: {address: $DC.11, groups: [web]}
  hostB: {address: $DC.12, groups: [db]}
EOC
ssh-keygen -q -t ed25519 -N '' -C fabric-e2e -f "$WORK/fleet_key"

# ---- two hosts on a datacenter bridge ----
declare -A HOST_PID
start_host() { # NAME ADDRESS
    local name=$1 address=$2 pid
    # Its own network and mount namespace: its own links, rules, state and container roots (a
    # tmpfs at $WORK/host), the test's files (the config, the key, the image store) still visible.
    unshare --net --mount --propagation private bash -c \
        "mount -t tmpfs -o mode=0755 tmpfs '$WORK/host' && mount -t tmpfs tmpfs /run/netns 2>/dev/null; exec sleep infinity" &
    pid=$!
    HOST_PID[$name]=$pid
    # Ready once its namespaces are made and its tmpfs mounted: it is `sleep` then.
    wait_until 10 grep -qx sleep "/proc/$pid/comm" || { say "host $name did not start"; exit 1; }
    ip link add "dc-$name" type veth peer name eth0 netns "$pid"
    ip link set "dc-$name" master dc0 up
    on "$name" ip addr add "$address/24" dev eth0
    on "$name" ip link set eth0 up
    on "$name" ip link set lo up
}
on() { # HOST CMD... : runs CMD in the host's namespaces
    local name=$1
    shift
    nsenter -t "${HOST_PID[$name]}" -n -m -- "$@"
}
stop_hosts() {
    # A run that stopped half-way: each host's fleet stopped first, so its lower layers (mounts in
    # the host's own mount namespace, which the generic cleanup cannot see) release their loop
    # devices; then the hosts go.
    local h
    for h in "${!HOST_PID[@]}"; do
        timeout 120 nsenter -t "${HOST_PID[$h]}" -n -m -- "$APLSPAWN" -c "$CONFIG" -o stop >/dev/null 2>&1
        kill "${HOST_PID[$h]}" 2>/dev/null
    done
}
E2E_CLEANUP+=(stop_hosts)
mkdir -p "$WORK/host" /run/netns
ip link add dc0 type bridge
ip addr add "$DC.1/24" dev dc0
ip link set dc0 up
ip link set lo up
start_host hostA "$DC.11"
start_host hostB "$DC.12"
wait_until 10 on hostA ping -c1 -W1 "$DC.12" || true

# Runs aplspawn as host NAME: `as_host NAME OP [ARGS...]` (AP_* as ap sets them).
as_host() {
    local name=$1
    shift
    AP_PREFIX=(nsenter -t "${HOST_PID[$name]}" -n -m --)
    ap "$@"
    AP_PREFIX=()
}
# Runs CMD inside container NAME on HOST (its leader's namespaces).
in_ct() { # HOST NAME CMD...
    local host=$1 name=$2 pid
    shift 2
    pid=$(on "$host" "$APLSPAWN" -c "$CONFIG" -o pids "$name" 2>/dev/null)
    [[ $pid =~ ^[0-9]+$ ]] || { echo "no leader for $name on $host" >&2; return 1; }
    timeout 30 nsenter -t "$pid" -a -- "$@"
}

section "refusals name the culprit"
ap --timeout 30 spawn
check_rc "spawn on a machine that is neither host" 2
check_contains "and names the hosts" "none of fleet.yaml's hosts (hostA $DC.11, hostB $DC.12): give --host NAME" "$AP_ERR"
ap --timeout 30 spawn --host hostC
check_rc "--host naming no host of the file" 2
check_contains "names it and the hosts" "--host hostC: fleet.yaml has no host of that name (hosts: hostA, hostB)" "$AP_ERR"
as_host hostA spawn db
check_rc "hostA asked to spawn hostB's group" 2
check_contains "says where it runs" "db: group db runs on host hostB ($DC.12), this is host hostA: run it there" "$AP_ERR"
ap names --json
check_rc "names on the controller" 0
check_eq "names lists both hosts' containers with their host" \
    "web10 hostA,web11 hostA,db30 hostB" \
    "$(python3 -c 'import json,sys; print(",".join(c["name"]+" "+c["host"] for c in json.load(sys.stdin)))' <<<"$AP_OUT")"

section "netup on each host: its own gateway, the bridges joined over VXLAN"
for h in hostA hostB; do
    as_host "$h" netup
    check_rc "netup on $h" 0
done
check_match "hostA says what it joins" "Joining bridge fab0 to 1 other host over VXLAN apvx001092 \(id 4242, port 4789\)" "$AP_ERR"
check_contains "hostA's bridge has .1" "inet $NET.1/24" "$(on hostA ip -4 addr show fab0)"
check_contains "hostB's bridge has .2" "inet $NET.2/24" "$(on hostB ip -4 addr show fab0)"
check_contains "hostB's backend bridge has its .2" "inet $BACK.2/24" "$(on hostB ip -4 addr show fabbk0)"
vx=$(on hostA ip -d link show apvx001092)
check_match "the main bridge's VXLAN: id 4242, local, port 4789, nolearning" \
    "vxlan id 4242 local $DC.11 .*dstport 4789 .*nolearning" "$vx"
check_match "it is a port of fab0, MTU 1450" "mtu 1450 .*master fab0" "$vx"
check_match "the backend network's VXLAN has the next id" "vxlan id 4243 local $DC.11" "$(on hostA ip -d link show apvx001093)"
check_contains "hostA floods to hostB" "00:00:00:00:00:00 dst $DC.12" "$(on hostA bridge fdb show dev apvx001092)"
check_contains "hostB floods to hostA" "00:00:00:00:00:00 dst $DC.11" "$(on hostB bridge fdb show dev apvx001093)"
check_match "bridge MTU 1450" "mtu 1450" "$(on hostB ip link show fab0)"
check "hostA reaches hostB's bridge address across the fabric" on hostA ping -c1 -W2 "$NET.2"
check "and on the backend network" on hostA ping -c1 -W2 "$BACK.2"
as_host hostA netup
check_rc "netup again" 0
check_contains "changes nothing" "Joining bridge fab0 to 1 other host over VXLAN apvx001092 (id 4242, port 4789) (already so)" "$AP_ERR"
require_ok "the fabric"

section "spawn on each host"
for h in hostA hostB; do
    as_host "$h" getimage
    check_rc "getimage on $h" 0
    as_host "$h" spawn
    check_rc "spawn on $h" 0
done
require_ok "spawn"
running() { # HOST: the names of the containers with a leader there
    on "$1" "$APLSPAWN" -c "$CONFIG" -o pids --json 2>/dev/null |
        python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin) if c["pid"]))'
}
check_eq "hostA runs web10 and web11 only" "web10 web11" "$(running hostA)"
check_eq "hostB runs db30 only" "db30" "$(running hostB)"

section "one network: by name and address, full-size packets, each host's own NAT"
check "web10 pings db30 by name (every host's containers in /etc/hosts)" in_ct hostA web10 ping -c1 -W2 db30
check "web10 pings db30 on the backend network" in_ct hostA web10 ping -c1 -W2 "$BACK.30"
check_match "web10's host0 has the fabric's MTU" "mtu 1450" "$(in_ct hostA web10 ip link show host0)"
check "a 1450-byte packet with DF set crosses whole" in_ct hostA web10 ping -c1 -W2 -M do -s 1422 "$NET.30"
check_not "a larger one is refused at the sender, not lost" in_ct hostA web10 ping -c1 -W2 -M do -s 1423 "$NET.30"
check_contains "db30 routes through its own host (.2)" "default via $NET.2" "$(in_ct hostB db30 ip route)"
python3 -m http.server --bind "$DC.1" --directory "$WORK" 8731 >"$WORK/outside.log" 2>&1 &
OUTSIDE_PID=$!
stop_outside() { kill "$OUTSIDE_PID"; }
E2E_CLEANUP+=(stop_outside)
wait_until 10 curl -fsS -o /dev/null "http://$DC.1:8731/" || true
fetch='import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=5).read()'
check "web10 reaches the datacenter" in_ct hostA web10 python3 -c "$fetch" "http://$DC.1:8731/fleet.yaml"
check "db30 reaches the datacenter" in_ct hostB db30 python3 -c "$fetch" "http://$DC.1:8731/fleet_key.pub"
check_match "web10 arrived as hostA (its host's NAT)" "^$DC.11 .*GET /fleet.yaml" "$(<"$WORK/outside.log")"
check_match "db30 arrived as hostB" "^$DC.12 .*GET /fleet_key.pub" "$(<"$WORK/outside.log")"

section "host keys: each host learnt its own, one known_hosts for the fleet"
on hostA "$APLSPAWN" -c "$CONFIG" -o known-hosts >"$WORK/known_hosts" 2>"$WORK/kh.err" || true
on hostB "$APLSPAWN" -c "$CONFIG" -o known-hosts >>"$WORK/known_hosts" 2>>"$WORK/kh.err" || true
show "known-hosts' errors" "$(<"$WORK/kh.err")"
check_eq "known-hosts: two keys per container by address and name, each from its own host" \
    "$NET.10,web10 $NET.10,web10 $NET.11,web11 $NET.11,web11 $NET.30,db30 $NET.30,db30" \
    "$(awk '{print $1}' "$WORK/known_hosts" | sort | xargs)"
check "hostA logs into db30 across the fabric with strict host keys" \
    on hostA timeout 30 ssh -i "$WORK/fleet_key" -o UserKnownHostsFile="$WORK/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes "e2e@$NET.30" hostname
check "and by name (the name is in the merged known_hosts too)" \
    on hostA timeout 30 ssh -i "$WORK/fleet_key" -o UserKnownHostsFile="$WORK/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o HostKeyAlias=db30 "e2e@$NET.30" hostname
# The controller: a route per host for that host's containers' addresses.
for a in 10 11; do ip route add "$NET.$a/32" via "$DC.11"; done
ip route add "$NET.30/32" via "$DC.12"
ap inventory --direct --known-hosts "$WORK/known_hosts"
check_rc "inventory on the controller" 0
printf '%s\n' "$AP_OUT" >"$WORK/inventory.ini"
check_contains "each container names its host" "aplspawn_host=hostB" "$AP_OUT"
check_contains "strict host keys against the merged file" "UserKnownHostsFile=$WORK/known_hosts" "$AP_OUT"
ans all -m ping
check_eq "Ansible on the controller reaches all three" "db30 web10 web11" "$(ansible_successes "$ANS" | xargs)"
ap inventory
check_contains "without --direct: through the container's host" "ProxyJump=$DC.12" "$AP_OUT"

section "status checks the fabric"
as_host hostA status
check_rc "status on hostA" 0
check_contains "with the fabric's check" "Checking if bridge fab0 reaches the other hosts over VXLAN apvx001092" "$AP_ERR"
on hostA bridge fdb del 00:00:00:00:00:00 dev apvx001092 dst "$DC.12"
as_host hostA status
check_rc "status without the flood entry" 1
check_contains "names it" "apvx001092 does not flood to $DC.12" "$AP_ERR"
as_host hostA netup
check_rc "netup repairs it" 0
check "web10 reaches db30 again" in_ct hostA web10 ping -c1 -W2 "$NET.30"

section "the way back: exactly what each host made"
for h in hostA hostB; do
    as_host "$h" stop
    check_rc "stop on $h" 0
    as_host "$h" cleanup
    check_rc "cleanup on $h" 0
    as_host "$h" netdown
    check_rc "netdown on $h" 0
    check_contains "netdown on $h removes its VXLAN" "Removing VXLAN apvx001092" "$AP_ERR"
    check_eq "$h: only lo and eth0 left" "eth0 lo" "$(on "$h" ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | sort | xargs)"
    check_eq "$h: no nftables table" "" "$(on "$h" nft list tables)"
done
finish
