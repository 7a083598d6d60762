"""The networks part of aplspawn's benchmarks (issue 13), run by bench.py (`--only networks`).

Target: spawn of a fleet of N (10) through the container network namespaces aplspawn makes is
no slower than the path before it (nspawn's own veth on the bridge, the address set from the
host once the container's PID 1 was found), same run; and what setting the addresses before the
container starts saves. Three variants alternate run by run, each a fleet of N on the default
image, the same config but for the networks:
  bridge-path  the aplspawn binary of --before (the commit before the namespaces: nspawn
               --network-bridge=, address set after start); needs bench/run --before REF
  netns        this aplspawn: its network namespace per container, the fleet's bridge only
  netns+1      the same with one more (isolated) network per container: a second veth pair
Besides spawn's wall time and CPU, a prober sends ICMP echo requests from the host to every
container's address every 10 ms from the moment spawn starts and records when each first
answers: the address is there (on the netns path before systemd-nspawn even runs, on the
bridge path once aplspawn found the container's PID 1 and set it). The bridges' ARP retry
(retrans_time_ms) is 10 ms during this part, so that an address is seen within ~20 ms of
appearing (the default 1 s would hide the difference); every variant runs with it.
"""

import os
import select
import socket
import struct
import threading
import time

bench = None  # bench.py's running module, set by it (see groups_bench.py)

VARIANTS = ["bridge-path", "netns", "netns+1"]
EXTRA_BRIDGE = "aplbnx0"
EXTRA_NET = "10.79.0"


def config(env, variant, n):
    work = os.path.join(env.dir, "networks-before" if variant == "bridge-path" else "aplspawn")
    path = os.path.join(env.dir, "cfg", f"networks-{variant}-{n}.yaml")
    text = f"""bridge: {{name: {bench.BRIDGE}, address: {bench.GATEWAY}, netPrefix: {bench.PREFIX}}}
ipt: {{chainName: APLBENCH}}
path: {{workingDirectory: {work}}}
image: {{os: debian, release: bookworm, repo: {env.args.image_repo}}}
cntVariables: {{userName: test, sshPublicKeyPath: {env.key}.pub}}
cntCommon:
  amount: {n}
  sshPrivateKeyPath: {env.key}
  ipRange: [10.78.0.{bench.FIRST_OCTET}, 10.78.0.200]
  nameTmpl: {bench.NAME_TMPL}
  homePath: {work}/machines
  readyTimeout: 90
"""
    if variant == "netns+1":
        text += f"""  networks:
    extra: [{EXTRA_NET}.{bench.FIRST_OCTET}, {EXTRA_NET}.200]
networks:
  extra: {{bridge: {EXTRA_BRIDGE}, address: {EXTRA_NET}.1, netPrefix: 24}}
"""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


class Prober(threading.Thread):
    """ICMP echo to each address every `period` s until it answers; first[ip] = seconds after
    start() until the first reply."""

    def __init__(self, ips, period=0.01, limit=120.0):
        super().__init__(daemon=True)
        self.ips, self.period, self.limit = list(ips), period, limit
        self.first = {}
        self.stop = threading.Event()
        self.icmp_id = os.getpid() & 0xFFFF

    def run(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sock.setblocking(False)
        t0 = time.monotonic()
        seq = 0
        try:
            while not self.stop.is_set() and len(self.first) < len(self.ips):
                now = time.monotonic()
                if now - t0 > self.limit:
                    return
                seq = (seq + 1) & 0xFFFF
                for ip in self.ips:
                    if ip in self.first:
                        continue
                    head = struct.pack("!BBHHH", 8, 0, 0, self.icmp_id, seq)
                    pkt = struct.pack("!BBHHH", 8, 0, _checksum(head + b"aplbench"), self.icmp_id,
                                      seq) + b"aplbench"
                    try:
                        sock.sendto(pkt, (ip, 0))
                    except OSError:  # no route yet, neighbour failed: try again next round
                        pass
                deadline = now + self.period
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    r, _, _ = select.select([sock], [], [], left)
                    if not r:
                        break
                    try:
                        data, (src, _) = sock.recvfrom(2048)
                    except BlockingIOError:
                        continue
                    ihl = (data[0] & 0x0F) * 4
                    if len(data) >= ihl + 8 and data[ihl] == 0:  # echo reply
                        ident = struct.unpack("!H", data[ihl + 4:ihl + 6])[0]
                        if ident == self.icmp_id and src in self.ips and src not in self.first:
                            self.first[src] = time.monotonic() - t0
        finally:
            sock.close()


def set_retrans(bridges, ms):
    old = {}
    for b in bridges:
        p = f"/proc/sys/net/ipv4/neigh/{b}/retrans_time_ms"
        try:
            with open(p) as f:
                old[b] = f.read().strip()
            with open(p, "w") as f:
                f.write(str(ms))
        except OSError:
            pass
    return old


def bench_networks(env, results):
    if not env.before_bin:
        bench.log("networks: no --before binary: the bridge-path variant is left out")
    variants = [v for v in VARIANTS if v != "bridge-path" or env.before_bin]
    n = env.args.networks_size
    cfgs = {v: config(env, v, n) for v in variants}
    # The extra network's bridge, with this binary (the netns configs share its working
    # directory and so its record); the fleet's bridge is the bench's own.
    env.apl(cfgs["netns+1"], "netup")
    if "bridge-path" in variants:
        env.apl(cfgs["bridge-path"], "getimage", binary=env.before_bin)  # not timed
    old = set_retrans([bench.BRIDGE, EXTRA_BRIDGE], 10)
    results["networks"] = []
    try:
        for i in range(env.args.networks_runs):
            order = variants if i % 2 == 0 else list(reversed(variants))
            for v in order:
                binary = env.before_bin if v == "bridge-path" else env.bin
                logfile = os.path.join(env.logs, f"networks-{v}-{n}-{i}.log")
                ips = [f"10.78.0.{bench.FIRST_OCTET + k}" for k in range(n)]
                extra_ips = ([f"{EXTRA_NET}.{bench.FIRST_OCTET + k}" for k in range(n)]
                             if v == "netns+1" else [])
                prober = Prober(ips + extra_ips)
                own0 = bench.bench_cpu_seconds()
                prober.start()
                r = bench.timed([binary, "-c", cfgs[v], "spawn"], logfile, env=env.env)
                cpu = bench.bench_cpu_seconds() - own0 if own0 is not None else None
                prober.stop.set()
                prober.join()
                st = bench.timed([binary, "-c", cfgs[v], "stop"], logfile, env=env.env)
                cl = bench.timed([binary, "-c", cfgs[v], "cleanup"], logfile, env=env.env)
                first = [prober.first.get(ip) for ip in ips]
                rec = {"variant": v, "n": n, "run": i, "wall": r["wall"], "rc": r["rc"],
                       "cpu_own": cpu, "stop": st["wall"], "cleanup": cl["wall"],
                       "address_first_reply": first,
                       "extra_first_reply": [prober.first.get(ip) for ip in extra_ips]}
                results["networks"].append(rec)
                seen = [x for x in first if x is not None]
                bench.log(f"networks {v:11} N={n} run {i}: {r['wall']:6.2f} s, addresses answer "
                          f"after {bench.median(seen) or 0:.2f} s (median, {len(seen)}/{n})"
                          f"{'' if r['rc'] == 0 else '  FAILED (see ' + logfile + ')'}")
                if st["rc"] or cl["rc"]:
                    raise RuntimeError(f"stop/cleanup failed, see {logfile}")
                bench.check_clean(env, f"networks {v}")
                bench.sh(["ip", "neigh", "flush", "dev", EXTRA_BRIDGE], check=False)
                bench.settle(env)
    finally:
        for b, ms in old.items():
            set_retrans([b], ms)


def summarize(results):
    runs = results.get("networks") or []
    if not runs:
        return []
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in runs)]
    med = {}
    for v in variants:
        ok = [r for r in runs if r["variant"] == v and r["rc"] == 0]
        ws = [r["wall"] for r in ok]
        cpu = [r["cpu_own"] for r in ok if r["cpu_own"] is not None]
        addr = [x for r in ok for x in r["address_first_reply"] if x is not None]
        extra = [x for r in ok for x in r.get("extra_first_reply") or [] if x is not None]
        med[v] = {"wall": bench.median(ws), "min": min(ws) if ws else None,
                  "max": max(ws) if ws else None, "cpu": bench.median(cpu),
                  "addr": bench.median(addr), "addr_max": max(addr) if addr else None,
                  "extra": bench.median(extra),
                  "failed": sum(1 for r in runs if r["variant"] == v and r["rc"] != 0)}
    n = runs[0]["n"]
    per = len(runs) // len(variants)
    lines = ["### Networks: the namespace path against nspawn's bridge (spawn of N, same run)", "",
             f"Median of {per} alternating runs per variant, N = {n}. Target: netns / bridge-path "
             "<= 1.0 (no slower). 'address answers': seconds after spawn started until the "
             "container's address answered ICMP from the host (median over all containers and "
             "runs; max).", "",
             "| variant | spawn s (min–max) | CPU s | address answers s (max) | extra network s | failed |",
             "|---|---|---|---|---|---|"]
    for v in variants:
        m = med[v]
        lines.append(f"| {v} | {bench.fmt_s(m['wall'])} ({bench.fmt_s(m['min'])}–{bench.fmt_s(m['max'])}) | "
                     f"{bench.fmt_s(m['cpu'])} | {bench.fmt_s(m['addr'])} ({bench.fmt_s(m['addr_max'])}) | "
                     f"{bench.fmt_s(m['extra'])} | {m['failed']} |")

    def ratio(a, b, k="wall"):
        if a in med and b in med and med[a][k] and med[b][k]:
            return f"{med[a][k] / med[b][k]:.3f}"
        return "–"
    lines += ["", f"spawn netns / bridge-path: **{ratio('netns', 'bridge-path')}** "
              f"(CPU {ratio('netns', 'bridge-path', 'cpu')}); netns+1 / netns: "
              f"{ratio('netns+1', 'netns')} (CPU {ratio('netns+1', 'netns', 'cpu')}); "
              f"address answers, netns / bridge-path: {ratio('netns', 'bridge-path', 'addr')}", ""]
    return lines
