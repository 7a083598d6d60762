"""The snapshots part of aplspawn's benchmarks (issue 15), run by bench.py (`--only snapshots`).

Two measurements, each against a baseline of the same run:
  snapshot  `aplspawn snapshot` of one running container of the default image, with ~100 MiB of
            changes (50 MiB that do not compress, 50 MiB of the image's own programs, which do)
            against the same container without changes: time (stop, copy, start again, SSH) and
            the image's size.
  reset     `aplspawn reset` of 10 running containers, each with ~10 MiB of changes, against a
            fresh `aplspawn spawn` of the same 10 (empty upper directories, same image).
            Target (issue 15): reset <= 1.5 x spawn.
"""

import os

# The shared harness: bench.py's running module, set by it before use.
bench = None


def config(env, n):
    path = os.path.join(env.dir, "cfg", f"snapshots-{n}.yaml")
    work = os.path.join(env.dir, "aplspawn-snapshots")
    text = f"""bridge: {{name: {bench.BRIDGE}, address: {bench.GATEWAY}, netPrefix: {bench.PREFIX}}}
ipt: {{chainName: APLBENCH}}
path: {{workingDirectory: {work}}}
image: {{os: debian, release: bookworm, repo: {env.args.image_repo}}}
cntVariables: {{userName: test, sshPublicKeyPath: {env.key}.pub}}
cntCommon:
  amount: {n}
  sshPrivateKeyPath: {env.key}
  ipRange: [10.78.0.10, 10.78.0.200]
  nameTmpl: {bench.NAME_TMPL}
  homePath: {work}/machines
  readyTimeout: 120
"""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path, work


def pid_of(env, cfg, name):
    return env.apl(cfg, "pids", name).stdout.split()[0]


def write_changes(root, mib_random, mib_programs):
    """Files in the container's root (through /proc/PID/root): random bytes and copies of
    the image's programs, about the sizes asked."""
    d = os.path.join(root, "opt", "bench-changes")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "random.bin"), "wb") as f:
        for _ in range(mib_random):
            f.write(os.urandom(1 << 20))
    programs = sorted(os.path.join(root, "usr/bin", p) for p in os.listdir(os.path.join(root, "usr/bin")))
    want, done, i = mib_programs << 20, 0, 0
    with open(os.path.join(d, "programs.bin"), "wb") as out:
        while done < want and programs:
            p = programs[i % len(programs)]
            i += 1
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                data = f.read(want - done)
            out.write(data)
            done += len(data)


def bench_snapshots(env, results):
    results["snapshots"] = []
    cfg, work = config(env, 1)
    name = env.names(1)[0]
    store = os.path.join(work, "images")
    env.apl(cfg, "getimage")
    for i in range(env.args.snapshot_runs):
        order = ["unchanged", "changed"] if i % 2 == 0 else ["changed", "unchanged"]
        for variant in order:
            logfile = os.path.join(env.logs, f"snapshot-{variant}-{i}.log")
            env.apl(cfg, "spawn")
            if variant == "changed":
                write_changes(f"/proc/{pid_of(env, cfg, name)}/root", 50, 50)
            bench.sh(["sync"])
            bench.settle(env)
            r = bench.timed([env.bin, "-c", cfg, "snapshot", "--force", name, f"bench-{variant}"],
                            logfile, env=env.env)
            size = os.path.getsize(os.path.join(store, f"bench-{variant}.img")) if r["rc"] == 0 else None
            rec = {"kind": "snapshot", "variant": variant, "run": i, "wall": r["wall"], "rc": r["rc"],
                   "size": size}
            results["snapshots"].append(rec)
            bench.log(f"snapshot {variant:9} run {i}: {r['wall']:6.2f} s, "
                      f"{(size or 0) / 2**20:.1f} MiB{'' if r['rc'] == 0 else '  FAILED (see ' + logfile + ')'}")
            env.apl(cfg, "stop")
            env.apl(cfg, "cleanup")
    base = os.path.join(store, "debian-bookworm-latest.img")
    results["snapshots_base_size"] = os.path.getsize(os.path.realpath(base))
    env.apl(cfg, "cleanup", "--images", "--force")
    bench.check_clean(env, "snapshots")

    n = env.args.reset_size
    cfg, work = config(env, n)
    env.apl(cfg, "getimage")
    names = env.names(n)
    for i in range(env.args.snapshot_runs):
        logfile = os.path.join(env.logs, f"reset-{n}-{i}.log")
        bench.settle(env)
        sp = bench.timed([env.bin, "-c", cfg, "spawn"], logfile, env=env.env)
        for c in names:
            write_changes(f"/proc/{pid_of(env, cfg, c)}/root", 5, 5)
        bench.sh(["sync"])
        bench.settle(env)
        rs = bench.timed([env.bin, "-c", cfg, "reset"], logfile, env=env.env)
        left = [c for c in names
                if os.path.exists(f"/proc/{pid_of(env, cfg, c)}/root/opt/bench-changes")]
        rec = {"kind": "reset", "n": n, "run": i, "spawn": sp["wall"], "reset": rs["wall"],
               "rc": sp["rc"] or rs["rc"] or (1 if left else 0)}
        results["snapshots"].append(rec)
        bench.log(f"reset N={n} run {i}: spawn {sp['wall']:6.2f} s, reset {rs['wall']:6.2f} s"
                  f"{'' if rec['rc'] == 0 else '  FAILED (see ' + logfile + ')'}")
        env.apl(cfg, "stop")
        env.apl(cfg, "cleanup")
        bench.check_clean(env, "reset")
    env.apl(cfg, "cleanup", "--images", "--force")


def summarize(results):
    runs = results.get("snapshots") or []
    if not runs:
        return []
    med = bench.median
    lines = ["### Snapshots and reset (same run)", ""]
    snaps = {v: [r for r in runs if r["kind"] == "snapshot" and r["variant"] == v and r["rc"] == 0]
             for v in ("unchanged", "changed")}
    base = results.get("snapshots_base_size")
    lines += [f"`snapshot` of one running container of the default image ({base / 2**20:.1f} MiB) "
              "without changes and with ~100 MiB of them (50 MiB random, 50 MiB of its programs), "
              f"median of {len(snaps['changed'])} runs: stop, copy, start again and SSH-ready.", "",
              "| container | snapshot s (min–max) | image MiB | failed |", "|---|---|---|---|"]
    for v, rs in snaps.items():
        ws = [r["wall"] for r in rs]
        failed = sum(1 for r in runs if r["kind"] == "snapshot" and r["variant"] == v and r["rc"] != 0)
        size = med([r["size"] for r in rs])
        lines.append(f"| {v} | {bench.fmt_s(med(ws))} ({bench.fmt_s(min(ws) if ws else None)}–"
                     f"{bench.fmt_s(max(ws) if ws else None)}) | "
                     f"{size / 2**20:.1f} | {failed} |" if size else f"| {v} | – | – | {failed} |")
    resets = [r for r in runs if r["kind"] == "reset" and r["rc"] == 0]
    if resets:
        sp, rs = med([r["spawn"] for r in resets]), med([r["reset"] for r in resets])
        n = resets[0]["n"]
        failed = sum(1 for r in runs if r["kind"] == "reset" and r["rc"] != 0)
        lines += ["", f"`reset` of {n} running containers (~10 MiB of changes each) against a fresh "
                  f"`spawn` of the same {n}, median of {len(resets)} runs (failed: {failed}). "
                  "Target: reset / spawn <= 1.5.", "",
                  "| spawn s | reset s | reset / spawn |", "|---|---|---|",
                  f"| {bench.fmt_s(sp)} | {bench.fmt_s(rs)} | **{rs / sp:.2f}** |", ""]
    return lines
