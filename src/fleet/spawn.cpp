#include "aplspawn/fleet/spawn.hpp"

#include "aplspawn/fleet/container_spec.hpp"
#include "aplspawn/fleet/overlay.hpp"
#include "aplspawn/fleet/processes.hpp"
#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/fleet/ssh.hpp"
#include "aplspawn/fleet/network.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"
#include "aplspawn/sys/programs.hpp"

#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstring>
#include <set>
#include <thread>

namespace aplspawn::fleet {
namespace {

using namespace std::chrono_literals;

constexpr int kLogTailLines = 15;

std::string already(Change c) { return c == Change::unchanged ? std::string(out::already_so) : ""; }

// Waits for cond() until the deadline, while the container's nspawn lives. Throws when nspawn
// exits or the deadline passes; `what` names what was awaited.
template <class F>
auto wait_for(const ContainerRecord& rec, Clock::time_point deadline, std::string_view what,
              std::chrono::milliseconds step, F&& cond) {
    while (true) {
        if (auto v = cond()) return *v;
        if (!is_running(rec))
            throw Error(fmt::format("systemd-nspawn (pid {}) exited while waiting for {}",
                                    rec.nspawn_pid, what));
        if (Clock::now() >= deadline) throw Error(fmt::format("timed out waiting for {}", what));
        std::this_thread::sleep_for(step);
    }
}

std::string last_line(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.remove_suffix(1);
    if (auto nl = text.rfind('\n'); nl != std::string_view::npos) text.remove_prefix(nl + 1);
    return std::string(text);
}

// Strips terminal escape sequences and carriage returns from console output.
std::string plain(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\x1b') {
            if (i + 1 < s.size() && s[i + 1] == '[') {
                i += 2;
                while (i < s.size() && !(s[i] >= '@' && s[i] <= '~')) ++i;
            }
            continue;
        }
        if (s[i] == '\r') continue;
        out.push_back(s[i]);
    }
    return out;
}

// Waits for SSH to answer as the configured user. Throws with ssh's last message on timeout.
void wait_for_ssh(const config::Config& c, const ContainerRecord& rec, const config::Container& ct,
                  Clock::time_point deadline) {
    SshTarget target = ssh_target(c, ct);
    const std::string& ip = target.ip;
    std::string last_error = "no attempt";
    while (true) {
        if (!is_running(rec))
            throw Error(fmt::format("systemd-nspawn (pid {}) exited before SSH answered",
                                    rec.nspawn_pid));
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left <= 0ms)
            throw Error(fmt::format("no SSH answer from {}@{} within the ready timeout; last "
                                    "attempt: {}",
                                    target.user, ip, last_error));
        auto r = ssh_run(target, {"id", "-un"}, std::min<std::chrono::milliseconds>(left, 10s));
        std::string who = last_line(r.out);
        if (r.ok() && who == target.user) return;
        last_error = r.ok() ? fmt::format("logged in as \"{}\", not {}", who, target.user)
                            : (r.err.empty() ? r.describe() : last_line(r.err));
        // A wrong host key never fixes itself, and must never be waved through.
        if (r.err.find("Host key verification failed") != std::string::npos ||
            r.err.find("REMOTE HOST IDENTIFICATION HAS CHANGED") != std::string::npos)
            throw Error(fmt::format("{} presented a host key that is not the one provisioned "
                                    "(known_hosts {}): refusing it",
                                    ip, target.known_hosts.string()));
        std::this_thread::sleep_for(250ms);
    }
}

}  // namespace

void check_spawn_prerequisites(const config::Config& c,
                               const std::vector<const config::Container*>& containers) {
    for (const char* prog : {"systemd-nspawn", "ssh", "ssh-keygen"}) sys::require_program(prog);
    if (::if_nametoindex(c.bridge.name.c_str()) == 0)
        throw Error(fmt::format("bridge {} does not exist: run aplspawn netup first", c.bridge.name));
    std::set<const config::Group*> groups;
    for (const auto* ct : containers) groups.insert(ct->group.get());
    // Every network of the selected containers' groups has its bridge.
    std::set<const config::Network*> networks;
    for (const config::Group* g : groups)
        for (const auto& nr : g->networks) networks.insert(nr.network.get());
    for (const config::Network* n : networks)
        if (::if_nametoindex(n->bridge.c_str()) == 0)
            throw Error(fmt::format("bridge {} of network {} does not exist: run aplspawn netup first",
                                    n->bridge, n->name));
    for (const config::Group* g : groups) {
        // A bind's source must exist: a missing one is a config problem (exit 2), named.
        for (const auto& b : g->binds) {
            struct stat st;
            if (::stat(b.host.c_str(), &st) < 0)
                throw Error::usage(fmt::format("{}: the bind source {} does not exist ({})",
                                               c.where(b.key), b.host.string(),
                                               std::strerror(errno)));
        }
        const auto& k = g->common;
        if (k.mode() != config::StartMode::script) continue;
        struct stat st;
        if (!k.bind_host.empty() && (::stat(k.bind_host.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)))
            throw Error(fmt::format("{}: {} is not a directory", c.where(g->origin("bindHost")),
                                    k.bind_host.string()));
        // A startup script inside the bound directory must exist there and be executable.
        const std::string& script = k.startup_script;
        std::string prefix = k.bind_container;
        if (!prefix.empty() && prefix.back() != '/') prefix += '/';
        if (!k.bind_host.empty() && !prefix.empty() && script.starts_with(prefix)) {
            fs::path on_host = k.bind_host / script.substr(prefix.size());
            if (::access(on_host.c_str(), X_OK) < 0)
                throw Error(fmt::format("{}: {} is {} on the host, which is not an executable file",
                                        c.where(g->origin("startupScript")), script,
                                        on_host.string()));
        }
    }
}

std::vector<out::Line> log_tail_lines(const fs::path& log, int n) {
    std::vector<out::Line> lines;
    std::optional<std::string> text;
    try {
        text = sys::read_file_if_exists(log);
    } catch (const Error&) {
    }
    if (!text || text->empty()) {
        lines.push_back({out::Kind::info, fmt::format("{} is empty", log.string())});
        return lines;
    }
    std::string t = plain(*text);
    std::vector<std::string_view> all;
    std::string_view s(t);
    while (!s.empty()) {
        auto nl = s.find('\n');
        all.push_back(s.substr(0, nl));
        if (nl == std::string_view::npos) break;
        s.remove_prefix(nl + 1);
    }
    while (!all.empty() && all.back().empty()) all.pop_back();
    size_t from = all.size() > static_cast<size_t>(n) ? all.size() - static_cast<size_t>(n) : 0;
    lines.push_back({out::Kind::info, fmt::format("Last lines of {}:", log.string())});
    for (size_t i = from; i < all.size(); ++i) {
        std::string_view l = all[i];
        if (l.size() > 300) l = l.substr(0, 300);
        lines.push_back({out::Kind::info, fmt::format("  | {}", l)});
    }
    return lines;
}

Clock::time_point BringUpContext::deadline(const config::Container& ct) const {
    return start + timeout.value_or(std::chrono::seconds(ct.common().ready_timeout_sec));
}

const std::filesystem::path& BringUpContext::lower_of(const config::Container& ct) const {
    auto it = lowers.find(ct.image().name);
    if (it == lowers.end()) throw Error(fmt::format("no lower layer mounted for image {}", ct.image().name));
    return it->second;
}

const std::string& BringUpContext::authorized_key_of(const config::Container& ct) const {
    auto it = authorized_keys.find(ct.group->name);
    if (it == authorized_keys.end()) throw Error(fmt::format("no public key read for group {}", ct.group->name));
    return it->second;
}

BringUp decide_bring_up(const ContainerView& v) {
    if (!v.config) return BringUp::leftover;
    if (v.ready()) return BringUp::ready;
    if (v.running) return BringUp::resume;
    return BringUp::start;
}

Outcome plan_bring_up(const config::Config& c, const ContainerView& v) {
    Outcome o{v.name, true, {}};
    auto plan = [&](std::string t) { o.lines.push_back({out::Kind::plan, std::move(t)}); };
    switch (decide_bring_up(v)) {
    case BringUp::leftover:
        o.lines.push_back({out::Kind::info, fmt::format("{} is no longer in the config", v.name)});
        return o;
    case BringUp::ready:
        o.lines.push_back({out::Kind::ok, fmt::format("Container with pid {} was started{}",
                                                      v.record->nspawn_pid, out::already_so)});
        plan(fmt::format("Update the fleet's names in {}'s /etc/hosts where they changed", v.name));
        return o;
    case BringUp::resume:
        plan(fmt::format("Check container {} (pid {}, started by an interrupted run): {}, SSH",
                         v.name, v.record->nspawn_pid, describe_network(c, *v.config)));
        return o;
    case BringUp::start: break;
    }
    const config::Container& ct = *v.config;
    plan(fmt::format("Mount overlayFS at {} (upper {}, work {})", v.dirs.merged.string(),
                     v.dirs.upper.string(), v.dirs.work.string()));
    plan(fmt::format("Provision {}: hostname, user {}, SSH key, host keys, /etc/hosts", v.name,
                     ct.vars().user_name));
    plan(fmt::format("Make network namespace {}: {}", netns_name(v.name), describe_network(c, ct)));
    plan(fmt::format("Start {} ({}, image {}) with systemd-nspawn {} in it, wait for SSH", v.name,
                     ct.group->name, ct.image().name,
                     ct.common().mode() == config::StartMode::boot
                         ? std::string("--boot")
                         : fmt::format("running {}", ct.common().startup_script)));
    return o;
}

Outcome keep_hosts(const BringUpContext& ctx, const ContainerView& v) {
    Outcome o{v.name, true, {}};
    if (!v.config || !v.ready()) return o;
    const std::string step = fmt::format("Updating the fleet's names in /etc/hosts of {}", v.name);
    try {
        if (update_hosts(v.dirs.merged, v.name, v.config->ip, ctx.fleet_hosts) == Change::changed)
            o.lines.push_back({out::Kind::ok, step});
    } catch (const std::exception& e) {
        o.ok = false;
        o.lines.push_back({out::Kind::fail, fmt::format("{}: {}", step, e.what())});
    }
    return o;
}

Outcome bring_up(const BringUpContext& ctx, const ContainerView& v) {
    const config::Config& c = ctx.config;
    Outcome o{v.name, true, {}};
    auto ok = [&](std::string t) { o.lines.push_back({out::Kind::ok, std::move(t)}); };
    auto info = [&](std::string t) { o.lines.push_back({out::Kind::info, std::move(t)}); };
    o.lines.push_back({out::Kind::info, fmt::format("Trying to start container {}", v.name)});
    const BringUp decision = decide_bring_up(v);
    if (decision == BringUp::leftover) {  // only recorded: not ours to start any more
        info(fmt::format("{} is no longer in the config; aplspawn stop stops it", v.name));
        return o;
    }
    const config::Container& ct = *v.config;
    const config::Common& k = ct.common();
    const config::ContainerVariables& vars = ct.vars();
    const std::string ip = ct.ip.str();
    const Clock::time_point deadline = ctx.deadline(ct);

    if (decision == BringUp::ready) {
        ok(fmt::format("Container with pid {} was started{}", v.record->nspawn_pid, out::already_so));
        if (v.record->ip != ip)
            info(fmt::format("{} runs with IP {}, the config says {}: stop and spawn to apply it",
                             v.name, v.record->ip, ip));
        if (auto differs = network_differs(ctx.state, c, ct))
            info(fmt::format("{} runs with {}, the config says {}: stop and spawn to apply it",
                             v.name, differs->first, differs->second));
        Outcome hosts = keep_hosts(ctx, v);
        o.ok = hosts.ok;
        o.lines.insert(o.lines.end(), hosts.lines.begin(), hosts.lines.end());
        return o;
    }

    std::string step;
    ContainerRecord rec;
    bool launched = false;
    auto launch = [&] {
        step = fmt::format("Starting {} with systemd-nspawn", v.name);
        LaunchSpec spec = launch_spec(ct, v.dirs, ctx.state);
        spec.lxcfs = ctx.lxcfs;
        rec = ctx.launcher.start(spec);
        launched = true;
        rec.ready = false;
        ctx.state.save(rec);
        ok(fmt::format("Container with pid {} was started", rec.nspawn_pid));
    };
    try {
        if (decision == BringUp::resume) {
            rec = *v.record;
            launched = true;
            info(fmt::format("{} was started by an interrupted run (pid {}): checking it", v.name,
                             rec.nspawn_pid));
        } else {
            step = fmt::format("Trying to mount overlayFS, merged path is {}", v.dirs.merged.string());
            Change ch = ensure_overlay(ctx.lower_of(ct), v.dirs);
            ok(step + already(ch));

            if (k.mode() == config::StartMode::script) ok("Generating variables for container");

            step = fmt::format("Provisioning {} (hostname, user {}, SSH keys)", v.name, vars.user_name);
            ProvisionResult pr =
                provision(v.dirs.merged, provision_spec(c, ct, ctx.authorized_key_of(ct)));
            ok(step + already(pr.change()));
            for (const auto& n : pr.notes) info(n);
            for (const auto& ch2 : pr.changes) o.lines.push_back({out::Kind::debug, "  " + ch2});
            if (pr.host_public_keys.empty())
                throw Error("provisioning generated no SSH host keys");

            step = fmt::format("Adding host keys of {} to {}", v.name, ctx.known_hosts.path().string());
            bool changed = ctx.known_hosts.set(ip, pr.host_public_keys);
            ok(step + (changed ? "" : std::string(out::already_so)));

            step = fmt::format("Setting up the network of {} (namespace {})", v.name, netns_name(v.name));
            NetworkResult net = create_network(c, ct, ctx.state);
            if (net.taken_down == Change::changed)
                info(fmt::format("Removed what an interrupted run left of {}'s network", v.name));
            for (const auto& n : net.notes) info(n);
            ok(fmt::format("Setting up the network of {}: {}", v.name, describe(net.network)));

            launch();
        }

        step = fmt::format("Finding the leader (PID 1) of {}", v.name);
        ProcessRef leader = wait_for(rec, deadline, "the container's PID 1", 20ms,
                                     [&]() -> std::optional<ProcessRef> {
                                         if (auto p = ctx.launcher.leader(rec)) return process_ref(*p);
                                         return std::nullopt;
                                     });
        rec.set_leader(leader);
        ctx.state.save(rec);

        info(fmt::format("Checking container {}, ip {}/{}", v.name, ip, vars.prefix));
        if (decision == BringUp::resume) {
            // Its network was made before it started; make sure an interrupted run saw it through
            // (a container an older aplspawn started got host0 from nspawn, without an address).
            step = fmt::format("Checking the network of {}: {}", v.name, describe_network(c, ct));
            ok(step + already(ensure_network_addresses(c, ct, leader.pid)));
        }

        step = fmt::format("Checking ssh connection to {}", ip);
        wait_for_ssh(c, rec, ct, deadline);
        ok(step);
        rec.ready = true;
        ctx.state.save(rec);
    } catch (const std::exception& e) {
        o.ok = false;
        o.lines.push_back({out::Kind::fail, step.empty() ? std::string(e.what())
                                                         : fmt::format("{}: {}", step, e.what())});
        if (launched) {
            auto tail = log_tail_lines(ctx.state.log_path(v.name), kLogTailLines);
            o.lines.insert(o.lines.end(), tail.begin(), tail.end());
            if (is_running(rec))
                info(fmt::format("{} keeps running for inspection: aplspawn stop stops it, "
                                 "aplspawn spawn tries again",
                                 v.name));
        }
    }
    return o;
}

}  // namespace aplspawn::fleet
