"""The groups part of aplspawn's benchmarks (issue 19), run by bench.py (`--only groups`).

Target: spawn of a fleet of N (10) on two images is no slower (<= 1.05 x) than the same fleet on
one image, same run. Three variants alternate run by run, each a fleet of N in two groups of N/2
(the plain one: today's file without groups, N containers):
  plain      no groups: one implicit group, one image                (what the original did)
  groups-1   two groups, both on the default image: one lower layer
  groups-2   two groups, the second on a copy of the image that differs in one unused byte (its
             own file, checksum, loop device, lower layer and page cache): two lower layers
The copy boots the same system, so the difference is what a second image costs aplspawn (a
second attach, mount and cold page cache), not what another release costs its guest.
"""

import hashlib
import os
import shutil

# The shared harness (sh, timed, log, settle, check_clean, ...): bench.py's running module, set
# by it before use (importing bench.py here would make a second copy with its own globals).
bench = None

VARIANTS = ["plain", "groups-1", "groups-2"]
COPY_NAME = "debian-bookworm-copy.img"


def make_copy_repo(env):
    """A repo with the default image and a copy differing in one byte after the partition."""
    repo = os.path.join(env.dir, "groups-repo")
    os.makedirs(repo, exist_ok=True)
    src = env.image
    a = os.path.join(repo, "debian-bookworm-latest.img")
    b = os.path.join(repo, COPY_NAME)
    shutil.copyfile(src, a)
    shutil.copyfile(src, b)
    end = bench.sh(["partx", "-g", "-n", "1", "-o", "END", b]).stdout.split()
    off = (int(end[0]) + 1) * 512 + 4096  # in the gap before the backup GPT
    with open(b, "r+b") as f:
        f.seek(off)
        f.write(b"aplspawn-groups-bench-copy")
    lines = []
    for p in (a, b):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 23), b""):
                h.update(chunk)
        lines.append(f"{h.hexdigest()}  {os.path.basename(p)}\n")
    with open(os.path.join(repo, "SHA256SUMS"), "w") as f:
        f.writelines(lines)
    return repo


def config(env, variant, n, repo):
    path = os.path.join(env.dir, "cfg", f"groups-{variant}-{n}.yaml")
    work = os.path.join(env.dir, "aplspawn-groups")
    head = f"""bridge: {{name: {bench.BRIDGE}, address: {bench.GATEWAY}, netPrefix: {bench.PREFIX}}}
ipt: {{chainName: APLBENCH}}
path: {{workingDirectory: {work}}}
image: {{url: "file://{repo}/debian-bookworm-latest.img"}}
cntVariables: {{userName: test, sshPublicKeyPath: {env.key}.pub}}
"""
    if variant == "plain":
        body = f"""cntCommon:
  amount: {n}
  sshPrivateKeyPath: {env.key}
  ipRange: [10.78.0.10, 10.78.0.200]
  nameTmpl: {bench.NAME_TMPL}
  homePath: {work}/machines
  readyTimeout: 90
"""
    else:
        half = n // 2
        second = (f'    image: {{url: "file://{repo}/{COPY_NAME}"}}\n' if variant == "groups-2" else "")
        body = f"""cntCommon:
  sshPrivateKeyPath: {env.key}
  homePath: {work}/machines
  readyTimeout: 90
groups:
  one:
    amount: {half}
    ipRange: [10.78.0.10, 10.78.0.100]
  two:
    amount: {n - half}
    ipRange: [10.78.0.100, 10.78.0.200]
{second}"""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(head + body)
    return path


def bench_groups(env, results):
    repo = make_copy_repo(env)
    n = env.args.groups_size
    cfgs = {v: config(env, v, n, repo) for v in VARIANTS}
    env.apl(cfgs["groups-2"], "getimage")  # both images, once, not timed
    results["groups"] = []
    for i in range(env.args.groups_runs):
        order = VARIANTS if i % 2 == 0 else list(reversed(VARIANTS))
        for v in order:
            logfile = os.path.join(env.logs, f"groups-{v}-{n}-{i}.log")
            own0 = bench.bench_cpu_seconds()
            r = bench.timed([env.bin, "-c", cfgs[v], "spawn"], logfile, env=env.env)
            cpu = bench.bench_cpu_seconds() - own0 if own0 is not None else None
            st = bench.timed([env.bin, "-c", cfgs[v], "stop"], logfile, env=env.env)
            cl = bench.timed([env.bin, "-c", cfgs[v], "cleanup"], logfile, env=env.env)
            rec = {"variant": v, "n": n, "run": i, "wall": r["wall"], "rc": r["rc"], "cpu_own": cpu,
                   "stop": st["wall"], "cleanup": cl["wall"]}
            results["groups"].append(rec)
            bench.log(f"groups {v:9} N={n} run {i}: {r['wall']:6.2f} s"
                      f"{'' if r['rc'] == 0 else '  FAILED (see ' + logfile + ')'}")
            if st["rc"] or cl["rc"]:
                raise RuntimeError(f"stop/cleanup failed, see {logfile}")
            bench.check_clean(env, f"groups {v}")
            bench.settle(env)


def summarize(results):
    runs = results.get("groups") or []
    if not runs:
        return []
    med = {}
    for v in VARIANTS:
        ws = [r["wall"] for r in runs if r["variant"] == v and r["rc"] == 0]
        cpu = [r["cpu_own"] for r in runs if r["variant"] == v and r["rc"] == 0 and r["cpu_own"] is not None]
        med[v] = (bench.median(ws), min(ws) if ws else None, max(ws) if ws else None,
                  bench.median(cpu), sum(1 for r in runs if r["variant"] == v and r["rc"] != 0))
    n = runs[0]["n"]
    lines = ["### Groups: one image against two (spawn of N, same run)", "",
             f"Median of {len(runs) // len(VARIANTS)} alternating runs per variant, N = {n} "
             "(groups: two groups of N/2). Target: groups-2 / groups-1 <= 1.05.", "",
             "| variant | spawn s (min–max) | CPU s | failed |", "|---|---|---|---|"]
    for v in VARIANTS:
        m = med[v]
        lines.append(f"| {v} | {bench.fmt_s(m[0])} ({bench.fmt_s(m[1])}–{bench.fmt_s(m[2])}) | "
                     f"{bench.fmt_s(m[3])} | {m[4]} |")

    def ratio(a, b):
        return f"{med[a][0] / med[b][0]:.3f}" if med[a][0] and med[b][0] else "–"
    lines += ["", f"groups-2 / groups-1: **{ratio('groups-2', 'groups-1')}**; "
              f"groups-1 / plain: {ratio('groups-1', 'plain')}", ""]
    return lines
