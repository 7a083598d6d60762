#!/bin/bash
# End-to-end: several networks per container (issue 13), driven like a user. web ×2 on the main
# network only; db ×1 and cache ×1 on the main network and an isolated backend network, each
# added to its group in a few lines. One netup, one spawn; Ansible sees db's two interfaces; db and
# cache talk over backend; web cannot reach backend addresses; nothing on backend reaches the
# outside through it (the main network still does, NATed); status checks every interface; stop
# and spawn of db alone; teardown leaves no link, namespace, rule or mount.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/networks.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image bookworm
serve_http "$IMAGE_REPO" 8714
ansible_env
BRIDGE=e2enet0
NET=10.87.4
BACK=10.87.5
OUTSIDE=198.51.100

CONFIG=$WORK/aplspawn.yaml
cat >"$CONFIG" <<EOC
# end-to-end test networks: every path under $WORK
bridge: {name: $BRIDGE, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_NETWORKS}
path: {workingDirectory: $WORK/lib}
image: {os: debian, release: bookworm, repo: $HTTP_URL}
cntVariables: {userName: e2e, sshPublicKeyPath: $WORK/fleet_key.pub}
cntCommon:
  sshPrivateKeyPath: $WORK/fleet_key
  homePath: $WORK/machines
  readyTimeout: 180
  inventoryFile: $WORK/inventory.ini
networks:
  backend:
    bridge: e2ebk0
    address: $BACK.1
    netPrefix: 24
groups:
  web:
    amount: 2
    ipRange: ["$NET.10", "$NET.20"]
  db:
    amount: 1
    ipRange: ["$NET.30", "$NET.40"]
    networks:
      backend: ["$BACK.30", "$BACK.40"]
  cache:
    amount: 1
    ipRange: ["$NET.50", "$NET.60"]
    networks:
      backend: ["$BACK.50", "$BACK.60"]
EOC
# "The outside": a namespace beyond a link of the host's own, as the internet is to a real host.
make_outside() {
    ip netns add e2e-outside
    ip link add vo-h type veth peer name vo-o netns e2e-outside
    ip addr add "$OUTSIDE.1/24" dev vo-h
    ip link set vo-h up
    ip -n e2e-outside addr add "$OUTSIDE.2/24" dev vo-o
    ip -n e2e-outside link set vo-o up
}
remove_outside() { ip netns delete e2e-outside 2>/dev/null || true; }
E2E_CLEANUP+=(remove_outside)

# ---------------------------------------------------------------------------------------------
section "netup: two bridges, backend isolated; getimage; one spawn"
ap netup
check_rc "netup" 0
check_contains "the backend bridge" "[ OK ] Configuring bridge e2ebk0 (network backend, isolated)" "$AP_ERR"
table=$(nft list table ip aplspawn_E2E_NETWORKS 2>&1)
check_contains "isolation: nothing forwarded out of backend" 'iifname "e2ebk0" oifname != "e2ebk0" drop' "$table"
check_contains "isolation: nothing forwarded into backend" 'oifname "e2ebk0" iifname != "e2ebk0" drop' "$table"
ap getimage
check_rc "getimage" 0
ap --timeout 400 spawn
check_rc "spawn of web, db and cache" 0
((AP_RC == 0)) || diagnose_fleet
check_match "db30's network, set up before it started" "Setting up the network of db30: host0 $NET\.30/24 via $NET\.1, backend $BACK\.30/24" "$AP_ERR"
require_ok "spawn"
ap list
check_match "list: db30 with its backend address" "^db30 +db +$NET\.30 .* running .* backend=$BACK\.30$" "$AP_OUT"
check_match "list: web10 on the main network only" "^web10 +web +$NET\.10 .* running .* -$" "$AP_OUT"
ap status --json
check_rc "status" 0
checks=$(python3 -c 'import json,sys
for c in json.load(sys.stdin):
    if c["container"] in ("db30", "web10"): print(c["container"], c["check"], c["ok"])' <<<"$AP_OUT")
check_contains "status checks db30's backend interface" "db30 interface.backend True" "$checks"
check_contains "status pings db30 on backend" "db30 ping.backend True" "$checks"
check_contains "status checks web10's host0" "web10 interface.host0 True" "$checks"
check_not_contains "web10 has no backend checks" "web10 interface.backend" "$checks"
ap inventory
check_rc "inventory" 0
check_match "inventory: db30's backend address in aplspawn_networks" "^db30 ansible_host=$NET\.30 .*aplspawn_networks=\"\{'backend': '$BACK\.30'\}\"" "$AP_OUT"
require_ok "the fleet"

# ---------------------------------------------------------------------------------------------
section "Ansible: db's interfaces, db and cache over backend"
ans db30 -m ansible.builtin.setup -a "gather_subset=network"
check_eq "ansible setup on db30: exit 0" 0 "$ANS_RC"
interfaces=$(python3 - "$ANS" <<'PY'
import json, re, sys
m = re.search(r'^db30 \| SUCCESS => (\{.*?^\})', sys.argv[1], re.S | re.M)
facts = json.loads(m.group(1))["ansible_facts"] if m else {}
print(" ".join(sorted(facts.get("ansible_interfaces", []))))
print(facts.get("ansible_backend", {}).get("ipv4", {}).get("address", "-"))
print(facts.get("ansible_default_ipv4", {}).get("interface", "-"))
PY
)
check_eq "ansible_interfaces on db30: backend, host0, lo; backend's address; default via host0" "backend host0 lo
$BACK.30
host0" "$interfaces"
ans db -m ansible.builtin.debug -a "var=aplspawn_networks.backend"
check_contains "aplspawn_networks reaches the play" "\"aplspawn_networks.backend\": \"$BACK.30\"" "$ANS"
ans db30 -m ansible.builtin.command -a "ping -c 1 -W 3 $BACK.50"
check_eq "db30 pings cache50 over backend" 0 "$ANS_RC"
# TCP too: cache50's sshd answers on its backend address.
ans db30 -m ansible.builtin.shell -a "timeout 5 bash -c 'exec 3<>/dev/tcp/$BACK.50/22; head -c 7 <&3'"
check_contains "db30 reaches cache50's sshd over backend" "SSH-2.0" "$ANS"
ans cache50 -m ansible.builtin.command -a "ping -c 1 -W 3 $BACK.30"
check_eq "cache50 pings db30 over backend" 0 "$ANS_RC"
require_ok "backend between db and cache"

# ---------------------------------------------------------------------------------------------
section "isolation: web cannot reach backend, backend is no way out"
ans web10 -m ansible.builtin.command -a "ping -c 1 -W 2 $NET.30"
check_eq "web10 reaches db30 on the main network" 0 "$ANS_RC"
for ip in "$BACK.30" "$BACK.50"; do
    ans web10 -m ansible.builtin.command -a "ping -c 1 -W 2 $ip"
    check_eq "web10 cannot ping the backend address $ip" 2 "$ANS_RC"
    ans web10 -m ansible.builtin.shell -a "timeout 5 bash -c 'exec 3<>/dev/tcp/$ip/22'"
    check_eq "web10 cannot connect to $ip:22" 2 "$ANS_RC"
done
make_outside
ans db30 -m ansible.builtin.command -a "ping -c 1 -W 3 $OUTSIDE.2"
check_eq "db30 reaches the outside through the main network (NAT)" 0 "$ANS_RC"
ans db30 -b -m ansible.builtin.command -a "ip route add $OUTSIDE.2/32 via $BACK.1 dev backend"
check_eq "db30 routes the outside through backend instead" 0 "$ANS_RC"
ans db30 -m ansible.builtin.command -a "ping -c 1 -W 3 $OUTSIDE.2"
check_eq "nothing reaches the outside through backend" 2 "$ANS_RC"
ans db30 -m ansible.builtin.command -a "ping -c 1 -W 3 $BACK.1"
check_eq "db30 still reaches the host's address on backend" 0 "$ANS_RC"
ans db30 -b -m ansible.builtin.command -a "ip route del $OUTSIDE.2/32"
remove_outside
require_ok "isolation"

# ---------------------------------------------------------------------------------------------
section "stop db alone, spawn it back"
host_end=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["links"][1]["host"])' <"$WORK/lib/state/networks/db30.json")
check "db30's backend veth is a port of e2ebk0" bash -c "bridge link show dev $host_end | grep -q 'master e2ebk0'"
ap --timeout 120 stop db
check_rc "stop db" 0
check_not "db30's namespace is gone" ip netns exec aplspawn-db30 true
check_not "db30's veth is gone" ip link show "$host_end"
check "cache50's namespace stays" ip netns exec aplspawn-cache50 true
ap --timeout 300 spawn
check_rc "spawn brings db back" 0
check "db30 has the same host end name again" ip link show "$host_end"
ans db30 -m ansible.builtin.command -a "ping -c 1 -W 3 $BACK.50"
check_eq "db30 pings cache50 over backend again" 0 "$ANS_RC"
require_ok "db back"

# ---------------------------------------------------------------------------------------------
section "teardown leaves nothing"
ap --timeout 120 stop
check_rc "stop" 0
check_eq "no namespace of a container" "" "$(ip netns list)"
ap cleanup
check_rc "cleanup" 0
ap netdown
check_rc "netdown" 0
check_contains "netdown removed the backend bridge" "[ OK ] Removing bridge e2ebk0" "$AP_ERR"
check_eq "no mount, loop device, link, namespace or nftables table left" "" "$(leftovers "$WORK")"
finish
