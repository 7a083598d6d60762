#!/bin/bash
# End-to-end of one fleet over two hosts (issue 18), driven by the project's playbook from this
# machine as the controller. Two simulated hosts (tests/support/systemd-host: this machine's own
# root with systemd as PID 1 and sshd, each in its own network namespace) on one "datacenter"
# bridge of the test's namespace (192.168.250.0/24, the controller at .1). One fleet file places
# group web on hostA and db on hostB; ansible/fleet.yml installs the aplspawn package (cpack -G
# DEB of the build) on both, copies the file and the key pair, runs netup/getimage/spawn on both
# and writes the fleet's inventory and known_hosts here.
#
# Checked: a host that cannot be reached fails the run naming it and the other is left as it
# was (no package, no bridge, no fabric), then a second run finishes the job; the VXLAN devices
# (VNI, local address, no learning, one all-zero forwarding entry per peer, MTU underlay - 50);
# web pings and SSHes db by name and address across the hosts, full-size packets cross with DF
# set; each container leaves through its own host's NAT (a listener here sees the host's
# address); one `ansible -m ping` over the written inventory reaches both containers through
# their hosts (ProxyJump) with strict host keys; a second run changes nothing; with hostA
# unreachable, state=absent fails naming it and hostB's container runs on; state=absent leaves
# both hosts clean (no container, apvx device, bridge, nftables table, mount, namespace).
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/multihost.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image
source "$E2E_DIR/multihost.bash"
PLAYBOOK=$SOURCE_DIR/ansible/fleet.yml
HOSTS=(hostA hostB)
BASE=/run/aplspawn-mh # the fleet's paths, the same on every machine (a tmpfs on each)
BRIDGE=mhbr0
NET=10.88.12
TABLE=aplspawn_E2E_MULTIHOST
VNI=4242
VXLAN=apvx$(printf '%06x' "$VNI")
WEB=web10
DB=db20
declare -A CNT_HOST=([$WEB]=hostA [$DB]=hostB)
declare -A CNT_IP=([$WEB]=$NET.10 [$DB]=$NET.20)

# ---------------------------------------------------------------------------------------------
section "the datacenter: a bridge, two hosts with sshd, the controller's SSH to them"
mh_datacenter "${HOSTS[@]}"
require_ok "the simulated hosts"

# ---------------------------------------------------------------------------------------------
section "the package: cpack -G DEB of the build"
PACKAGE=''
if [[ -f $APLSPAWN_BUILD_DIR/CPackConfig.cmake ]]; then
    rc=0
    run_logged 600 cpack -G DEB --config "$APLSPAWN_BUILD_DIR/CPackConfig.cmake" -B "$WORK/pkg" || rc=$?
    check_eq "cpack -G DEB" 0 "$rc"
    PACKAGE=$(ls "$WORK"/pkg/aplspawn_*.deb 2>/dev/null | head -n 1)
    check "cpack made aplspawn_VERSION_ARCH.deb" test -s "$PACKAGE"
    check_match "the package depends on the libraries (shlibdeps) and on systemd-container" \
        "^ Depends: .*libyaml-cpp0.7.*systemd-container|^ Depends: .*systemd-container.*libyaml-cpp0.7" \
        "$(dpkg-deb --info "$PACKAGE" 2>&1)"
    check_contains "the package holds the binary, the man page and the example" \
        "/bin/aplspawn" "$(dpkg-deb --contents "$PACKAGE" 2>&1)"
else
    say "  (no CPackConfig.cmake in $APLSPAWN_BUILD_DIR: the playbook copies the binary instead)"
fi
require_ok "the package"
INSTALL=(-e "aplspawn_binary=$APLSPAWN")
[[ -n $PACKAGE ]] && INSTALL=(-e "aplspawn_package=$PACKAGE")

# ---------------------------------------------------------------------------------------------
# The fleet file (on the controller) and the Ansible inventory of the hosts.
mkdir -p "$BASE"
cat >"$WORK/fleet.yaml" <<EOF
# end-to-end test multihost: one fleet over hostA and hostB
bridge: {name: $BRIDGE, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_MULTIHOST}
path: {workingDirectory: $BASE/lib}
image: {os: debian, release: $IMAGE_RELEASE, repo: "file://$IMAGE_REPO"}
cntVariables: {userName: e2e, sshPublicKeyPath: $BASE/fleet_key.pub}
cntCommon: {sshPrivateKeyPath: $BASE/fleet_key, homePath: $BASE/machines, readyTimeout: 120}
groups:
  web: {amount: 1, ipRange: [$NET.10, $NET.19]}
  db: {amount: 1, ipRange: [$NET.20, $NET.29]}
hosts:
  hostA: {address: ${HOST_IP[hostA]}, groups: [web]}
  hostB: {address: ${HOST_IP[hostB]}, groups: [db]}
fabric: {vxlanId: $VNI, port: 4789}
EOF
cat >"$WORK/hosts.ini" <<EOF
hostA ansible_host=${HOST_IP[hostA]}
hostB ansible_host=${HOST_IP[hostB]}

[all:vars]
ansible_user=root
ansible_python_interpreter=/usr/bin/python3
EOF
ansible_env
# Pipelining: one SSH session per task on the hosts (the containers' inventory sets it itself).
export ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_PIPELINING=1
INVENTORY=$WORK/fleet-inventory.ini
KNOWN=$INVENTORY.known_hosts

# play [TIMEOUT] ARGS...: the playbook against both hosts; PLAY (its output) and PLAY_RC.
play() {
    local limit=900
    [[ ${1:-} =~ ^[0-9]+$ ]] && { limit=$1; shift; }
    PLAY_RC=0
    say "  \$ ansible-playbook -i hosts.ini fleet.yml $*"
    PLAY=$(timeout --kill-after=10 "$limit" ansible-playbook -i "$WORK/hosts.ini" "$PLAYBOOK" \
        -e "fleet_config=$WORK/fleet.yaml" -e "fleet_inventory=$INVENTORY" \
        -e "aplspawn_controller_command=$APLSPAWN" -e fleet_reach_timeout=5 "${INSTALL[@]}" "$@" \
        2>&1 </dev/null) || PLAY_RC=$?
    printf '%s\n' "$PLAY" | sed 's/^/      | /' >&2
}
recap() { sed -n '/PLAY RECAP/,$p' <<<"$PLAY"; }
vxlan_of() { in_host "$1" ip -d -o link show dev "$VXLAN" 2>&1; }

# ---------------------------------------------------------------------------------------------
section "hostB unreachable: the run fails naming it, hostA is left as it was"
mh_unplug hostB
play 300
check "the playbook fails (exit $PLAY_RC)" test "$PLAY_RC" -ne 0
check_match "it names hostB as the host it cannot reach" "cannot reach hostB \(${HOST_IP[hostB]}" "$PLAY"
check_not_contains "it does not blame hostA" "cannot reach hostA" "$PLAY"
check_not "hostA has no aplspawn installed" in_host hostA sh -c 'command -v aplspawn'
check_not "hostA has no fleet file" in_host hostA test -e /etc/aplspawn/fleet.yaml
check_eq "hostA's links are as before" "${HOST_LINKS[hostA]}" \
    "$(in_host hostA ip -o link show | awk -F': ' '{print $2}' | sort)"
check_not "no inventory was written" test -e "$INVENTORY"
mh_plug hostB

# ---------------------------------------------------------------------------------------------
section "the playbook: one fleet over hostA and hostB"
play
check_eq "the playbook succeeds" 0 "$PLAY_RC"
for h in "${HOSTS[@]}"; do
    check_match "recap of $h: no failures" "^$h +: ok=[1-9][0-9]* +changed=[1-9][0-9]* +unreachable=0 +failed=0" "$(recap)"
done
check "the controller has the fleet's inventory" test -s "$INVENTORY"
check "the controller has the fleet's known_hosts" test -s "$KNOWN"
((PLAY_RC == 0)) || in_host hostA journalctl -b --no-pager -n 40 2>&1 | sed 's/^/      | /' >&2
require_ok "the playbook"
if [[ -n $PACKAGE ]]; then
    for h in "${HOSTS[@]}"; do
        check_match "$h: the aplspawn package is installed" "^ii +aplspawn " "$(in_host "$h" dpkg -l aplspawn 2>&1)"
    done
fi
for c in "$WEB" "$DB"; do
    h=${CNT_HOST[$c]}
    other=hostA
    [[ $h == hostA ]] && other=hostB
    check_eq "machinectl list on $h: $c alone" "$c" \
        "$(in_host "$h" machinectl list --no-legend --no-pager 2>&1 | awk '{print $1}')"
    check_match "known_hosts has $c's key by its address" "^${CNT_IP[$c]}[ ,]" "$(cat "$KNOWN")"
    check_match "inventory: $c at ${CNT_IP[$c]} on $h through $h" \
        "^$c .*ansible_host=${CNT_IP[$c]}.*" "$(cat "$INVENTORY")"
    check_match "inventory: $c's aplspawn_host is $h" "^$c .*aplspawn_host=$h" "$(cat "$INVENTORY")"
    check_match "inventory: $c is reached through $h (ProxyJump)" "^$c .*ProxyJump=${HOST_IP[$h]}" "$(cat "$INVENTORY")"
    check_match "inventory: $c's known hosts are the gathered ones" "^$c .*UserKnownHostsFile=$KNOWN" "$(cat "$INVENTORY")"
done
i=0
for h in "${HOSTS[@]}"; do
    peer=hostB
    [[ $h == hostB ]] && peer=hostA
    vx=$(vxlan_of "$h")
    check_match "$h: $VXLAN is vxlan id $VNI local ${HOST_IP[$h]} port 4789 nolearning" \
        "vxlan id $VNI local ${HOST_IP[$h]} .*dstport 4789 .*nolearning" "$vx"
    check_match "$h: $VXLAN is a port of $BRIDGE" "master $BRIDGE " "$vx"
    check_match "$h: $VXLAN's MTU is the underlay's minus 50" " mtu 1450 " "$vx"
    check_match "$h: $BRIDGE's MTU is 1450 too" " mtu 1450 " "$(in_host "$h" ip -o link show dev "$BRIDGE" 2>&1)"
    check_match "$h: one all-zero forwarding entry, towards ${HOST_IP[$peer]}" \
        "^00:00:00:00:00:00 dst ${HOST_IP[$peer]} " "$(in_host "$h" bridge fdb show dev "$VXLAN" 2>&1)"
    check_eq "$h: exactly one all-zero entry" 1 \
        "$(in_host "$h" bridge fdb show dev "$VXLAN" 2>&1 | grep -c '^00:00:00:00:00:00 ' || true)"
    check_contains "$h: its own gateway address $NET.$((1 + i)) on $BRIDGE" "inet $NET.$((1 + i))/24" \
        "$(in_host "$h" ip -4 -o addr show dev "$BRIDGE" 2>&1)"
    i=$((i + 1))
done
require_ok "the fleet over two hosts"

# ---------------------------------------------------------------------------------------------
section "one ansible ping over the written inventory reaches both, strict host keys"
ANS_RC=0
ANS=$(timeout 300 env ANSIBLE_INVENTORY_ENABLED=ini ansible -i "$INVENTORY" all -m ping 2>&1) || ANS_RC=$?
printf '%s\n' "$ANS" | sed 's/^/      | /' >&2
check_eq "ansible ping: SUCCESS from both containers" "$(printf '%s\n' "$DB" "$WEB")" "$(ansible_successes "$ANS")"
check_eq "ansible ping exit code" 0 "$ANS_RC"
# The same with a wrong key in known_hosts: strict checking refuses it.
cp "$KNOWN" "$WORK/known.good"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/impostor"
awk -v ip="${CNT_IP[$DB]}" -v key="$(cut -d' ' -f2 "$WORK/impostor.pub")" \
    '{split($1, h, ",")} h[1] == ip {$3 = key; $2 = "ssh-ed25519"} {print}' "$WORK/known.good" >"$KNOWN"
rm -f "$WORK"/ansible/cp/*
ANS=$(timeout 120 env ANSIBLE_INVENTORY_ENABLED=ini ansible -i "$INVENTORY" "$DB" -m ping 2>&1) || true
printf '%s\n' "$ANS" | sed 's/^/      | /' >&2
check_not_contains "with a wrong host key for $DB, ansible does not reach it" "$DB | SUCCESS" "$ANS"
cp "$WORK/known.good" "$KNOWN"
require_ok "ansible over the fleet"

# ---------------------------------------------------------------------------------------------
section "web on hostA pings and SSHes db on hostB, by name and by address"
ans_on() { # CONTAINER ARGS...: ansible against one container; output in ANS
    local c=$1
    shift
    ANS=$(timeout 180 env ANSIBLE_INVENTORY_ENABLED=ini ansible -i "$INVENTORY" "$c" -o "$@" 2>&1) || true
    printf '%s\n' "$ANS" | sed 's/^/      | /' >&2
}
for target in "$DB" "${CNT_IP[$DB]}"; do
    ans_on "$WEB" -m ansible.builtin.command -a "ping -c 2 -W 3 $target"
    check_match "$WEB pings $target" "^$WEB \| CHANGED \| rc=0" "$ANS"
done
# Full-size packets cross: 1450 - 28 bytes of ICMP payload with DF set, and one byte more fails.
ans_on "$WEB" -m ansible.builtin.command -a "ping -c 2 -W 3 -M do -s 1422 ${CNT_IP[$DB]}"
check_match "$WEB pings $DB with 1450-byte packets, DF set" "^$WEB \| CHANGED \| rc=0" "$ANS"
ans_on "$WEB" -m ansible.builtin.shell -a "ip -o link show dev host0"
check_match "$WEB's interface has MTU 1450" "mtu 1450 " "$ANS"
# SSH from web to db: the fleet key and the gathered known_hosts copied into web.
ans_on "$WEB" -m ansible.builtin.copy -a "src=$BASE/fleet_key dest=/home/e2e/fleet_key mode=0600"
ans_on "$WEB" -m ansible.builtin.copy -a "src=$KNOWN dest=/home/e2e/known_hosts mode=0644"
ssh_opts="-i /home/e2e/fleet_key -o UserKnownHostsFile=/home/e2e/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10"
ans_on "$WEB" -m ansible.builtin.command -a "ssh $ssh_opts e2e@${CNT_IP[$DB]} hostname"
check_match "$WEB SSHes $DB by address (strict host key)" "^$WEB \| CHANGED \| rc=0 \| \(stdout\) $DB\$" "$ANS"
ans_on "$WEB" -m ansible.builtin.command -a "ssh $ssh_opts -o HostKeyAlias=${CNT_IP[$DB]} e2e@$DB hostname"
check_match "$WEB SSHes $DB by name (its key is db's)" "^$WEB \| CHANGED \| rc=0 \| \(stdout\) $DB\$" "$ANS"
ans_on "$DB" -m ansible.builtin.command -a "ping -c 2 -W 3 $WEB"
check_match "$DB pings $WEB back by name" "^$DB \| CHANGED \| rc=0" "$ANS"

# ---------------------------------------------------------------------------------------------
section "each container leaves through its own host's NAT"
python3 - "$DC_NET.1" 8099 "$WORK/peers" >"$WORK/listener.log" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
s.settimeout(120)
end = time.time() + 120
with open(sys.argv[3], "a", buffering=1) as out:
    while time.time() < end:
        try:
            c, (addr, _) = s.accept()
        except socket.timeout:
            break
        data = c.recv(64).decode(errors="replace").strip()
        out.write(f"{data} {addr}\n")
        c.close()
EOF
LISTENER=$!
wait_until 10 python3 -c "import socket; socket.create_connection(('$DC_NET.1', 8099), 2).close()" || true
for c in "$WEB" "$DB"; do
    ans_on "$c" -m ansible.builtin.shell -a "echo $c >/dev/tcp/$DC_NET.1/8099" -e ansible_shell_executable=/bin/bash
done
wait_until 10 sh -c "[ \$(grep -c -e '^$WEB ' -e '^$DB ' '$WORK/peers') -ge 2 ]" || true
kill "$LISTENER" 2>/dev/null || true
wait "$LISTENER" 2>/dev/null || true
for c in "$WEB" "$DB"; do
    h=${CNT_HOST[$c]}
    check_match "$c reaches the datacenter as $h (${HOST_IP[$h]})" "^$c ${HOST_IP[$h]}\$" "$(cat "$WORK/peers" 2>/dev/null)"
done

# ---------------------------------------------------------------------------------------------
section "a second run changes nothing"
pids_before=$(for h in "${HOSTS[@]}"; do in_host "$h" machinectl list --no-legend --no-pager; done 2>&1)
leader_web=$(in_host hostA machinectl show "$WEB" -p Leader --value 2>&1)
leader_db=$(in_host hostB machinectl show "$DB" -p Leader --value 2>&1)
cp "$INVENTORY" "$WORK/inventory.before"
play
check_eq "the second run succeeds" 0 "$PLAY_RC"
for h in "${HOSTS[@]}"; do
    check_match "recap of $h: changed=0" "^$h +: ok=[1-9][0-9]* +changed=0 +unreachable=0 +failed=0" "$(recap)"
done
check_eq "$WEB runs on (the same leader)" "$leader_web" "$(in_host hostA machinectl show "$WEB" -p Leader --value 2>&1)"
check_eq "$DB runs on (the same leader)" "$leader_db" "$(in_host hostB machinectl show "$DB" -p Leader --value 2>&1)"
check "the inventory is the same" cmp "$WORK/inventory.before" "$INVENTORY"

# ---------------------------------------------------------------------------------------------
section "hostA unreachable: state=absent fails naming it, hostB's db runs on"
mh_unplug hostA
play 300 -e state=absent
check "the playbook fails (exit $PLAY_RC)" test "$PLAY_RC" -ne 0
check_match "it names hostA" "cannot reach hostA \(${HOST_IP[hostA]}" "$PLAY"
check_eq "$DB still runs on hostB (the same leader)" "$leader_db" \
    "$(in_host hostB machinectl show "$DB" -p Leader --value 2>&1)"
check_match "hostB's $VXLAN is still there" "vxlan id $VNI" "$(vxlan_of hostB)"
check "the controller's inventory is still there" test -s "$INVENTORY"
mh_plug hostA

# ---------------------------------------------------------------------------------------------
section "state=absent: every host clean"
play -e state=absent
check_eq "state=absent succeeds" 0 "$PLAY_RC"
for h in "${HOSTS[@]}"; do
    check_eq "$h: no machine left" "" "$(in_host "$h" machinectl list --no-legend --no-pager 2>&1)"
    check_eq "$h: links as before the fleet (no $VXLAN, no $BRIDGE, no veth)" "${HOST_LINKS[$h]}" \
        "$(in_host "$h" ip -o link show | awk -F': ' '{print $2}' | sort)"
    check_not_contains "$h: no nftables table of the fleet" "$TABLE" "$(in_host "$h" nft list tables 2>&1)"
    check_eq "$h: no mount of the fleet" "" "$(in_host "$h" grep -F " $BASE/" /proc/mounts 2>&1)"
    check_eq "$h: no network namespace" "" "$(in_host "$h" ip netns list 2>&1)"
    check_eq "$h: no aplspawn unit" "" "$(in_host "$h" systemctl list-units --all --plain --no-legend 'aplspawn-*' 2>&1)"
done
check_not "the controller's inventory is gone" test -e "$INVENTORY"
check_not "the controller's known_hosts of the fleet is gone" test -e "$KNOWN"
play -e state=absent
check_eq "state=absent again succeeds" 0 "$PLAY_RC"
for h in "${HOSTS[@]}"; do
    check_match "recap of $h: changed=0" "^$h +: ok=[1-9][0-9]* +changed=0 +unreachable=0 +failed=0" "$(recap)"
done

section "stop the simulated hosts"
for h in "${HOSTS[@]}"; do
    rc=0
    run_logged 60 "$MH_HOST_SCRIPT" stop --dir "$WORK/$h" --timeout 30 || rc=$?
    check_eq "systemd-host stop $h" 0 "$rc"
done
mh_stop
check_eq "nothing left in the test's namespace" "" "$(leftovers "$WORK")"
finish
