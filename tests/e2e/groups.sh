#!/bin/bash
# End-to-end: a fleet of two groups on two Debian releases (issue 19), driven like a user. web ×2
# on bookworm (group vars, a role bound in read-only), db ×1 on trixie, one spawn; Ansible's facts
# say which release each group runs; a playbook that targets web touches only web; web10 reaches
# db30 by name; stop web leaves db running and healthy; spawn brings web back with its data; a
# shrunk group is refused while its container runs; an unknown target is exit 2; teardown leaves
# nothing.
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/groups.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
default_image bookworm
BOOKWORM_REPO=$IMAGE_REPO
default_image trixie
[[ $IMAGE_REPO == "$BOOKWORM_REPO" ]] || { say "groups: the two images are in different repos"; exit 1; }
serve_http "$IMAGE_REPO" 8713
ansible_env
BRIDGE=e2egrp0
NET=10.87.3
MARKER=e2e-$RANDOM$RANDOM
mkdir -p "$WORK/roles/demo"
printf 'demo role %s\n' "$MARKER" >"$WORK/roles/demo/README"

write_groups_config() { # WEB_AMOUNT
    CONFIG=$WORK/aplspawn.yaml
    cat >"$CONFIG" <<EOC
# end-to-end test groups: every path under $WORK
bridge: {name: $BRIDGE, address: $NET.1, netPrefix: 24}
ipt: {chainName: E2E_GROUPS}
path: {workingDirectory: $WORK/lib}
image: {os: debian, release: bookworm, repo: $HTTP_URL}
cntVariables: {userName: e2e, sshPublicKeyPath: $WORK/fleet_key.pub}
cntCommon:
  sshPrivateKeyPath: $WORK/fleet_key
  homePath: $WORK/machines
  readyTimeout: 180
  inventoryFile: $WORK/inventory.ini
groups:
  web:
    amount: $1
    ipRange: ["$NET.10", "$NET.20"]
    vars: {http_port: 8080}
    binds: ["./roles:/srv/roles:ro"]
  db:
    amount: 1
    ipRange: ["$NET.30", "$NET.40"]
    image: {release: trixie}
    vars: {db_port: 5432}
EOC
}
write_groups_config 2
UPPER=$WORK/lib/upper

# ---------------------------------------------------------------------------------------------
section "netup, getimage of both images, one spawn"
ap netup
check_rc "netup" 0
ap getimage
check_rc "getimage" 0
check_contains "bookworm came over HTTP" '"GET /debian-bookworm-latest.img HTTP/1.1" 200' "$(<"$WORK/http.log")"
check_contains "trixie came over HTTP" '"GET /debian-trixie-latest.img HTTP/1.1" 200' "$(<"$WORK/http.log")"
check_eq "two images verified" 2 "$(grep -c 'Verifying image checksum' <<<"$AP_ERR" || true)"
ap --timeout 400 spawn
check_rc "spawn of both groups" 0
((AP_RC == 0)) || diagnose_fleet
require_ok "spawn"
ap names --json
check_eq "names: web10, web11 in web, db30 in db" "web10 web
web11 web
db30 db" "$(python3 -c 'import json,sys; [print(c["name"], c["group"]) for c in json.load(sys.stdin)]' <<<"$AP_OUT")"
ap list
check_rc "list" 0
check_match "list: db30 runs trixie" '^db30 +db +10\.87\.3\.30 +debian-trixie-latest +running +[0-9]+ ' "$AP_OUT"
check_match "list: web11 runs bookworm" '^web11 +web +10\.87\.3\.11 +debian-bookworm-latest +running ' "$AP_OUT"
check_contains "list: the count line" "3 containers listed (3 running)." "$AP_OUT"
ap status --summary
check_rc "status --summary of a healthy fleet" 0
check_contains "status --summary: the totals" "3 of 3 containers healthy" "$AP_ERR"
check_eq "status --summary: one line per container and the totals" 4 "$(grep -c '‣ \[ OK \]' <<<"$AP_ERR" || true)"
ap inventory
check_rc "inventory" 0
require_ok "the fleet of two groups"

# ---------------------------------------------------------------------------------------------
section "Ansible: facts per group, a play for web only, names across groups"
ans aplspawned -m ansible.builtin.setup -a "filter=ansible_distribution_release"
check_eq "ansible setup: exit 0" 0 "$ANS_RC"
for h in web10 web11; do
    check_match "$h reports bookworm" "^$h \| SUCCESS" "$ANS"
done
releases=$(python3 - "$ANS" <<'PY'
import json, re, sys
text = sys.argv[1]
for m in re.finditer(r'^(\S+) \| SUCCESS => (\{.*?^\})', text, re.S | re.M):
    facts = json.loads(m.group(2))["ansible_facts"]
    print(m.group(1), facts["ansible_distribution_release"])
PY
)
check_eq "releases: bookworm on web, trixie on db" "db30 trixie
web10 bookworm
web11 bookworm" "$(sort <<<"$releases")"

rc=0
play=$(timeout 300 env ANSIBLE_INVENTORY_ENABLED=ini ansible-playbook -i "$WORK/inventory.ini" \
    -e "marker=$MARKER" "$E2E_DIR/groups-play.yml" 2>&1) || rc=$?
printf '%s\n' "$play" | sed 's/^/      | /' >&2
check_eq "the web play: exit 0" 0 "$rc"
for h in web10 web11; do
    check_eq "$h got the web config from its group var" "listen 8080 on $h (web)" "$(cat "$UPPER/$h/etc/e2e-web.conf" 2>&1)"
done
check_not "db30 was not touched by the web play" test -e "$UPPER/db30/etc/e2e-web.conf"
check_not_contains "db30 is not in the web play" "db30" "$play"

ans web10 -m ansible.builtin.command -a "getent hosts db30"
check_match "web10 resolves db30 by name" "^10\.87\.3\.30 +db30" "$ANS"
ans web10 -m ansible.builtin.command -a "ping -c 1 -W 3 db30"
check_eq "web10 pings db30 by name" 0 "$ANS_RC"
check_contains "ping got its reply" "1 received" "$ANS"
ans db30 -m ansible.builtin.command -a "getent hosts web11"
check_match "db30 resolves web11 by name" "^10\.87\.3\.11 +web11" "$ANS"
ans db -m ansible.builtin.debug -a "var=db_port"
check_contains "db's group var reaches db30" '"db_port": 5432' "$ANS"
require_ok "Ansible on the groups"

# ---------------------------------------------------------------------------------------------
section "stop web: db keeps running, healthy, on its own lower layer"
ap stop nosuchgroup
check_rc "stop of an unknown target" 2
check_contains "the unknown target is named" "nosuchgroup: no group or container of that name" "$AP_ERR"
ap --timeout 120 stop web
check_rc "stop web" 0
ap status --json
check_rc "status with web stopped" 1
failed=$(python3 -c 'import json,sys
for c in json.load(sys.stdin):
    if not c["ok"] and c["container"]: print(c["container"], c["group"])' <<<"$AP_OUT" | sort -u)
check_eq "only web's containers fail" "web10 web
web11 web" "$failed"
ap status --summary db
check_rc "status of db alone" 0
check_contains "db30 healthy" "[ OK ] db30 (db, 10.87.3.30)" "$AP_ERR"
ap list
check_match "list: web10 stopped" '^web10 +web .* stopped ' "$AP_OUT"
check_match "list: db30 running" '^db30 +db .* running ' "$AP_OUT"
check "db30 still answers SSH" timeout 60 ssh -F none -i "$WORK/fleet_key" -o BatchMode=yes \
    -o UserKnownHostsFile="$WORK/lib/state/known_hosts" -o StrictHostKeyChecking=yes e2e@$NET.30 true
check "trixie's lower layer stays mounted" mountpoint -q "$WORK/lib/lower/debian-trixie-latest"
check_not "bookworm's lower layer is released" mountpoint -q "$WORK/lib/lower/debian-bookworm-latest"
require_ok "stop web"

# ---------------------------------------------------------------------------------------------
section "spawn brings web back with its data"
ap --timeout 300 spawn
check_rc "spawn again" 0
for h in web10 web11; do
    check_match "$h is provisioned as before (its identity kept)" "Provisioning $h \(.*\) \(already so\)" "$AP_ERR"
    check_eq "$h still has the web config" "listen 8080 on $h (web)" "$(cat "$UPPER/$h/etc/e2e-web.conf" 2>&1)"
done
check_contains "db30 was left running" "Container with pid" "$(grep -A1 'Trying to start container db30' <<<"$AP_ERR")"
ap status
check_rc "status after web came back" 0
require_ok "web back"

# ---------------------------------------------------------------------------------------------
section "shrink web to one: refused while web11 runs, then /etc/hosts follows"
write_groups_config 1
ap spawn
check_rc "spawn with web11 gone from the config but running" 1
check_contains "the refusal names web11 and the command" "web11 is no longer in the config but still runs: stop it first (aplspawn stop web11)" "$AP_ERR"
ap --timeout 120 stop web11
check_rc "stop web11 (a recorded container the config no longer has)" 0
ap spawn
check_rc "spawn after the shrink" 0
pid_db=$(awk '$1 == "db30" {print $6}' <<<"$("$APLSPAWN" -c "$CONFIG" list 2>/dev/null)")
check_not_contains "db30's /etc/hosts no longer names web11" "web11" "$(cat "/proc/$pid_db/root/etc/hosts" 2>&1)"
check_contains "db30's /etc/hosts still names web10" "web10" "$(cat "/proc/$pid_db/root/etc/hosts" 2>&1)"
check "web11's data stays (a member of the fleet until cleanup)" test -d "$UPPER/web11/etc"
ap list
check_match "list: web11 stopped, still in group web" '^web11 +web +- .* stopped ' "$AP_OUT"
ap cleanup web11
check_rc "cleanup web11" 0
check_not "cleanup web11 removed its data" test -e "$UPPER/web11"
check "cleanup web11 kept web10's" test -d "$UPPER/web10/etc"
ap names web11
check_rc "web11 is no name of the fleet any more" 2
require_ok "the shrink"

# ---------------------------------------------------------------------------------------------
section "teardown leaves nothing"
ap --timeout 120 stop
check_rc "stop" 0
ap cleanup
check_rc "cleanup" 0
check_eq "cleanup left no container data" "" "$(ls -A "$UPPER" 2>/dev/null)"
ap netdown
check_rc "netdown" 0
check_eq "no mount, loop device, link or nftables table left" "" "$(leftovers "$WORK")"
finish
