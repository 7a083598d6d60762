#include "aplspawn/health/status.hpp"

#include "aplspawn/fleet/parallel.hpp"
#include "aplspawn/health/network.hpp"
#include "aplspawn/health/storage.hpp"
#include "aplspawn/sys/mount.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <thread>

namespace aplspawn::health {

namespace {

bool all_ok(const Report& r) {
    return std::all_of(r.begin(), r.end(), [](const CheckResult& c) { return c.ok; });
}

const CheckResult* find(const Report& r, std::string_view id) {
    for (const auto& c : r)
        if (c.check == id) return &c;
    return nullptr;
}

// A container whose checks threw (check_container should not): one failed check carrying why.
ContainerReport failed_report(const config::Config& c, const config::Container& ct, const Error& e) {
    ContainerReport r;
    r.name = ct.name;
    r.group = ct.group->name;
    r.ip = ct.ip.str();
    r.prefix = c.bridge.prefix;
    r.checks.push_back({ct.name, "container", "Checking container " + ct.name, false, e.message()});
    return r;
}

}  // namespace

std::vector<std::string> ContainerReport::failed() const {
    std::vector<std::string> out;
    for (const auto& r : checks)
        if (!r.ok) out.push_back(r.check);
    return out;
}

std::size_t default_status_workers() {
    const std::size_t cpus = std::max(1u, std::thread::hardware_concurrency());
    return std::min<std::size_t>(64, 8 * cpus);
}

bool StatusReport::ok() const {
    return all_ok(host) && std::all_of(containers.begin(), containers.end(),
                                       [](const ContainerReport& c) { return c.ok(); });
}

std::string network_problem(const config::Config& c, const Report& host) {
    if (auto e = find(host, "bridge.exists"); e && !e->ok)
        return fmt::format("bridge {} does not exist", c.bridge.name);
    if (auto u = find(host, "bridge.up"); u && !u->ok) return fmt::format("bridge {} is down", c.bridge.name);
    return "";
}

StatusReport run_status(const config::Config& c,
                        const std::vector<const config::Container*>& containers,
                        const StatusOptions& options, const StatusObserver& observer) {
    StatusReport report;
    std::vector<sys::MountInfo> mounts;
    std::string mount_error;
    try {
        mounts = sys::read_mountinfo();
    } catch (const Error& e) {
        mount_error = e.message();
    }

    report.host = network_checks(c);
    std::vector<const config::Image*> images;
    for (const auto* ct : containers)
        if (std::none_of(images.begin(), images.end(),
                         [&](const config::Image* im) { return im->name == ct->image().name; }))
            images.push_back(&ct->image());
    if (containers.empty())  // a fleet of nothing selected: still the directories
        images.clear();
    Report storage = storage_checks(c, mounts, images);
    report.host.insert(report.host.end(), storage.begin(), storage.end());
    if (!mount_error.empty())
        report.host.push_back({"", "mountinfo", "Reading /proc/self/mountinfo", false, mount_error});
    if (observer.host) observer.host(report.host);

    ContainerCheckOptions copts = options.container;
    copts.network_problem = network_problem(c, report.host);
    for (const auto& n : c.networks) {
        const std::string id = "network." + n->name;
        if (auto e = find(report.host, id + ".exists"); e && !e->ok)
            copts.network_problems[n->name] = fmt::format("bridge {} of network {} does not exist", n->bridge, n->name);
        else if (auto u = find(report.host, id + ".up"); u && !u->ok)
            copts.network_problems[n->name] = fmt::format("bridge {} of network {} is down", n->bridge, n->name);
    }
    report.containers.resize(containers.size());
    fleet::run_ordered<ContainerReport>(
        containers.size(), options.workers,
        [&](std::size_t i) { return check_container(c, *containers[i], mounts, copts); },
        [&](std::size_t i, ContainerReport& r) {
            report.containers[i] = std::move(r);
            if (observer.container) observer.container(report.containers[i]);
        },
        [&](std::size_t i, const Error& e) { return failed_report(c, *containers[i], e); });
    return report;
}

std::vector<out::Line> lines(const Report& report) {
    std::vector<out::Line> out;
    for (const auto& r : report) {
        if (r.ok) {
            out.push_back({out::Kind::ok, r.title});
            if (!r.detail.empty()) out.push_back({out::Kind::debug, "    " + r.detail});
        } else {
            out.push_back({out::Kind::fail, r.detail.empty() ? r.title : r.title + ": " + r.detail});
        }
    }
    return out;
}

std::vector<out::Line> lines(const ContainerReport& report) {
    std::vector<out::Line> out{{out::Kind::info, report.header()}};
    auto rest = lines(report.checks);
    out.insert(out.end(), rest.begin(), rest.end());
    return out;
}

nlohmann::ordered_json to_json(const StatusReport& report) {
    auto arr = nlohmann::ordered_json::array();
    auto add = [&](const CheckResult& r, const std::string& group) {
        arr.push_back({{"container", r.container.empty() ? nlohmann::ordered_json(nullptr)
                                                         : nlohmann::ordered_json(r.container)},
                       {"group", group.empty() ? nlohmann::ordered_json(nullptr)
                                               : nlohmann::ordered_json(group)},
                       {"check", r.check},
                       {"ok", r.ok},
                       {"title", r.title},
                       {"detail", r.detail}});
    };
    for (const auto& r : report.host) add(r, "");
    for (const auto& c : report.containers)
        for (const auto& r : c.checks) add(r, c.group);
    return arr;
}

out::Line summary_line(const ContainerReport& r) {
    auto failed = r.failed();
    if (failed.empty()) return {out::Kind::ok, fmt::format("{} ({}, {})", r.name, r.group, r.ip)};
    // The first failed check's detail says why (later ones usually follow from it).
    std::string why;
    for (const auto& c : r.checks)
        if (!c.ok) {
            why = c.detail;
            break;
        }
    return {out::Kind::fail, fmt::format("{} ({}, {}): {} failed{}", r.name, r.group, r.ip,
                                         fmt::join(failed, ", "), why.empty() ? "" : ": " + why)};
}

std::vector<out::Line> summary_totals(const StatusReport& report) {
    std::size_t healthy = 0;
    for (const auto& c : report.containers) healthy += c.ok() ? 1 : 0;
    std::size_t host_failed = 0;
    for (const auto& r : report.host) host_failed += r.ok ? 0 : 1;
    std::vector<out::Line> lines;
    lines.push_back({report.ok() ? out::Kind::ok : out::Kind::fail,
                     fmt::format("{} of {} containers healthy{}", healthy, report.containers.size(),
                                 host_failed ? fmt::format("; {} host check{} failed", host_failed,
                                                           host_failed == 1 ? "" : "s")
                                             : std::string())});
    return lines;
}

}  // namespace aplspawn::health
