#!/bin/bash
# End-to-end on a real cgroup v2 kernel (issue 14): this machine binds every controller to cgroup
# v1, so the v2 path of resource limits is proven in a qemu virtual machine. It boots Debian's
# kernel (/boot/vmlinuz-*, the linux-image-amd64 that scripts/install-deps installs) with
# cgroup_no_v1=all, its root this machine's own / (qemu exports it read-only over virtio-9p; an
# initramfs of busybox puts a tmpfs overlay on it), a serial console, and no network device at
# all. Inside, tests/e2e/vm/v2_*.bash drive the real aplspawn binary with the default image:
#   detached  no systemd as PID 1 (tests/e2e/vm/guest-init): the cgroup2 root enables no
#             controller; db {memory: 256M, cpus: 1, tasks: 4096} gets memory.max, memory.swap.max,
#             cpuset.cpus and pids.max in its own cgroup, free -m 256, nproc 1, the OOM kill stays
#             inside and status reports it (tests/e2e/vm/v2_detached.bash)
#   systemd   systemd as PID 1 (its systemd.run= service runs tests/e2e/vm/guest-systemd): the
#             systemd launcher; MemoryMax=, MemorySwapMax=, AllowedCPUs=, TasksMax= of db's unit
#             in its cgroup, the same views and OOM test (tests/e2e/vm/v2_systemd.bash)
# KVM where /dev/kvm runs an ordinary kernel (both stages); qemu's TCG where it does not (this
# machine's PVM; a stage took 4 to 11 minutes there, so only the detached one runs by default). Every VM is bounded (timeout), its console is this test's log, nothing of it
# outlives the test (its writes are in its own memory). Skipped (exit 77) only without /dev/kvm.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/cgroup_v2.sh [STAGE...]
# Environment: APLSPAWN_VM_STAGES (the stages when no argument names them; default: both on
# KVM, detached under TCG), APLSPAWN_VM_TIMEOUT (seconds for a stage's test inside the VM, 900),
# APLSPAWN_VM_ACCEL (qemu's accelerator options, e.g. "-accel tcg -cpu max").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

if [[ ! -c /dev/kvm ]]; then
    say "$E2E_NAME: SKIPPED: no /dev/kvm (a KVM virtual machine runs the cgroup v2 kernel)"
    exit 77
fi
e2e_init
STAGES=("$@")
((${#STAGES[@]})) || read -ra STAGES <<<"${APLSPAWN_VM_STAGES:-}"
VM_DIR=$E2E_DIR/vm
VM_TIMEOUT=${APLSPAWN_VM_TIMEOUT:-900}  # seconds for a stage's test inside the VM

section "the kernel, qemu and the default image"
QEMU=$(command -v qemu-system-x86_64 || true)
[[ -n $QEMU ]] || { fail "qemu-system-x86_64 is not installed (Debian package qemu-system-x86: scripts/install-deps)"; finish; }
BUSYBOX=$(command -v busybox || true)
[[ -n $BUSYBOX && $(LC_ALL=C ldd "$BUSYBOX" 2>&1) == *'not a dynamic executable'* ]] ||
    { fail "no static busybox (Debian package busybox-static: scripts/install-deps)"; finish; }
# The newest Debian kernel whose modules are installed (it needs 9p and overlayfs as modules).
KVER=
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V -r); do
    if [[ -f /lib/modules/$k/modules.dep ]] && grep -q '/9pnet_virtio\.ko' "/lib/modules/$k/modules.dep"; then
        KVER=$k
        break
    fi
done
[[ -n $KVER ]] || { fail "no kernel in /boot with 9p modules in /lib/modules (Debian package linux-image-amd64: scripts/install-deps)"; finish; }
pass "kernel $KVER, $($QEMU --version | head -1)"
# The VM sees this machine's / but its own /run, /dev, /proc and /sys.
for path in "$APLSPAWN" "$SOURCE_DIR"; do
    case $path in
    /run/* | /dev/* | /proc/* | /sys/*) fail "$path is under /run, /dev, /proc or /sys, which the VM does not share"; finish ;;
    esac
done
default_image bookworm
pass "default image $IMAGE"

# The initramfs: a static busybox, tests/e2e/vm/initramfs-init as /init, and the modules for
# virtio-9p and overlayfs with their dependencies, in load order (a module after what it needs:
# its modules.dep line read last to first, recursively).
build_initramfs() { # OUT
    local out=$1 root=$WORK/initramfs m dep
    local -a order=()
    mkdir -p "$root/bin" "$root/modules"
    cp "$BUSYBOX" "$root/bin/busybox"
    cp "$VM_DIR/initramfs-init" "$root/init"
    add_module() { # PATH (relative to /lib/modules/KVER)
        local p=$1 d
        [[ " ${order[*]} " == *" ${p##*/} "* ]] && return 0
        for d in $(sed -n "s|^$p: *||p" "/lib/modules/$KVER/modules.dep" | tr ' ' '\n' | tac); do add_module "$d"; done
        local f=/lib/modules/$KVER/$p
        case $f in
        *.ko) cp "$f" "$root/modules/" ;;
        *.ko.xz) xz -dc "$f" >"$root/modules/$(basename "$f" .xz)" ;;
        *.ko.zst) zstd -qdc "$f" >"$root/modules/$(basename "$f" .zst)" ;;
        esac
        order+=("$(basename "${p%.xz}" | sed 's/\.zst$//')")
    }
    for m in virtio_pci 9pnet_virtio 9p overlay; do
        dep=$(grep -oE "^[^:]*/$m\.ko(\.xz|\.zst)?:" "/lib/modules/$KVER/modules.dep" | head -1)
        [[ -n $dep ]] || { grep -qE "^CONFIG_$(tr a-z A-Z <<<"$m")=y" "/boot/config-$KVER" 2>/dev/null && continue; }
        [[ -n $dep ]] || { say "module $m of $KVER not found"; return 1; }
        add_module "${dep%:}"
    done
    printf '%s\n' "${order[@]}" >"$root/modules/order"
    (cd "$root" && find . | cpio --quiet -o -H newc | gzip -1) >"$out"
}

# Boots the VM for STAGE: its console goes to WORK/console-STAGE.log and, indented, to this
# test's log. Sets VM_RC (the guest test's exit code; 98 when the VM gave none) and VM_SECONDS.
run_vm() { # STAGE INIT EXTRA_CMDLINE
    local stage=$1 init=$2 extra=$3 log=$WORK/console-$1.log t0 rc=0
    local cmdline="console=ttyS0 loglevel=4 panic=-1 no_timer_check cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
    cmdline+=" APLSPAWN_VM_INIT=$init APLSPAWN_VM_TEST=$VM_DIR/v2_$stage.bash APLSPAWN_VM_TIMEOUT=$VM_TIMEOUT"
    cmdline+=" APLSPAWN_BINARY=$APLSPAWN APLSPAWN_SOURCE_DIR=$SOURCE_DIR APLSPAWN_BUILD_DIR=$APLSPAWN_BUILD_DIR"
    cmdline+=" APLSPAWN_IMAGE_REPO=$IMAGE_REPO $extra"
    say "  \$ qemu-system-x86_64 ${VM_ACCEL[*]} -kernel vmlinux-$KVER -append '$cmdline'"
    t0=$(date +%s%3N)
    timeout --kill-after=5 $((VM_TIMEOUT + 60)) "$QEMU" "${VM_ACCEL[@]}" -machine q35 -smp 2 -m 2048 \
        -nodefaults -no-user-config -display none -no-reboot -nic none \
        -serial "file:$log" -kernel "$WORK/vmlinux" -initrd "$WORK/initramfs.cpio.gz" \
        -append "$cmdline" \
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
        </dev/null >"$WORK/qemu-$stage.out" 2>&1 || rc=$?
    VM_SECONDS=$((($(date +%s%3N) - t0) / 1000))
    sed 's/^/      | /' "$WORK/qemu-$stage.out" >&2
    # (without colours and systemd's progress spinner, a line per second of a slow job)
    tr -d '\r' <"$log" | sed 's/\x1b\[[0-9;]*[mK]//g' | grep -v 'Job .* running (' | sed 's/^/      | /' >&2 || true
    VM_RC=$(tr -d '\r' <"$log" | sed -n 's/^APLSPAWN_VM_RESULT \([0-9]*\)$/\1/p' | tail -1)
    [[ -n $VM_RC ]] || VM_RC=98
    say "  the VM ran ${VM_SECONDS} s (qemu exit $rc), the test inside exited $VM_RC"
}

# The kernel, uncompressed: qemu boots an ELF vmlinux through its PVH entry, which saves the
# decompression (half a minute under TCG). Debian's vmlinuz is a bzImage with an xz payload
# (zstd or gzip on other kernels): the payload starts at its format's magic.
extract_vmlinux() { # BZIMAGE OUT
    local magic tool off
    for magic in "fd377a585a00 xz" "28b52ffd zstd" "1f8b0800 gzip"; do
        tool=${magic#* }
        off=$(od -A n -t x1 -v "$1" | tr -d ' \n' | grep -ob "${magic% *}" | head -1 | cut -d: -f1) || true
        [[ -n $off ]] || continue
        tail -c +$((off / 2 + 1)) "$1" | "$tool" -dc 2>/dev/null >"$2" || true
        [[ $(head -c 4 "$2" | od -A n -t x1 | tr -d ' ') == 7f454c46 ]] && return 0
    done
    return 1
}
check "the kernel's vmlinux extracted from /boot/vmlinuz-$KVER" extract_vmlinux "/boot/vmlinuz-$KVER" "$WORK/vmlinux"

# KVM when /dev/kvm runs an ordinary kernel. This machine's /dev/kvm is PVM (kvm_pvm: it runs
# only guest kernels built for PVM, a stock kernel hangs at its first instruction), so the VM
# runs on qemu's TCG there: the same kernel and test, several times slower.
if [[ -n ${APLSPAWN_VM_ACCEL:-} ]]; then
    VM_ACCEL=($APLSPAWN_VM_ACCEL)
elif [[ -d /sys/module/kvm_pvm ]]; then
    VM_ACCEL=(-accel tcg,thread=multi -cpu max)
else
    VM_ACCEL=(-accel kvm -cpu host)
fi
say "  accelerator: ${VM_ACCEL[*]}"
# Both stages on KVM; under TCG a stage takes 4 to 11 minutes on a busy 2-core machine, so the
# suite runs the detached stage only (APLSPAWN_VM_STAGES="detached systemd", or
# the stages as arguments, run both).
if ((${#STAGES[@]} == 0)); then
    if [[ ${VM_ACCEL[1]} == kvm ]]; then
        STAGES=(detached systemd)
    else
        STAGES=(detached)
        say "  under TCG only the detached stage runs (APLSPAWN_VM_STAGES=\"detached systemd\" runs both)"
    fi
fi

build_initramfs "$WORK/initramfs.cpio.gz"
check "initramfs built ($(du -k "$WORK/initramfs.cpio.gz" | cut -f1) KiB)" test -s "$WORK/initramfs.cpio.gz"
require_ok "the VM's kernel and initramfs"

# What the VM's systemd need not do, and what is slow over 9p under TCG: tmpfiles would walk (and
# clean) the host's /tmp and /var, udev coldplug every device, timers would start apt's jobs.
SYSTEMD_MASKS=
for unit in systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service \
    systemd-udev-trigger.service systemd-journal-flush.service timers.target \
    systemd-timesyncd.service systemd-pstore.service; do
    SYSTEMD_MASKS+=" systemd.mask=$unit"
done

for stage in "${STAGES[@]}"; do
    case $stage in
    detached)
        section "stage detached: a bare cgroup v2 host, no systemd (the detached launcher)"
        run_vm "$stage" "$VM_DIR/guest-init" ""
        ;;
    systemd)
        section "stage systemd: systemd as PID 1 on cgroup v2 (the systemd launcher)"
        run_vm systemd /lib/systemd/systemd \
            "systemd.run=$VM_DIR/guest-systemd systemd.run_success_action=poweroff systemd.run_failure_action=poweroff systemd.show_status=error $SYSTEMD_MASKS"
        ;;
    *) fail "unknown stage $stage"; continue ;;
    esac
    check_eq "stage $stage: every check inside the VM passed (${VM_SECONDS} s)" 0 "$VM_RC"
done
finish
