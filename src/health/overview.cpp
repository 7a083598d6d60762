#include "aplspawn/health/overview.hpp"

#include "aplspawn/health/leaders.hpp"
#include "aplspawn/sys/fs.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>

namespace aplspawn::health {
namespace {

// Seconds since the process started, from its start time (clock ticks after boot) and the
// system's uptime.
std::optional<std::uint64_t> process_uptime(std::uint64_t start_ticks) {
    std::optional<std::string> text;
    try {
        text = sys::read_file_if_exists("/proc/uptime");
    } catch (const Error&) {
        return std::nullopt;
    }
    if (!text) return std::nullopt;
    double up = std::strtod(text->c_str(), nullptr);
    long hz = ::sysconf(_SC_CLK_TCK);
    if (hz <= 0) return std::nullopt;
    double started = static_cast<double>(start_ticks) / static_cast<double>(hz);
    return up > started ? static_cast<std::uint64_t>(up - started) : 0;
}

}  // namespace

std::string format_uptime(std::uint64_t s) {
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}min {}s", s / 60, s % 60);
    if (s < 86400) return fmt::format("{}h {:02}min", s / 3600, s % 3600 / 60);
    return fmt::format("{}d {}h", s / 86400, s % 86400 / 3600);
}

std::vector<OverviewRow> overview(const config::Config& c, const fleet::FleetView& view,
                                  bool spawn_running) {
    (void)c;
    std::vector<OverviewRow> rows;
    for (const auto& v : view.containers) {
        OverviewRow r;
        r.name = v.name;
        r.group = v.group.empty() ? "-" : v.group;
        r.address = v.ip.empty() ? "-" : v.ip;
        r.image = v.config ? v.config->image().name : v.record ? v.record->image : "-";
        if (v.config)
            for (const auto& a : v.config->networks) r.networks.emplace_back(a.network->name, a.ip.str());
        if (v.running) {
            Leader l = find_leader(v.name, v.record);
            if (l.process) {
                r.pid = l.process->pid;
                r.uptime = process_uptime(l.process->start_time);
            }
            r.state = v.ready() ? "running" : spawn_running ? "starting" : "failed";
        } else if ((v.record && !v.running) || !v.strays.empty()) {
            r.state = "failed";
        } else {
            r.state = "stopped";
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

std::string overview_table(const std::vector<OverviewRow>& rows) {
    const bool networks = std::any_of(rows.begin(), rows.end(), [](const auto& r) { return !r.networks.empty(); });
    std::vector<std::vector<std::string>> cells{
        {"NAME", "GROUP", "ADDRESS", "IMAGE", "STATE", "PID", "UPTIME"}};
    if (networks) cells[0].push_back("NETWORKS");
    std::map<std::string, int> counts;
    for (const auto& r : rows) {
        cells.push_back({r.name, r.group, r.address, r.image, r.state,
                         r.pid ? std::to_string(*r.pid) : "-",
                         r.uptime ? format_uptime(*r.uptime) : "-"});
        if (networks) {
            std::string list;
            for (const auto& [n, ip] : r.networks) list += (list.empty() ? "" : ",") + n + "=" + ip;
            cells.back().push_back(list.empty() ? "-" : list);
        }
        ++counts[r.state];
    }
    std::vector<std::size_t> width(cells[0].size());
    for (const auto& row : cells)
        for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    std::string out;
    for (const auto& row : cells) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i)
            line += i + 1 < row.size() ? fmt::format("{:<{}} ", row[i], width[i]) : row[i];
        out += line + "\n";
    }
    std::string tally;
    for (const char* state : {"running", "starting", "failed", "stopped"})
        if (counts[state] > 0) tally += fmt::format("{}{} {}", tally.empty() ? "" : ", ", counts[state], state);
    out += fmt::format("\n{} container{} listed{}.\n", rows.size(), rows.size() == 1 ? "" : "s",
                       tally.empty() ? "" : " (" + tally + ")");
    return out;
}

nlohmann::ordered_json overview_json(const std::vector<OverviewRow>& rows) {
    auto arr = nlohmann::ordered_json::array();
    for (const auto& r : rows)
        arr.push_back({{"name", r.name},
                       {"group", r.group},
                       {"address", r.address},
                       {"image", r.image},
                       {"state", r.state},
                       {"pid", r.pid ? nlohmann::ordered_json(*r.pid) : nlohmann::ordered_json(nullptr)},
                       {"uptime_sec",
                        r.uptime ? nlohmann::ordered_json(*r.uptime) : nlohmann::ordered_json(nullptr)}});
    for (std::size_t i = 0; i < rows.size(); ++i) {
        nlohmann::ordered_json nets = nlohmann::ordered_json::object();
        for (const auto& [n, ip] : rows[i].networks) nets[n] = ip;
        arr[i]["networks"] = std::move(nets);
    }
    return arr;
}

}  // namespace aplspawn::health
