#include "aplspawn/fleet/known_hosts.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {
namespace {

std::vector<std::string_view> split_ws(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j;
    }
    return out;
}

// Whether a known_hosts line is for exactly this host (its first field is a comma list).
bool line_is_for(std::string_view line, const std::string& ip) {
    auto f = split_ws(line);
    if (f.empty() || f[0].front() == '#') return false;
    std::string_view hosts = f[0];
    while (!hosts.empty()) {
        auto c = hosts.find(',');
        if (hosts.substr(0, c) == ip) return true;
        if (c == std::string_view::npos) break;
        hosts.remove_prefix(c + 1);
    }
    return false;
}

template <class F>
void for_each_line(std::string_view text, F&& f) {
    while (!text.empty()) {
        auto nl = text.find('\n');
        f(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
}

}  // namespace

std::string known_hosts_without(std::string_view current, const std::string& ip) {
    std::string out;
    for_each_line(current, [&](std::string_view line) {
        if (line.empty() || line_is_for(line, ip)) return;
        out.append(line);
        out.push_back('\n');
    });
    return out;
}

std::string known_hosts_with(std::string_view current, const std::string& ip,
                             const std::vector<std::string>& keys) {
    std::string lines;
    for (const auto& k : keys) {
        auto f = split_ws(k);
        if (f.size() < 2) throw Error(fmt::format("known_hosts {}: not a public key: {}", ip, k));
        lines += fmt::format("{} {} {}\n", ip, f[0], f[1]);
    }
    // In place of the address's first line (the file stays as it was when the keys are the
    // same, whatever order the containers were provisioned in), else at the end.
    std::string out;
    bool placed = false;
    for_each_line(current, [&](std::string_view line) {
        if (line.empty()) return;
        if (line_is_for(line, ip)) {
            if (!placed) out += lines;
            placed = true;
            return;
        }
        out.append(line);
        out.push_back('\n');
    });
    if (!placed) out += lines;
    return out;
}

std::vector<std::string> known_hosts_keys(std::string_view current, const std::string& ip) {
    std::vector<std::string> out;
    for_each_line(current, [&](std::string_view line) {
        if (!line_is_for(line, ip)) return;
        auto f = split_ws(line);
        if (f.size() >= 3) out.push_back(fmt::format("{} {}", f[1], f[2]));
    });
    return out;
}

bool KnownHostsFile::set(const std::string& ip, const std::vector<std::string>& keys) {
    std::lock_guard lock(mutex_);
    std::string current = sys::read_file_if_exists(path_).value_or("");
    std::string next = known_hosts_with(current, ip, keys);
    if (next == current) return false;
    sys::ensure_dir(path_.parent_path(), 0700);  // the state directory: private
    sys::write_file_atomic(path_, next, 0644);
    return true;
}

bool KnownHostsFile::remove(const std::string& ip) {
    std::lock_guard lock(mutex_);
    auto current = sys::read_file_if_exists(path_);
    if (!current) return false;
    std::string next = known_hosts_without(*current, ip);
    if (next == *current) return false;
    sys::write_file_atomic(path_, next, 0644);
    return true;
}

std::vector<std::string> KnownHostsFile::keys(const std::string& ip) const {
    std::lock_guard lock(mutex_);
    return known_hosts_keys(sys::read_file_if_exists(path_).value_or(""), ip);
}

}  // namespace aplspawn::fleet
