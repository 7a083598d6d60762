#include "aplspawn/health/container.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/fleet/lower.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/ssh.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/fleet/systemd.hpp"
#include "aplspawn/health/leaders.hpp"
#include "aplspawn/net/container_network.hpp"
#include "aplspawn/health/resources.hpp"
#include "aplspawn/net/icmp.hpp"
#include "aplspawn/net/netlink.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace aplspawn::health {
namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
}

std::string last_line(const std::string& text) {
    std::string t = trim(text);
    auto nl = t.rfind('\n');
    return nl == std::string::npos ? t : t.substr(nl + 1);
}

std::optional<LeaderFacts> leader_facts(pid_t pid) {
    try {
        auto comm = sys::read_file_if_exists(fmt::format("/proc/{}/comm", pid));
        auto cmdline = sys::read_file_if_exists(fmt::format("/proc/{}/cmdline", pid));
        if (!comm || !cmdline) return std::nullopt;
        LeaderFacts f;
        f.pid = pid;
        f.comm = trim(*comm);
        std::string_view s(*cmdline);
        while (!s.empty()) {
            auto nul = s.find('\0');
            f.argv.emplace_back(s.substr(0, nul));
            if (nul == std::string_view::npos) break;
            s.remove_prefix(nul + 1);
        }
        return f;
    } catch (const Error&) {
        return std::nullopt;  // gone while we looked
    }
}

std::string command_line(const LeaderFacts& f) { return fmt::format("{}", fmt::join(f.argv, " ")); }

// machined's view on a systemd host; "" when it agrees with ours.
std::string machined_problem(const std::string& name, const fleet::ContainerRecord& r,
                             const Leader& leader) {
    try {
        if (!fleet::systemd::Manager::available())
            return "the record says it runs as a systemd unit, but machined does not answer";
        fleet::systemd::Manager m;
        auto machine = m.machine(name);
        if (!machine) return fmt::format("machined does not know machine {}", name);
        if (leader.process && machine->leader != leader.process->pid)
            return fmt::format("machined's leader is pid {}, the container's PID 1 is pid {}",
                               machine->leader, leader.process->pid);
        (void)r;
        return "";
    } catch (const Error& e) {
        return e.message();
    }
}


// A ping check: not run when `skip` says why (the container does not run, its network has a
// problem). Never throws (a status worker must not): a failure is the check's detail.
void check_ping(CheckResult& r, Ipv4 ip, const std::string& skip, std::chrono::milliseconds timeout) {
    if (!skip.empty()) {
        r.detail = skip;
        return;
    }
    try {
        auto echo = net::echo(ip, timeout);
        r.ok = echo.replied;
        r.detail = echo.describe(timeout);
    } catch (const Error& e) {
        r.detail = e.message();
    }
}

}  // namespace

std::string ContainerReport::header() const {
    return fmt::format("Checking container {}, ip {}/{}", name, ip, prefix);
}

bool ContainerReport::ok() const {
    return std::all_of(checks.begin(), checks.end(), [](const CheckResult& r) { return r.ok; });
}

std::string expected_leader(const config::Container& ct) {
    const auto& k = ct.common();
    return k.mode() == config::StartMode::script ? k.startup_script : "systemd";
}

std::optional<std::string> leader_mismatch(config::StartMode mode, const std::string& startup_script,
                                           const LeaderFacts& f, bool recorded) {
    const std::string argv0 = f.argv.empty() ? "" : f.argv[0];
    if (mode == config::StartMode::boot) {
        static const char* const kInits[] = {"/usr/lib/systemd/systemd", "/lib/systemd/systemd",
                                             "/sbin/init"};
        if (f.comm == "systemd") return std::nullopt;
        for (const char* init : kInits)
            if (argv0 == init) return std::nullopt;
        return fmt::format("pid {} runs {} ({}), not the image's init (systemd)", f.pid, f.comm,
                           command_line(f));
    }
    if (argv0 == startup_script || (f.argv.size() > 1 && f.argv[1] == startup_script))
        return std::nullopt;
    if (recorded) return std::nullopt;  // the script's own process, after an exec
    return fmt::format("pid {} runs {}, not {}", f.pid, command_line(f), startup_script);
}

ContainerReport check_container(const config::Config& c, const config::Container& ct,
                                const std::vector<sys::MountInfo>& mounts,
                                const ContainerCheckOptions& o) {
    ContainerReport rep;
    rep.name = ct.name;
    rep.group = ct.group->name;
    rep.ip = ct.ip.str();
    rep.prefix = c.bridge.prefix;
    rep.checks.reserve(8 + 2 * ct.networks.size());  // add() hands out references: no reallocation
    auto add = [&](std::string id, std::string title) -> CheckResult& {
        rep.checks.push_back(CheckResult{ct.name, std::move(id), std::move(title), false, ""});
        return rep.checks.back();
    };

    // machine: running (and registered, on a systemd host)
    CheckResult& machine = add("machine", fmt::format("Checking machinectl status for container {} (ip {})",
                                                      ct.name, rep.ip));
    std::optional<fleet::ContainerRecord> record;
    Leader leader;
    try {
        record = fleet::StateDir(c).load(ct.name);
        leader = find_leader(ct.name, record);
        if (!record || !fleet::is_running(*record)) {
            machine.detail = leader.problem;
        } else if (record->launcher == "systemd") {
            std::string problem = machined_problem(ct.name, *record, leader);
            machine.ok = problem.empty();
            machine.detail = machine.ok ? fmt::format("unit {}, systemd-nspawn pid {}", record->unit,
                                                      record->nspawn_pid)
                                        : problem;
        } else {
            machine.ok = true;
            machine.detail = fmt::format("systemd-nspawn pid {} ({} launcher{})", record->nspawn_pid,
                                         record->launcher.empty() ? "detached" : record->launcher,
                                         record->ready ? "" : "; spawn has not seen it ready yet");
        }
    } catch (const Error& e) {
        machine.detail = e.message();
    }
    const bool running = record && fleet::is_running(*record);

    // overlay
    CheckResult& overlay = add("overlay", "Checking overlayFS mount");
    try {
        std::filesystem::path lower = fleet::lower_dir(c, ct.image().name);
        auto dirs = fleet::container_dirs(c, ct);
        switch (fleet::overlay_state(mounts, lower, dirs)) {
        case fleet::OverlayState::correct:
            overlay.ok = true;
            overlay.detail = fmt::format("{}: lower {}, upper {}, work {}", dirs.merged.string(),
                                         lower.string(), dirs.upper.string(), dirs.work.string());
            break;
        case fleet::OverlayState::absent:
            overlay.detail = fmt::format("nothing is mounted at {}", dirs.merged.string());
            break;
        case fleet::OverlayState::other: {
            auto m = sys::find_mount(mounts, dirs.merged);
            overlay.detail = fmt::format(
                "{} has {} {} mounted ({}), not the overlay of lower {}, upper {}, work {}",
                dirs.merged.string(), m ? m->fstype : "?", m ? m->source : "?",
                m ? m->super_options : "", lower.string(), dirs.upper.string(), dirs.work.string());
            break;
        }
        }
    } catch (const Error& e) {
        overlay.detail = e.message();
    }

    // leader
    CheckResult& lead = add("leader", "Checking leader process " + expected_leader(ct));
    if (!running) {
        lead.detail = "not checked: container is not running";
    } else if (!leader.process) {
        lead.detail = leader.problem;
    } else if (auto facts = leader_facts(leader.process->pid); !facts) {
        lead.detail = fmt::format("leader process {} is gone", leader.process->pid);
    } else {
        bool recorded = record->leader_pid == leader.process->pid && record->leader_start_time != 0;
        auto why = leader_mismatch(ct.common().mode(), ct.common().startup_script, *facts, recorded);
        lead.ok = !why;
        lead.detail = why ? *why : fmt::format("pid {}: {}", facts->pid, command_line(*facts));
    }

    // lxcfs, oom (health/resources.hpp)
    if (running && lead.ok)
        for (auto& r : check_resources(ct, *record, leader.process->pid)) rep.checks.push_back(std::move(r));

    // ping, ssh (over the fleet's bridge)
    CheckResult& ping = add("ping", "Checking ping to " + rep.ip);
    CheckResult& ssh = add("ssh", "Checking ssh connection to " + rep.ip);
    std::string skip = !running                     ? "not checked: container is not running"
                       : !o.network_problem.empty() ? "not checked: " + o.network_problem
                                                    : "";
    check_ping(ping, ct.ip, skip, o.ping_timeout);
    if (!skip.empty()) {
        ssh.detail = skip;
    } else {
        auto target = fleet::ssh_target(c, ct);
        const std::string& user = target.user;
        sys::RunResult r;
        bool started = true;
        try {
            r = fleet::ssh_run(target, {"id", "-un"}, o.ssh_timeout);
        } catch (const Error& e) {  // ssh cannot be started: missing, or cannot run
            ssh.detail = e.message();
            started = false;
        }
        if (started && r.ok() && trim(r.out) == user) {
            ssh.ok = true;
            ssh.detail = fmt::format("logged in as {} with {}", user, target.private_key.string());
        } else if (started && r.ok()) {
            ssh.detail = fmt::format("logged in, but as {:?}, not {}", trim(r.out), user);
        } else if (started) {
            std::string why = last_line(r.err);
            ssh.detail = fmt::format("ssh {}@{}: {}{}", user, rep.ip, r.describe(),
                                     why.empty() ? "" : ": " + why);
        }
    }

    // Every interface: in the container's namespace, up with its address; and each interface
    // on another network answers ping from the host's address on that network.
    std::vector<net::InterfaceState> inside;
    std::string inside_error = !running          ? "not checked: container is not running"
                               : !leader.process ? "not checked: " + leader.problem
                                                 : "";
    if (inside_error.empty()) {
        try {
            net::Netlink nl = net::Netlink::open_in_netns_of(leader.process->pid);
            inside = net::interface_states(nl);
        } catch (const Error& e) {
            inside_error = e.message();
        }
    }
    auto check_interface = [&](const std::string& name, const net::Address& want) {
        CheckResult& r = add("interface." + name, fmt::format("Checking interface {} has {}", name, want.str()));
        if (!inside_error.empty()) {
            r.detail = inside_error;
            return;
        }
        auto it = std::find_if(inside.begin(), inside.end(), [&](const auto& i) { return i.name == name; });
        if (it == inside.end()) {
            r.detail = fmt::format("the container has no interface {}", name);
            return;
        }
        bool has = std::find(it->addresses.begin(), it->addresses.end(), want) != it->addresses.end();
        std::vector<std::string> listed;
        for (const auto& a : it->addresses) listed.push_back(a.str());
        r.ok = has && it->up;
        r.detail = !has      ? (listed.empty() ? "it has no IPv4 address"
                                               : fmt::format("it has {}", fmt::join(listed, ", ")))
                   : !it->up ? "it is down"
                             : fmt::format("up, {}", fmt::join(listed, ", "));
    };
    check_interface(std::string(config::kMainInterface), {ct.ip, ct.vars().prefix});
    for (const auto& a : ct.networks) {
        const config::Network& n = *a.network;
        check_interface(n.name, {a.ip, n.prefix});
        CheckResult& p = add("ping." + n.name, fmt::format("Checking ping to {} on network {}", a.ip.str(), n.name));
        auto problem = o.network_problems.find(n.name);
        check_ping(p, a.ip,
                   !running                               ? "not checked: container is not running"
                   : problem != o.network_problems.end() ? "not checked: " + problem->second
                                                          : "",
                   o.ping_timeout);
    }
    return rep;
}

}  // namespace aplspawn::health
