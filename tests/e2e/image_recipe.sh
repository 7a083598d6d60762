#!/bin/bash
# End-to-end: images/build-default-image's choices, without building (no network here):
#   - the mirror: apt's source for the release; for a release this machine does not list
#     (trixie on bookworm) the source of the machine's own Debian release, never a security or
#     third-party source; deb.debian.org when there is none; APLSPAWN_DEBIAN_MIRROR first;
#   - one cache key per release, one directory of entries per release: building (here: finding
#     in the cache) one release prunes only that release's older entries (the current one and the
#     newest previous are kept; entries of the layout before releases had directories count as
#     bookworm's), never the other release's;
#   - publishing keeps the other images' SHA256SUMS lines; an unknown release is refused.
# The cache entries are made by hand (an image file and its SHA256SUMS, which is all the recipe
# checks of an entry); /etc/apt and /etc/os-release are this test's own (bind mounts in its
# mount namespace).
#
#   APLSPAWN_BINARY=build/aplspawn tests/lib/run-in-ns tests/e2e/image_recipe.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

e2e_init
RECIPE=$SOURCE_DIR/images/build-default-image

# ---- a machine's apt sources and release, bound over /etc/apt and /etc/os-release ----
fake_machine() { # ID CODENAME: sources from stdin (deb822 .sources if it starts with Types:)
    local d=$WORK/machine.$RANDOM
    mkdir -p "$d/apt/sources.list.d"
    local text
    text=$(cat)
    if [[ $text == Types:* ]]; then
        : >"$d/apt/sources.list"
        printf '%s\n' "$text" >"$d/apt/sources.list.d/debian.sources"
    else
        printf '%s\n' "$text" >"$d/apt/sources.list"
    fi
    printf 'ID=%s\nVERSION_CODENAME=%s\n' "$1" "$2" >"$d/os-release"
    umount /etc/apt 2>/dev/null || true
    umount /etc/os-release 2>/dev/null || true
    mount --bind "$d/apt" /etc/apt
    mount --bind "$d/os-release" /etc/os-release
}
dry() { # RELEASE [ENV...]: the dry run's KEY=VALUE lines
    local release=$1
    shift
    env "$@" "$RECIPE" --dry-run --release "$release" --repo "$WORK/repo" --cache "$WORK/cache" 2>&1
}
field() { sed -n "s/^$1=//p" <<<"$2"; }

section "the mirror"
fake_machine debian bookworm <<'EOF'
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://thirdparty.example/apt
Suites: cloud-sdk-bookworm
Components: main
EOF
out=$(dry bookworm)
check_eq "bookworm: apt's source for bookworm" http://mirror.example/debian "$(field mirror "$out")"
check_eq "bookworm: said where it came from" "apt source for bookworm" "$(field mirror_from "$out")"
out=$(dry trixie)
check_eq "trixie on a bookworm machine: the machine's Debian mirror" http://mirror.example/debian "$(field mirror "$out")"
check_contains "trixie: said where it came from" "apt source for bookworm, this machine's release" "$out"
out=$(dry trixie APLSPAWN_DEBIAN_MIRROR=http://override.example/debian/)
check_eq "APLSPAWN_DEBIAN_MIRROR first (trailing / dropped)" http://override.example/debian "$(field mirror "$out")"

fake_machine debian bookworm <<'EOF'
deb [signed-by=/usr/share/keyrings/x.gpg] http://security.example/debian-security bookworm-security main
deb http://list.example/debian/ bookworm main
deb http://list.example/debian trixie main
EOF
check_eq "one-line format: the source for trixie itself when listed" http://list.example/debian \
    "$(field mirror "$(dry trixie)")"
check_eq "one-line format: options skipped, security source not taken" http://list.example/debian \
    "$(field mirror "$(dry bookworm)")"

fake_machine debian bookworm <<'EOF'
deb https://thirdparty.example/apt cloud-sdk-bookworm main
EOF
check_eq "no Debian source: deb.debian.org" http://deb.debian.org/debian "$(field mirror "$(dry trixie)")"
fake_machine ubuntu noble <<'EOF'
deb http://archive.ubuntu.example/ubuntu noble main
EOF
check_eq "another OS's mirror is never taken" http://deb.debian.org/debian "$(field mirror "$(dry trixie)")"

out=$(dry sid) && rc=0 || rc=$?
check_eq "an unknown release: exit 1" 1 "$rc"
check_contains "an unknown release: says which it builds" "this recipe builds bookworm trixie" "$out"
require_ok "the mirror"

section "one cache key and one set of entries per release"
fake_machine debian bookworm <<'EOF'
deb http://mirror.example/debian bookworm main
EOF
b=$(dry bookworm)
t=$(dry trixie)
KB=$(field key "$b")
KT=$(field key "$t")
check_match "bookworm has a key" '^[0-9a-f]{64}$' "$KB"
check_match "trixie has a key" '^[0-9a-f]{64}$' "$KT"
check_not "the keys differ" test "$KB" = "$KT"
check_eq "bookworm's entry is under bookworm/" "$WORK/cache/bookworm/$KB" "$(field entry "$b")"
check_eq "nothing cached yet" no "$(field cached "$b")"
require_ok "the keys"

# Entries made by hand: an image file and its SHA256SUMS, all an entry needs. AGE in minutes.
entry() { # DIR IMAGE_NAME AGE
    mkdir -p "$1"
    printf 'fake image %s\n' "$1" >"$1/$2"
    (cd "$1" && sha256sum "$2" >SHA256SUMS)
    touch -d "-$3 min" "$1"
}
old() { printf '%064x' "$1"; } # a key that is not the recipe's
entry "$WORK/cache/bookworm/$KB" debian-bookworm-latest.img 60
entry "$WORK/cache/bookworm/$(old 1)" debian-bookworm-latest.img 10
entry "$WORK/cache/bookworm/$(old 2)" debian-bookworm-latest.img 20
entry "$WORK/cache/$(old 3)" debian-bookworm-latest.img 5 # the layout before: bookworm's
entry "$WORK/cache/trixie/$KT" debian-trixie-latest.img 60
entry "$WORK/cache/trixie/$(old 4)" debian-trixie-latest.img 1
entry "$WORK/cache/trixie/$(old 5)" debian-trixie-latest.img 30
mkdir -p "$WORK/cache/bookworm/.build-$KB.left" # a build killed with SIGKILL
mkdir -p "$WORK/repo"
echo "0000000000000000000000000000000000000000000000000000000000000000  other-os-latest.img" \
    >"$WORK/repo/SHA256SUMS"
check_eq "the dry run sees the entry" yes "$(field cached "$(dry bookworm)")"

out=$("$RECIPE" --release bookworm --repo "$WORK/repo" --cache "$WORK/cache" 2>"$WORK/b.err") && rc=0 || rc=$?
show "build-default-image --release bookworm" "$(<"$WORK/b.err")"
check_eq "bookworm: exit 0 from the cache" 0 "$rc"
check_eq "bookworm: prints the published image" "$WORK/repo/debian-bookworm-latest.img" "$(tail -n1 <<<"$out")"
check_contains "bookworm: taken from the cache" "cached: " "$(<"$WORK/b.err")"
check "bookworm: the current entry stays" test -d "$WORK/cache/bookworm/$KB"
check "bookworm: the newest previous entry stays (the old layout's, 5 min)" test -d "$WORK/cache/$(old 3)"
check_not "bookworm: an older one is pruned (10 min)" test -e "$WORK/cache/bookworm/$(old 1)"
check_not "bookworm: an older one is pruned (20 min)" test -e "$WORK/cache/bookworm/$(old 2)"
check_not "bookworm: a killed build's leftovers are removed" test -e "$WORK/cache/bookworm/.build-$KB.left"
for k in "$KT" "$(old 4)" "$(old 5)"; do
    check "bookworm's run leaves trixie's entry …${k: -8} alone" test -d "$WORK/cache/trixie/$k"
done
check_eq "bookworm: published, the same file as the cache's" \
    "$(cat "$WORK/cache/bookworm/$KB/debian-bookworm-latest.img")" "$(cat "$WORK/repo/debian-bookworm-latest.img")"
check_eq "SHA256SUMS keeps the other image's line and has bookworm's" \
    "other-os-latest.img debian-bookworm-latest.img" "$(awk '{print $2}' "$WORK/repo/SHA256SUMS" | sort -r | tr '\n' ' ' | sed 's/ $//')"

out=$("$RECIPE" --release trixie --repo "$WORK/repo" --cache "$WORK/cache" 2>"$WORK/t.err") && rc=0 || rc=$?
show "build-default-image --release trixie" "$(<"$WORK/t.err")"
check_eq "trixie: exit 0 from the cache" 0 "$rc"
check "trixie: the current entry stays" test -d "$WORK/cache/trixie/$KT"
check "trixie: the newest previous stays (1 min)" test -d "$WORK/cache/trixie/$(old 4)"
check_not "trixie: an older one is pruned (30 min)" test -e "$WORK/cache/trixie/$(old 5)"
check "trixie's run leaves bookworm's current entry alone" test -d "$WORK/cache/bookworm/$KB"
check "trixie's run leaves bookworm's previous entry alone" test -d "$WORK/cache/$(old 3)"
(cd "$WORK/repo" && sha256sum --quiet --check SHA256SUMS --ignore-missing) >/dev/null 2>&1 &&
    pass "SHA256SUMS matches both published images" || fail "SHA256SUMS does not match the published images"
check_eq "SHA256SUMS: three lines, one per image" \
    "debian-bookworm-latest.img debian-trixie-latest.img other-os-latest.img" \
    "$(awk '{print $2}' "$WORK/repo/SHA256SUMS" | sort | tr '\n' ' ' | sed 's/ $//')"

"$RECIPE" --release trixie --repo "$WORK/repo" --cache "$WORK/cache" >/dev/null 2>"$WORK/t2.err" && rc=0 || rc=$?
check_eq "trixie again: exit 0" 0 "$rc"
check_contains "trixie again: nothing changed" "already published and identical" "$(<"$WORK/t2.err")"
finish
