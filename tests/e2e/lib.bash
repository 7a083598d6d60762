# Shared helpers of the end-to-end scripts, sourced by tests/e2e/*.sh (named .bash so that ctest,
# which turns every tests/e2e/*.sh into a test, does not run it).
#
# The scripts drive the real aplspawn binary like a user, inside throwaway namespaces
# (tests/lib/run-in-ns): ctest runs them there, and by hand:
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/fleet.sh
# Environment: APLSPAWN_BINARY (required), APLSPAWN_SOURCE_DIR (default: this tree),
# APLSPAWN_BUILD_DIR (default: the binary's directory), APLSPAWN_IMAGE_REPO and
# APLSPAWN_IMAGE_CACHE (where images/build-default-image publishes and caches the default
# images; default under /var/cache/aplspawn).
#
# Checks: `check DESC CMD...`, `check_not DESC CMD...`, `check_eq DESC WANT GOT`,
# `check_contains DESC NEEDLE TEXT`, `check_not_contains`, `check_match DESC ERE TEXT`,
# `check_rc DESC WANT` (the exit code of the last `ap`). A failed check prints what was expected
# and what was seen; the script goes on, `require_ok WHAT` stops it when a check of the current
# section failed and later steps depend on it, and `finish` exits 1 if any check failed.
# Every wait is bounded (`wait_until SECONDS CMD...`), every command runs under `timeout`.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    echo "lib.bash: helpers for tests/e2e/*.sh, not a test" >&2
    exit 2
fi

E2E_NAME=$(basename "$0" .sh)
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE_DIR=${APLSPAWN_SOURCE_DIR:-$(cd "$E2E_DIR/../.." && pwd)}
APLSPAWN=${APLSPAWN_BINARY:-}
export NO_COLOR=1 LC_ALL=C.UTF-8
E2E_START=$(date +%s%3N)
E2E_FAILED=0
E2E_CHECKS=0

say() { printf '%s\n' "$*" >&2; }
elapsed() { # seconds since the script started, 0.1 s precision
    local ms=$(($(date +%s%3N) - E2E_START))
    printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}
E2E_SECTION_FAILED=0
section() {
    E2E_SECTION_FAILED=$E2E_FAILED
    say ""
    say "=== [$(elapsed) s] $*"
}
pass() {
    E2E_CHECKS=$((E2E_CHECKS + 1))
    say "  ok: $*"
}
fail() {
    E2E_CHECKS=$((E2E_CHECKS + 1))
    E2E_FAILED=$((E2E_FAILED + 1))
    say "  FAILED: $*"
}
# Shows a multi-line text indented, for a failure's context.
show() { # LABEL TEXT
    [[ -n $2 ]] || { say "    $1: (empty)"; return 0; }
    say "    $1:"
    printf '%s\n' "$2" | sed 's/^/      | /' >&2
}

check() { # DESC CMD...
    local desc=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if ((rc == 0)); then
        pass "$desc"
    else
        fail "$desc (exit $rc: $*)"
        show output "$out"
    fi
    return 0
}
check_not() { # DESC CMD... : passes when CMD fails
    local desc=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if ((rc != 0)); then
        pass "$desc"
    else
        fail "$desc (succeeded: $*)"
        show output "$out"
    fi
    return 0
}
check_eq() { # DESC WANT GOT
    if [[ $2 == "$3" ]]; then
        pass "$1"
    else
        fail "$1"
        show expected "$2"
        show got "$3"
    fi
}
check_contains() { # DESC NEEDLE TEXT
    if [[ $3 == *"$2"* ]]; then
        pass "$1"
    else
        fail "$1: no \"$2\""
        show in "$3"
    fi
}
check_not_contains() { # DESC NEEDLE TEXT
    if [[ $3 != *"$2"* ]]; then
        pass "$1"
    else
        fail "$1: unexpected \"$2\""
        show in "$3"
    fi
}
check_match() { # DESC ERE TEXT : some line of TEXT matches ERE (grep -E: ^ and $ are per line)
    if grep -Eq -- "$2" <<<"$3"; then
        pass "$1"
    else
        fail "$1: no line matches /$2/"
        show in "$3"
    fi
}

# Stops the script now when a check of the current section failed (later steps depend on it).
require_ok() { # WHAT
    if ((E2E_FAILED > E2E_SECTION_FAILED)); then
        say ""
        say "STOPPING: $1 failed; the steps after it depend on it"
        finish
    fi
}

# Polls CMD every 0.2 s until it succeeds or SECONDS pass. Returns its last status.
wait_until() { # SECONDS CMD...
    local deadline=$(($(date +%s%3N) + $1 * 1000))
    shift
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        (($(date +%s%3N) < deadline)) || break
        sleep 0.2
    done
    "$@" >/dev/null 2>&1
}

# Runs aplspawn with the test's config: `ap [--timeout SEC] OP [ARGS...]`. Sets AP_RC, AP_OUT
# (stdout) and AP_ERR (stderr); shows stderr in the log, indented. Never fails the script.
# AP_PREFIX runs it elsewhere (systemd_host.sh: inside the simulated host).
AP_TIMEOUT=180
AP_PREFIX=()
ap() {
    local limit=$AP_TIMEOUT
    if [[ $1 == --timeout ]]; then
        limit=$2
        shift 2
    fi
    local op=$1 t0
    shift
    t0=$(date +%s%3N)
    AP_RC=0
    timeout --kill-after=10 "$limit" "${AP_PREFIX[@]}" "$APLSPAWN" -c "$CONFIG" -o "$op" "$@" \
        >"$WORK/ap.out" 2>"$WORK/ap.err" || AP_RC=$?
    AP_OUT=$(<"$WORK/ap.out")
    AP_ERR=$(<"$WORK/ap.err")
    local ms=$(($(date +%s%3N) - t0))
    say "  \$ aplspawn -o $op $* -> exit $AP_RC in $((ms / 1000)).$((ms % 1000 / 100)) s"
    [[ -n $AP_ERR ]] && printf '%s\n' "$AP_ERR" | sed 's/^/      | /' >&2
    ((AP_RC != 124 && AP_RC != 137)) || say "      (killed: it did not finish within $limit s)"
    return 0
}
check_rc() { # DESC WANT : the exit code of the last `ap`
    if [[ $AP_RC == "$2" ]]; then
        pass "$1 (exit $AP_RC)"
    else
        fail "$1: exit $AP_RC, expected $2"
        show stdout "$AP_OUT"
    fi
}
# The FAIL lines of the last `ap` (stderr), one per line.
fail_lines() { grep -F '[ FAIL ]' <<<"$AP_ERR" || true; }

# Runs a command bounded by SECONDS, its output into the log (indented); returns its status.
# Output goes through a file: a daemon the command leaves running cannot hold a pipe of ours.
run_logged() { # SECONDS CMD...
    local limit=$1 rc=0
    shift
    say "  \$ $*"
    timeout --kill-after=10 "$limit" "$@" >"$WORK/run_logged.out" 2>&1 </dev/null || rc=$?
    sed 's/^/      | /' "$WORK/run_logged.out" >&2
    return "$rc"
}

# ---- setup ----

e2e_init() {
    [[ ${APLSPAWN_IN_TEST_NS:-} == 1 ]] || {
        say "$E2E_NAME: runs only inside throwaway namespaces: tests/lib/run-in-ns $0"
        exit 2
    }
    ((EUID == 0)) || { say "$E2E_NAME: needs root"; exit 2; }
    [[ -n $APLSPAWN && -x $APLSPAWN ]] || {
        say "$E2E_NAME: set APLSPAWN_BINARY to the aplspawn binary (e.g. build/aplspawn)"
        exit 2
    }
    APLSPAWN=$(readlink -f "$APLSPAWN")
    export APLSPAWN_BUILD_DIR=${APLSPAWN_BUILD_DIR:-$(dirname "$APLSPAWN")}
    # Everything of the test on a tmpfs of its own mount namespace: nothing survives it.
    mkdir -p /run/aplspawn-test
    WORK=$(mktemp -d "/run/aplspawn-test/e2e-$E2E_NAME.XXXXXX")
    mount -t tmpfs -o mode=0755 tmpfs "$WORK"
    trap e2e_exit_trap EXIT
    say "$E2E_NAME: binary $APLSPAWN, work directory $WORK"
}

# Extra cleanup a script registers (run first, before the generic one).
E2E_CLEANUP=()
e2e_exit_trap() {
    local rc=$?
    trap - EXIT
    set +e
    local f
    for f in "${E2E_CLEANUP[@]}"; do "$f" >/dev/null 2>&1; done
    [[ -n ${HTTP_PID:-} ]] && kill "$HTTP_PID" 2>/dev/null && wait "$HTTP_PID" 2>/dev/null
    # Whatever a failed run left: the containers die with the namespace; mounts under WORK
    # go now so the loop devices (autoclear) are released at once.
    if [[ -n ${WORK:-} ]]; then
        awk -v w="$WORK" '$2 == w || index($2, w "/") == 1 {print $2}' /proc/mounts | sort -r |
            while read -r m; do umount -l "$m"; done
        rmdir "$WORK" 2>/dev/null
    fi
    exit "$rc"
}

finish() {
    section "done: $E2E_CHECKS checks, $E2E_FAILED failed, $(elapsed) s"
    if ((E2E_FAILED > 0)); then
        say "$E2E_NAME: FAILED ($E2E_FAILED of $E2E_CHECKS checks)"
        exit 1
    fi
    say "$E2E_NAME: passed"
    exit 0
}

# The default Debian image of RELEASE (default bookworm): images/build-default-image --release
# RELEASE, which publishes it into $APLSPAWN_IMAGE_REPO (default /var/cache/aplspawn/repo) from its
# cache in $APLSPAWN_IMAGE_CACHE (default /var/cache/aplspawn/build); its last stdout line is the
# image's path. Sets IMAGE, IMAGE_REPO (the directory with SHA256SUMS) and IMAGE_RELEASE (which
# write_config puts in the config).
IMAGE_RELEASE=bookworm
default_image() { # [RELEASE]
    local release=${1:-bookworm} out rc=0
    IMAGE_RELEASE=$release
    out=$(timeout 900 "$SOURCE_DIR/images/build-default-image" --release "$release" \
        2>"$WORK/image-build-$release.log") || rc=$?
    IMAGE=$(tail -n 1 <<<"$out")
    if ((rc != 0)) || [[ ! -f $IMAGE ]]; then
        tail -n 20 "$WORK/image-build-$release.log" >&2
        say "$E2E_NAME: the default $release image is not built (images/build-default-image exit $rc)."
        say "  Inside the test's namespace there is no network: run images/build-default-image --release $release once before the tests."
        exit 1
    fi
    IMAGE_REPO=$(dirname "$IMAGE")
    [[ -f $IMAGE_REPO/SHA256SUMS ]] && grep -q " $(basename "$IMAGE")\$" "$IMAGE_REPO/SHA256SUMS" || {
        say "$E2E_NAME: images/build-default-image did not publish $IMAGE with a SHA256SUMS line"
        exit 1
    }
}

# Serves DIR over HTTP on 127.0.0.1:PORT (the test's own loopback). Sets HTTP_PID, HTTP_URL.
serve_http() { # DIR PORT
    local dir=$1 port=$2
    python3 -m http.server --bind 127.0.0.1 --directory "$dir" "$port" \
        >"$WORK/http.log" 2>&1 &
    HTTP_PID=$!
    HTTP_URL=http://127.0.0.1:$port
    if ! wait_until 10 curl -fsS -o /dev/null "$HTTP_URL/"; then
        cat "$WORK/http.log" >&2
        say "$E2E_NAME: the HTTP server on $HTTP_URL did not answer within 10 s"
        exit 1
    fi
}

# Writes BASE/aplspawn.yaml: AMOUNT containers on bridge BRIDGE (NET.1/24), image from REPO
# (Debian $IMAGE_RELEASE: the one default_image made last), every path under BASE.
# EXTRA_CNTCOMMON lines are appended to cntCommon, EXTRA_IMAGE lines to image. Sets CONFIG.
write_config() { # BASE REPO BRIDGE NET AMOUNT [EXTRA_CNTCOMMON] [EXTRA_IMAGE]
    local base=$1 repo=$2 bridge=$3 net=$4 amount=$5 extra=${6:-} extra_image=${7:-}
    CONFIG=$base/aplspawn.yaml
    cat >"$CONFIG" <<EOF
# end-to-end test $E2E_NAME: every path under $base
bridge:
  name: $bridge
  address: $net.1
  netPrefix: 24
ipt:
  chainName: E2E_$(tr '[:lower:]-' '[:upper:]_' <<<"$E2E_NAME")
path:
  workingDirectory: $base/lib
image:
  os: debian
  release: $IMAGE_RELEASE
  repo: $repo
$extra_image
cntVariables:
  userName: e2e
  sshPublicKeyPath: $base/fleet_key.pub
cntCommon:
  amount: $amount
  sshPrivateKeyPath: $base/fleet_key
  ipRange: [$net.10, $net.50]
  nameTmpl: aplspawn
  homePath: $base/machines
  readyTimeout: 120
  inventoryFile: $base/inventory.ini
$extra
EOF
}

# Ansible, isolated from the machine's own settings: its home, temp and control sockets under WORK.
ansible_env() {
    mkdir -p "$WORK/ansible"
    : >"$WORK/ansible/ansible.cfg"
    export ANSIBLE_HOME=$WORK/ansible ANSIBLE_LOCAL_TEMP=$WORK/ansible/tmp \
        ANSIBLE_SSH_CONTROL_PATH_DIR=$WORK/ansible/cp ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
        ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_CONFIG=$WORK/ansible/ansible.cfg ANSIBLE_TIMEOUT=30
}

# ansible on the fleet's inventory file ($WORK/inventory.ini, written by `aplspawn inventory`):
# output in $ANS (also shown in the log, indented), exit status in $ANS_RC. Never fails the script.
ans() { # ANSIBLE ARGS...
    ANS_RC=0
    ANS=$(timeout 300 env ANSIBLE_INVENTORY_ENABLED=ini ansible -i "$WORK/inventory.ini" "$@" 2>&1) || ANS_RC=$?
    printf '%s\n' "$ANS" | sed 's/^/      | /' >&2
}

# Hosts that answered SUCCESS in ansible's output (`NAME | SUCCESS => ...`), sorted, one a line.
ansible_successes() { sed -n 's/^\([^ ]*\) | SUCCESS.*/\1/p' <<<"$1" | sort; }

# What the fleet left in this namespace: mounts below BASE (not BASE itself: the test's tmpfs),
# loop devices backed by files under BASE (loop devices are global: only ours count), links other
# than lo, nftables tables, named network namespaces. Prints one line per leftover; nothing when
# clean.
leftovers() { # BASE
    local base=$1
    grep -F " $base/" /proc/mounts | awk '{print "mount: " $2 " (" $3 ")"}'
    losetup --list --noheadings -O NAME,BACK-FILE 2>/dev/null | awk -v b="$base" 'index($2, b "/") == 1 {print "loop device: " $0}'
    ip -o link show | awk -F': ' '$2 != "lo" {print "link: " $2}'
    nft list tables 2>/dev/null | sed 's/^/nftables: /'
    ip netns list 2>/dev/null | sed 's/^/netns: /'
}

# After a failed spawn or status: what the containers' own systemd says (failed units, warnings),
# so that a failure in CI can be understood from the test's log alone. Bounded, never fails.
diagnose_fleet() {
    local json pid name
    json=$(timeout 20 "${AP_PREFIX[@]}" "$APLSPAWN" -c "$CONFIG" -o pids --json 2>/dev/null </dev/null) || true
    say "  --- diagnosis: what the containers say"
    while read -r name pid; do
        [[ $pid != null ]] || { say "    $name: not running"; continue; }
        say "    $name (leader $pid): $(timeout 10 "${AP_PREFIX[@]}" nsenter -t "$pid" -a systemctl is-system-running 2>&1 </dev/null)"
        { timeout 10 "${AP_PREFIX[@]}" nsenter -t "$pid" -a systemctl --failed --no-pager --no-legend
          timeout 10 "${AP_PREFIX[@]}" nsenter -t "$pid" -a journalctl -b --no-pager -o short-monotonic -p warning -n 30
          timeout 10 "${AP_PREFIX[@]}" nsenter -t "$pid" -a ls -l /run/nologin; } </dev/null 2>&1 | sed 's/^/      | /' >&2 || true
    done < <(python3 -c 'import json, sys
for c in json.loads(sys.stdin.read() or "[]"): print(c["name"], "null" if c["pid"] is None else c["pid"])' <<<"$json" 2>/dev/null)
    return 0
}
