# Several simulated hosts on one "datacenter" bridge, for tests/e2e/multihost.sh and
# bench/multihost_bench.sh (sourced after lib.bash and e2e_init; named .bash so that ctest does
# not run it). Each host is tests/support/systemd-host: this machine's own root booted with
# systemd as PID 1 in its own network namespace, its host0 on the bridge DC of the test's
# namespace with the address DC_NET.(10 + i), sshd running with host keys of its own. The test's
# namespace is the datacenter's router and the controller (DC_NET.1): its root's ~/.ssh (a tmpfs
# over /root, in this mount namespace only) reaches every host as root, strictly.
#
#   mh_datacenter hostA hostB      boots the hosts, sets MH_HOSTS, HOST_IP[NAME], HOST_LINKS[NAME]
#   in_host NAME [--timeout S] CMD runs CMD inside host NAME (all its namespaces)
#   mh_unplug NAME / mh_plug NAME  takes NAME off the datacenter's network and puts it back
#   mh_stop                        stops every host, removes the bridge, unmounts /root

MH_HOST_SCRIPT=$SOURCE_DIR/tests/support/systemd-host
DC=mhdc0
DC_NET=192.168.250
MH_HOSTS=()
declare -A HOST_IP=() HOST_LINKS=()

in_host() { # NAME [--timeout SEC] CMD...
    local host=$1 limit=60
    shift
    if [[ $1 == --timeout ]]; then
        limit=$2
        shift 2
    fi
    timeout --kill-after=10 "$limit" "$MH_HOST_SCRIPT" exec --dir "$WORK/$host" -- "$@"
}

mh_stop() {
    local h
    for h in "${MH_HOSTS[@]}"; do "$MH_HOST_SCRIPT" stop --dir "$WORK/$h" --timeout 30 || true; done
    ip link del "$DC" 2>/dev/null || true
    mountpoint -q /root && umount /root
    return 0
}

mh_datacenter() { # NAME...
    local h i=11 rc
    ip link add "$DC" type bridge
    ip addr add "$DC_NET.1/24" dev "$DC"
    ip link set "$DC" up
    # The kernel's vxlan module, loaded from here (the hosts are containers: they cannot load it).
    ip link add mhvxprobe type vxlan id 1 dstport 4789 local 127.0.0.1 && ip link del mhvxprobe
    ssh-keygen -q -t ed25519 -N '' -C multihost-admin -f "$WORK/admin_key"
    local -a binds=()
    case $APLSPAWN in
    "$SOURCE_DIR"/* | "$APLSPAWN_BUILD_DIR"/*) ;;
    *) binds=(--bind-ro "$(dirname "$APLSPAWN")") ;;
    esac
    case ${IMAGE_REPO:-} in
    '' | /var/cache/aplspawn/*) ;;
    *) binds+=(--bind-ro "$IMAGE_REPO") ;;
    esac
    E2E_CLEANUP+=(mh_stop)
    for h in "$@"; do
        MH_HOSTS+=("$h")
        HOST_IP[$h]=$DC_NET.$i
        i=$((i + 1))
        rc=0
        run_logged 150 "$MH_HOST_SCRIPT" start --dir "$WORK/$h" --name "$h" --network-bridge "$DC" \
            --address "${HOST_IP[$h]}/24" --gateway "$DC_NET.1" --sshd "$WORK/admin_key.pub" \
            --timeout 120 "${binds[@]}" || rc=$?
        check_eq "$h booted with sshd on ${HOST_IP[$h]}" 0 "$rc"
    done
    # The controller's SSH to the hosts (Ansible's, and the ProxyJump of the fleet's inventory).
    mount -t tmpfs -o mode=0700 tmpfs /root
    mkdir -m 0700 /root/.ssh
    : >"$WORK/hosts_known"
    for h in "${MH_HOSTS[@]}"; do
        [[ -s $WORK/$h/ssh_host_ed25519_key.pub ]] || continue
        printf '%s %s\n' "${HOST_IP[$h]}" "$(cut -d' ' -f1,2 "$WORK/$h/ssh_host_ed25519_key.pub")" >>"$WORK/hosts_known"
    done
    cat >/root/.ssh/config <<EOS
Host $DC_NET.*
    User root
    IdentityFile $WORK/admin_key
    IdentitiesOnly yes
    UserKnownHostsFile $WORK/hosts_known
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
EOS
    for h in "${MH_HOSTS[@]}"; do
        check_eq "the controller reaches $h over SSH with its host key" "$h" \
            "$(timeout 30 ssh "${HOST_IP[$h]}" hostname 2>&1)"
        HOST_LINKS[$h]=$(in_host "$h" ip -o link show | awk -F': ' '{print $2}' | sort)
    done
}

# Takes NAME off the datacenter's network (its port on the bridge down) or puts it back; the
# controller's SSH masters (Ansible's ControlPersist) go, so that Ansible really connects again.
mh_unplug() { ip link set "vb-$1" down; rm -f "${ANSIBLE_SSH_CONTROL_PATH_DIR:-/nonexistent}"/*; }
mh_plug() { ip link set "vb-$1" up; }
