#include "aplspawn/fleet/state.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <map>

namespace aplspawn::fleet {

using json = nlohmann::ordered_json;

fs::path StateDir::record_path(const std::string& name) const {
    return containers_dir() / (name + ".json");
}

fs::path StateDir::log_path(const std::string& name) const {
    return containers_dir() / (name + ".log");
}

std::vector<std::pair<std::string, std::string>> StateDir::members() const {
    std::vector<std::pair<std::string, std::string>> out;
    auto text = sys::read_file_if_exists(dir_ / "members");
    if (!text) return out;
    std::string_view rest(*text);
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        auto sp = line.find(' ');
        std::string name(line.substr(0, sp));
        if (name.empty()) continue;
        out.emplace_back(name, sp == std::string_view::npos ? "" : std::string(line.substr(sp + 1)));
    }
    return out;
}

namespace {

void write_members(const fs::path& file, std::map<std::string, std::string> m) {
    if (m.empty()) {
        if (::unlink(file.c_str()) < 0 && errno != ENOENT) throw_errno(fmt::format("remove {}", file.string()));
        return;
    }
    std::string text;
    for (const auto& [name, group] : m) text += group.empty() ? name + "\n" : name + " " + group + "\n";
    sys::write_file_atomic(file, text, 0644);
}

}  // namespace

void StateDir::add_members(const std::vector<std::pair<std::string, std::string>>& add) const {
    auto now = members();
    std::map<std::string, std::string> m(now.begin(), now.end());
    for (const auto& [name, group] : add) m[name] = group;
    if (std::vector<std::pair<std::string, std::string>>(m.begin(), m.end()) == now) return;
    sys::ensure_dir(dir_, 0755);
    write_members(dir_ / "members", std::move(m));
}

void StateDir::remove_members(const std::vector<std::string>& names) const {
    auto now = members();
    std::map<std::string, std::string> m(now.begin(), now.end());
    std::size_t before = m.size();
    for (const auto& n : names) m.erase(n);
    if (m.size() != before) write_members(dir_ / "members", std::move(m));
}

std::optional<ContainerRecord> StateDir::load(const std::string& name) const {
    auto text = sys::read_file_if_exists(record_path(name));
    if (!text) return std::nullopt;
    try {
        json j = json::parse(*text);
        ContainerRecord r;
        r.name = j.at("name").get<std::string>();
        r.ip = j.value("ip", "");
        r.group = j.value("group", "");
        r.mode = j.value("mode", "");
        r.launcher = j.value("launcher", "");
        r.unit = j.value("unit", "");
        r.cgroup = j.value("cgroup", "");
        r.nspawn_pid = j.value("nspawn_pid", 0);
        r.nspawn_start_time = j.value("nspawn_start_time", std::uint64_t{0});
        r.leader_pid = j.value("leader_pid", 0);
        r.leader_start_time = j.value("leader_start_time", std::uint64_t{0});
        r.boot_id = j.value("boot_id", "");
        r.image = j.value("image", "");
        r.started_at = j.value("started_at", std::int64_t{0});
        r.root = j.value("root", "");
        r.netns = j.value("netns", "");
        r.ready = j.value("ready", false);
        return r;
    } catch (const json::exception& e) {
        throw Error(fmt::format("fleet state {}: unreadable record: {}",
                                record_path(name).string(), e.what()));
    }
}

void StateDir::save(const ContainerRecord& r) const {
    sys::ensure_dir(containers_dir(), 0700);  // 0700: fleet/private_dirs.hpp
    json j = {{"name", r.name},
              {"ip", r.ip},
              {"group", r.group},
              {"mode", r.mode},
              {"launcher", r.launcher},
              {"unit", r.unit},
              {"cgroup", r.cgroup},
              {"nspawn_pid", r.nspawn_pid},
              {"nspawn_start_time", r.nspawn_start_time},
              {"leader_pid", r.leader_pid},
              {"leader_start_time", r.leader_start_time},
              {"boot_id", r.boot_id},
              {"image", r.image},
              {"started_at", r.started_at},
              {"root", r.root.string()},
              {"netns", r.netns.string()},
              {"ready", r.ready}};
    sys::write_file_atomic(record_path(r.name), j.dump(2) + "\n", 0644);
}

void StateDir::remove(const std::string& name) const {
    if (::unlink(record_path(name).c_str()) < 0 && errno != ENOENT)
        throw_errno(fmt::format("remove {}", record_path(name).string()));
}

void ContainerRecord::set_nspawn(const ProcessRef& p) {
    nspawn_pid = p.pid;
    nspawn_start_time = p.start_time;
    boot_id = p.boot_id;
}

void ContainerRecord::set_leader(const ProcessRef& p) {
    leader_pid = p.pid;
    leader_start_time = p.start_time;
    if (boot_id.empty()) boot_id = p.boot_id;
}

bool is_running(const ContainerRecord& r) { return alive(r.nspawn()); }

bool earlier_boot(const ContainerRecord& r) { return r.boot_id != sys::boot_id(); }

std::vector<std::string> recorded_names(const StateDir& state) {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(state.containers_dir(), ec)) {
        const auto& p = entry.path();
        if (p.extension() != ".json") continue;
        std::string name = p.stem().string();
        if (name.empty() || name.front() == '.') continue;  // temporary files of atomic writes
        names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<ContainerRecord> running(const config::Config& c) {
    StateDir state(c);
    std::vector<ContainerRecord> out;
    for (const auto& ct : c.fleet)
        if (auto r = state.load(ct.name); r && is_running(*r)) out.push_back(*r);
    return out;
}

}  // namespace aplspawn::fleet
