"""The Ansible part of aplspawn's benchmarks (issue 16), run by bench.py (`--only ansible`).

One fleet of N (10) containers; a fixed playbook (bench/ansible-play.yml: facts, then copy,
lineinfile, file, user, command and systemd with become) runs against it with two inventories,
alternating run by run:
  defaults  the same hosts with only what reaching them needs (address, user, key, aplspawn's
            known_hosts): Ansible discovers the interpreter and runs without pipelining
  aplspawn  `aplspawn inventory` as it is (pipelining on for the fleet group, the interpreter given)
Ansible itself runs with its defaults in both (forks 5, its ssh_args: ControlPersist 60 s), each
run with a fresh control socket directory, so no run reuses another's connections.
Target (issue 16): aplspawn <= 0.7 x defaults.
"""

import json
import os

# The shared harness: bench.py's running module, set by it before use.
bench = None

VARIANTS = ["defaults", "aplspawn"]
EXPERIMENTS = {  # --ansible-experiment NAME adds a variant: aplspawn's inventory plus these vars
    "nocompress": {"ansible_ssh_args": "-o ControlMaster=auto -o ControlPersist=60s"},
}
PLAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ansible-play.yml")


def defaults_inventory(full):
    """aplspawn's JSON inventory without what aplspawn adds for speed."""
    inv = json.loads(json.dumps(full))
    fleet = inv["all"]["children"]["aplspawned"]
    fleet.pop("vars", None)
    for h in fleet["hosts"].values():
        h.pop("ansible_python_interpreter", None)
    return inv


def bench_ansible(env, results):
    n = env.args.ansible_size
    cfg = env.config(n)
    results["ansible"] = []
    env.apl(cfg, "spawn", timeout=900)
    full = json.loads(env.apl(cfg, "inventory", "--format", "json").stdout)
    invs = {"aplspawn": os.path.join(env.dir, "ansible-aplspawn.json"),
            "defaults": os.path.join(env.dir, "ansible-defaults.json")}
    with open(invs["aplspawn"], "w") as f:
        json.dump(full, f)
    with open(invs["defaults"], "w") as f:
        json.dump(defaults_inventory(full), f)
    variants = list(VARIANTS)
    for name in filter(None, env.args.ansible_experiment.split(",")):
        inv = json.loads(json.dumps(full))
        inv["all"]["children"]["aplspawned"].setdefault("vars", {}).update(EXPERIMENTS[name])
        invs[name] = os.path.join(env.dir, f"ansible-{name}.json")
        with open(invs[name], "w") as f:
            json.dump(inv, f)
        variants.append(name)
    home = os.path.join(env.dir, "ansible-home")
    os.makedirs(home, exist_ok=True)
    cfgfile = os.path.join(home, "ansible.cfg")
    open(cfgfile, "w").close()
    # One warm-up run (not counted): the containers' first logins, page cache of Ansible itself.
    for i in range(-1, env.args.ansible_runs):
        order = variants if i % 2 == 0 else list(reversed(variants))
        for v in order:
            cp = os.path.join(home, f"cp-{v}-{i + 1}")
            aenv = dict(env.env, ANSIBLE_HOME=home, ANSIBLE_CONFIG=cfgfile,
                        ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"),
                        ANSIBLE_SSH_CONTROL_PATH_DIR=cp, ANSIBLE_NOCOLOR="1",
                        ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_INVENTORY_ENABLED="yaml")
            logfile = os.path.join(env.logs, f"ansible-{v}-{i + 1}.log")
            bench.settle(env)
            c0 = bench.bench_cpu_seconds()
            r = bench.timed(["ansible-playbook", "-i", invs[v], PLAY], logfile, env=aenv)
            c1 = bench.bench_cpu_seconds()
            bench.sh(["pkill", "-f", cp], check=False)  # its ControlPersist masters
            with open(logfile) as f:
                ok = "failed=0" in f.read() and r["rc"] == 0
            if i < 0:
                bench.log(f"ansible {v:8} warm-up: {r['wall']:6.2f} s")
                continue
            # CPU of everything (the bench's cpuacct cgroup) less ansible-playbook's own process
            # tree: the containers' side of every task, and the ssh masters Ansible detached.
            total = c1 - c0 if c0 is not None else None
            rec = {"variant": v, "n": n, "run": i, "wall": r["wall"], "cpu": r["cpu"],
                   "cpu_containers": total - r["cpu"] if total is not None else None,
                   "rc": 0 if ok else 1}
            results["ansible"].append(rec)
            bench.log(f"ansible {v:8} N={n} run {i}: {r['wall']:6.2f} s, controller CPU {r['cpu']:.1f} s"
                      f"{'' if ok else '  FAILED (see ' + logfile + ')'}")
    env.apl(cfg, "stop")
    env.apl(cfg, "cleanup")
    bench.check_clean(env, "ansible")


def summarize(results):
    runs = results.get("ansible") or []
    if not runs:
        return []
    med = {}
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    for v in variants:
        ok = [r for r in runs if r["variant"] == v and r["rc"] == 0]
        ws = [r["wall"] for r in ok]
        cc = [r["cpu_containers"] for r in ok if r.get("cpu_containers") is not None]
        med[v] = (bench.median(ws), min(ws) if ws else None, max(ws) if ws else None,
                  bench.median([r["cpu"] for r in ok]), sum(1 for r in runs if r["variant"] == v and r["rc"]),
                  bench.median(cc) if cc else None)
    n = runs[0]["n"]
    lines = ["### Ansible on the fleet: aplspawn's inventory against Ansible's defaults (same run)", "",
             f"bench/ansible-play.yml on N = {n} containers, median of {len(runs) // len(variants)} "
             "alternating runs. Target: aplspawn / defaults <= 0.7.", "",
             "| inventory | playbook s (min–max) | controller CPU s | other CPU s (containers, ssh masters) | failed |",
             "|---|---|---|---|---|"]
    for v in variants:
        m = med[v]
        lines.append(f"| {v} | {bench.fmt_s(m[0])} ({bench.fmt_s(m[1])}–{bench.fmt_s(m[2])}) | "
                     f"{bench.fmt_s(m[3])} | {bench.fmt_s(m[5]) if m[5] is not None else '–'} | {m[4]} |")
    if med["aplspawn"][0] and med["defaults"][0]:
        lines += ["", f"aplspawn / defaults: **{med['aplspawn'][0] / med['defaults'][0]:.2f}**", ""]
    return lines
