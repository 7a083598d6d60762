"""The scale part of aplspawn's benchmarks (issue 16), run by bench.py (`--only scale`).

A base fleet (N = 10) and a large one (N = 100, one /24) are spawned alternately, run by run
(base, large, base, large, ...), each with the default config and image, and taken down again
with `aplspawn stop` + `cleanup`. Compared per container, large against base in the same run:
  spawn   wall time until every container answers SSH (spawn returns then), and the CPU of
          everything the run started (the bench's cpuacct cgroup), per container;
  stop    wall time of `aplspawn stop`, per container;
  memory  host memory the fleet holds once up: the bench's memory cgroup (every process of the
          fleet is in it: aplspawn puts containers into a memory cgroup of their own only with
          `resources`) and MemAvailable, before the spawn and 5 s after it returned, per container.
With each fleet up (each run): `aplspawn status` alternating with its floor, as many bare
`ssh … id -un` logins at once (bench.py's status bench, same options), --scale-status-runs
each; `ansible all -m ping` on `aplspawn inventory` (answers counted); and what the fleet holds
of the host's limits (kernel keys per user, the neighbour table, conntrack, mounts, ptys, tasks,
inotify instances) and aplspawn's own peak of open files, threads and child processes.
Targets (issue 16): spawn per container at 100 <= 1.05 x at 10; stop linear (per container
<= 1.05 x); status <= 1.10 x the bare logins; ping 100/100.
"""

import json
import os
import re
import subprocess
import threading
import time

# The shared harness: bench.py's running module, set by it before use.
bench = None


class ProcSampler(threading.Thread):
    """Peak open files, threads and child processes (by program name) of one process."""

    def __init__(self, pid, period=0.05):
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.fds = self.threads = self.children = 0
        self.by_prog = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.fds = max(self.fds, len(os.listdir(f"/proc/{self.pid}/fd")))
                tids = os.listdir(f"/proc/{self.pid}/task")
                self.threads = max(self.threads, len(tids))
                kids = []
                for t in tids:
                    try:
                        with open(f"/proc/{self.pid}/task/{t}/children") as f:
                            kids += f.read().split()
                    except OSError:
                        pass
                self.children = max(self.children, len(kids))
                progs = {}
                for k in kids:
                    try:
                        with open(f"/proc/{k}/comm") as f:
                            c = f.read().strip()
                    except OSError:
                        continue
                    progs[c] = progs.get(c, 0) + 1
                for c, v in progs.items():
                    self.by_prog[c] = max(self.by_prog.get(c, 0), v)
            except OSError:
                return
            self.stop.wait(self.period)


def timed_sampled(argv, logfile, env):
    """bench.timed with a ProcSampler on the process."""
    with open(logfile, "ab") as lf:
        lf.write(("$ " + " ".join(argv) + "\n").encode())
        lf.flush()
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf, env=env)
        s = ProcSampler(p.pid)
        s.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        s.stop.set()
        s.join()
        rc = os.waitstatus_to_exitcode(status)
        lf.write(f"# exit {rc} after {wall:.3f} s\n".encode())
    return {"wall": wall, "rc": rc, "cpu": ru.ru_utime + ru.ru_stime, "peak_fds": s.fds,
            "peak_threads": s.threads, "peak_children": s.children, "peak_children_by_prog": s.by_prog}


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return None


def memcg_bytes(env):
    if not env.args.memcg:
        return None
    try:
        with open(os.path.join(env.args.memcg, "memory.usage_in_bytes")) as f:
            return int(f.read())
    except OSError:
        return None


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def host_counts(bridge):
    """What a running fleet holds of the host's limits (docs/spawn.md, Host limits)."""
    c = {}
    try:
        with open("/proc/key-users") as f:  # "uid: usage nkeys/nikeys qnkeys/maxkeys qnbytes/maxbytes"
            c["key_users"] = {l.split(":")[0].strip(): " ".join(l.split(":", 1)[1].split()[2:])
                              for l in f if ":" in l}
    except OSError:
        pass
    try:
        with open("/proc/net/stat/arp_cache") as f:  # entries (hex), the whole table: every namespace
            f.readline()
            c["arp_entries_all_namespaces"] = int(f.readline().split()[0], 16)
    except (OSError, ValueError, IndexError):
        pass
    c["conntrack_count_this_netns"] = read_int("/proc/sys/net/netfilter/nf_conntrack_count")
    c["conntrack_max"] = read_int("/proc/sys/net/netfilter/nf_conntrack_max")
    with open("/proc/self/mountinfo") as f:
        c["mounts_this_namespace"] = sum(1 for _ in f)
    c["ptys"] = read_int("/proc/sys/kernel/pty/nr")
    with open("/proc/loadavg") as f:
        c["tasks_machine"] = int(f.read().split()[3].split("/")[1])
    inotify = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    if os.readlink(f"/proc/{p}/fd/{fd}") == "anon_inode:inotify":
                        inotify += 1
                except OSError:
                    pass
        except OSError:
            pass
    c["inotify_instances_this_pid_namespace"] = inotify
    r = bench.sh(["ip", "-o", "link", "show", "master", bridge], check=False)
    c["bridge_ports"] = len(r.stdout.splitlines())
    return c


def ansible_ping(env, cfg, n, logfile):
    inv = os.path.join(env.dir, f"scale-inventory-{n}.json")
    with open(inv, "w") as f:
        f.write(env.apl(cfg, "inventory", "--format", "json").stdout)
    home = os.path.join(env.dir, "scale-ansible")
    os.makedirs(home, exist_ok=True)
    cfgfile = os.path.join(home, "ansible.cfg")
    open(cfgfile, "w").close()
    cp = os.path.join(home, f"cp-{time.monotonic_ns()}")
    aenv = dict(env.env, ANSIBLE_HOME=home, ANSIBLE_CONFIG=cfgfile, ANSIBLE_NOCOLOR="1",
                ANSIBLE_LOCAL_TEMP=os.path.join(home, "tmp"), ANSIBLE_SSH_CONTROL_PATH_DIR=cp,
                ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_INVENTORY_ENABLED="yaml",
                ANSIBLE_HOST_KEY_CHECKING="True")
    argv = ["ansible", "-i", inv, "all", "-m", "ping", "-f", str(env.args.scale_forks), "-o"]
    t0 = time.monotonic()
    r = bench.sh(argv, check=False, timeout=900, env=aenv)
    wall = time.monotonic() - t0
    bench.sh(["pkill", "-f", cp], check=False)  # its ControlPersist masters
    with open(logfile, "a") as f:
        f.write("$ " + " ".join(argv) + "\n" + r.stdout + r.stderr)
    ok = len(re.findall(r'\| SUCCESS =>.*"ping": "pong"', r.stdout))
    return {"wall": wall, "pong": ok, "rc": r.returncode}


def one_run(env, n, run, results, with_fleet_checks):
    cfg = env.config(n)
    logfile = os.path.join(env.logs, f"scale-{n}-{run}.log")
    rec = {"n": n, "run": run, "load_before": bench.loadavg()}
    bench.settle(env)
    m0, a0 = memcg_bytes(env), mem_available_kib()
    own0 = bench.bench_cpu_seconds()
    s = timed_sampled([env.bin, "-c", cfg, "spawn"], logfile, env.env)
    rec["spawn"] = s["wall"]
    rec["spawn_rc"] = s["rc"]
    rec["spawn_cpu"] = bench.bench_cpu_seconds() - own0 if own0 is not None else None
    rec["aplspawn_peak"] = {k: s[k] for k in ("peak_fds", "peak_threads", "peak_children",
                                              "peak_children_by_prog")}
    if s["rc"] != 0:
        rec["failed"] = f"spawn exit {s['rc']} (see {logfile})"
    time.sleep(5)  # the fleet settles: the boots' last units, the readiness logins' user managers
    m1, a1 = memcg_bytes(env), mem_available_kib()
    rec["memcg_per_container_mib"] = (m1 - m0) / n / 2**20 if m0 is not None and m1 is not None else None
    rec["memavail_per_container_mib"] = (a0 - a1) / n / 1024 if a0 and a1 else None
    if with_fleet_checks and s["rc"] == 0:
        known_hosts = os.path.join(env.dir, "aplspawn", "state", "known_hosts")
        rec.update({"status": [], "status_cpu": [], "bare": [], "bare_cpu": [], "status_failed": []})
        for i in range(env.args.scale_status_runs):
            c0 = bench.bench_cpu_seconds()
            st = bench.timed([env.bin, "-c", cfg, "status"], logfile, env=env.env)
            c1 = bench.bench_cpu_seconds()
            wall, ok = bench.bare_logins(env, n, known_hosts)
            c2 = bench.bench_cpu_seconds()
            rec["status"].append(st["wall"])
            rec["bare"].append(wall)
            if c0 is not None:
                rec["status_cpu"].append(c1 - c0)
                rec["bare_cpu"].append(c2 - c1)
            if st["rc"] or not ok:
                rec["status_failed"].append(f"run {i}: status exit {st['rc']}, bare logins {'ok' if ok else 'FAILED'}")
            bench.log(f"scale N={n} status run {i}: status {st['wall']:.2f} s (exit {st['rc']}), "
                      f"{n} bare logins {wall:.2f} s")
        rec["host_counts"] = host_counts(bench.BRIDGE)
        rec["ping"] = ansible_ping(env, cfg, n, logfile)
        bench.log(f"scale N={n} ansible ping: {rec['ping']['pong']}/{n} in {rec['ping']['wall']:.1f} s")
    # Every size stops a fleet in the same state: the logins above ended, and the user managers
    # they started stopped (logind keeps one 10 s after the user's last session). Stopping right
    # after the ping measured the teardown of N SSH sessions along with the stop.
    time.sleep(12)
    c0 = bench.bench_cpu_seconds()
    st = timed_sampled([env.bin, "-c", cfg, "stop"], logfile, env.env)
    rec["stop"] = st["wall"]
    rec["stop_cpu"] = bench.bench_cpu_seconds() - c0 if c0 is not None else None
    cl = bench.timed([env.bin, "-c", cfg, "cleanup"], logfile, env=env.env)
    rec["cleanup"] = cl["wall"]
    rec["load_after"] = bench.loadavg()
    if st["rc"] or cl["rc"]:
        raise RuntimeError(f"stop/cleanup of {n} failed, see {logfile}")
    bench.log(f"scale N={n} run {run}: spawn {s['wall']:.2f} s ({s['wall'] / n:.3f}/container, "
              f"cpu {rec['spawn_cpu'] or 0:.1f} s), stop {st['wall']:.2f} s, "
              f"memory {rec['memcg_per_container_mib'] or 0:.1f} MiB/container (cgroup), "
              f"load {rec['load_before'][0]:.1f}")
    results["scale"].append(rec)
    bench.check_clean(env, f"scale N={n}")


def bench_scale(env, results):
    sizes = env.args.scale_sizes
    results["scale"] = []
    results["scale_sizes"] = sizes
    for run in range(env.args.scale_runs):
        for n in sizes:
            one_run(env, n, run, results, with_fleet_checks=True)


def summarize(results):
    runs = results.get("scale") or []
    if not runs:
        return []
    sizes = results.get("scale_sizes") or sorted({r["n"] for r in runs})
    base = sizes[0]
    med = bench.median

    def of(n, key, per=False):
        xs = [r[key] / (n if per else 1) for r in runs if r["n"] == n and r.get(key) is not None
              and r.get("spawn_rc") == 0]
        return med(xs), xs

    lines = ["### Scale: a fleet of 100 against a fleet of 10 (same run, alternating)", "",
             f"Each size {max(sum(1 for r in runs if r['n'] == n) for n in sizes)} runs, "
             f"alternating {', '.join(map(str, sizes))}; medians, per container (samples in brackets).", "",
             "| N | spawn s | spawn s / container | CPU-s / container | stop s | stop s / container | "
             "memory MiB / container (cgroup; MemAvailable) | failed |",
             "|---|---|---|---|---|---|---|---|"]
    per = {}
    for n in sizes:
        sp, sps = of(n, "spawn")
        spc, _ = of(n, "spawn", per=True)
        cpu, _ = of(n, "spawn_cpu", per=True)
        stp, stps = of(n, "stop")
        stpc, _ = of(n, "stop", per=True)
        stcpu, _ = of(n, "stop_cpu", per=True)
        mem, _ = of(n, "memcg_per_container_mib")
        mav, _ = of(n, "memavail_per_container_mib")
        failed = sum(1 for r in runs if r["n"] == n and r.get("spawn_rc"))
        per[n] = (spc, cpu, stpc, stcpu)
        lines.append(f"| {n} | {bench.fmt_s(sp)} ({', '.join(f'{x:.1f}' for x in sps)}) | "
                     f"{spc:.3f} | {cpu:.3f} | {bench.fmt_s(stp)} ({', '.join(f'{x:.1f}' for x in stps)}) | "
                     f"{stpc:.3f} | {mem if mem is None else f'{mem:.1f}'}; "
                     f"{mav if mav is None else f'{mav:.1f}'} | {failed} |"
                     if sp else f"| {n} | – | – | – | – | – | – | {failed} |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    for n in sizes[1:]:
        if per[n][0] and per[base][0]:
            r = per[n][0] / per[base][0]
            lines.append(f"| spawn per container, N={n} <= 1.05 x N={base} | {r:.2f} x "
                         f"(CPU per container {per[n][1] / per[base][1]:.2f} x) | "
                         f"{'met' if r <= 1.05 else 'NOT met'} |")
        if per[n][2] and per[base][2]:
            r = per[n][2] / per[base][2]
            cpu_ratio = f" (CPU per container {per[n][3] / per[base][3]:.2f} x)" if per[n][3] and per[base][3] else ""
            lines.append(f"| stop per container, N={n} <= 1.05 x N={base} (linear) | {r:.2f} x{cpu_ratio} | "
                         f"{'met' if r <= 1.05 else 'NOT met'} |")
        st = [x for r in runs if r["n"] == n for x in r.get("status", [])]
        bare = [x for r in runs if r["n"] == n for x in r.get("bare", [])]
        if st and bare:
            r = med(st) / med(bare)
            lines.append(f"| status of {n} <= 1.10 x {n} bare logins | {med(st):.2f} s / {med(bare):.2f} s = "
                         f"{r:.2f} x | {'met' if r <= 1.10 else 'NOT met'} |")
        pings = [r["ping"] for r in runs if r["n"] == n and r.get("ping")]
        if pings:
            worst = min(p["pong"] for p in pings)
            lines.append(f"| ansible -m ping {n}/{n} | {worst}/{n} (worst run; "
                         f"{med([p['wall'] for p in pings]):.1f} s) | {'met' if worst == n else 'NOT met'} |")
    lines += [""]
    for n in sizes:
        rs = [r for r in runs if r["n"] == n and r.get("host_counts")]
        if not rs:
            continue
        hc = rs[-1]["host_counts"]
        cpus = [x for r in rs for x in r.get("status_cpu", [])]
        bcpus = [x for r in rs for x in r.get("bare_cpu", [])]
        lines += [f"With {n} up (last run): " + ", ".join(f"{k} {json.dumps(v)}" for k, v in hc.items()) + ".",
                  ""]
        if cpus and bcpus:
            lines += [f"CPU of status / bare logins at N={n}: {med(cpus):.2f} / {med(bcpus):.2f} CPU-s.", ""]
    for n in sizes:
        peaks = [r["aplspawn_peak"] for r in runs if r["n"] == n and r.get("aplspawn_peak")]
        if peaks:
            progs = {}
            for p in peaks:
                for k, v in p["peak_children_by_prog"].items():
                    progs[k] = max(progs.get(k, 0), v)
            lines.append(f"aplspawn spawn of {n}, peaks: {max(p['peak_fds'] for p in peaks)} open files, "
                         f"{max(p['peak_threads'] for p in peaks)} threads, "
                         f"{max(p['peak_children'] for p in peaks)} child processes at once "
                         f"({', '.join(f'{k} {v}' for k, v in sorted(progs.items()))}).")
    lines.append("")
    return lines
