#include "config/resources.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/text.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace aplspawn::config {
namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kMinMemory = 32 * kMiB;
constexpr std::uint64_t kMaxMemory = std::uint64_t{1} << 50;  // 1 PiB: beyond any machine
// A booted container's systemd, journald, logind and sshd alone are some dozens of tasks.
constexpr long long kMinTasks = 32;
constexpr long long kMaxTasks = 4194304;  // the kernel's PID_MAX_LIMIT

std::optional<long long> number(std::string_view s) {
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

std::optional<std::uint64_t> parse_memory_size(std::string_view text) {
    if (text.size() < 2) return std::nullopt;
    std::uint64_t unit = 0;
    switch (text.back()) {
    case 'K': case 'k': unit = 1024; break;
    case 'M': case 'm': unit = kMiB; break;
    case 'G': case 'g': unit = 1024 * kMiB; break;
    default: return std::nullopt;
    }
    auto n = number(text.substr(0, text.size() - 1));
    if (!n || *n < 0 || static_cast<std::uint64_t>(*n) > kMaxMemory / unit) return std::nullopt;
    return static_cast<std::uint64_t>(*n) * unit;
}

std::optional<std::vector<int>> parse_cpu_list(std::string_view text) {
    std::vector<int> out;
    if (text.empty()) return std::nullopt;
    while (!text.empty()) {
        auto comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        auto dash = item.find('-');
        auto lo = number(item.substr(0, dash));
        auto hi = dash == std::string_view::npos ? lo : number(item.substr(dash + 1));
        if (!lo || !hi || *lo < 0 || *hi < *lo || *hi > 65535) return std::nullopt;
        for (long long c = *lo; c <= *hi; ++c) out.push_back(static_cast<int>(c));
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
        if (text.empty()) return std::nullopt;  // "0,"
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::string cpu_list_string(const std::vector<int>& cpus) {
    std::string out;
    for (std::size_t i = 0; i < cpus.size();) {
        std::size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
        if (!out.empty()) out += ',';
        out += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
        i = j + 1;
    }
    return out;
}

std::vector<int> host_cpus() {
    std::ifstream in("/sys/devices/system/cpu/online");
    std::string line;
    if (in && std::getline(in, line))
        if (auto cpus = parse_cpu_list(text::trim_blanks(line)); cpus && !cpus->empty()) return *cpus;
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    std::vector<int> out;
    for (long i = 0; i < std::max(1L, n); ++i) out.push_back(static_cast<int>(i));
    return out;
}

Resources read_resources(const YamlReader& r, const std::string& key, const std::vector<int>& host) {
    Resources res;
    auto node = r.mapping(key, false);
    if (!node) return res;
    const std::string mk = key + ".memory", ck = key + ".cpus", tk = key + ".tasks";
    if (auto m = r.string(mk, false)) {
        auto bytes = parse_memory_size(*m);
        if (!bytes)
            r.fail(mk, fmt::format("{} is not a memory size (a number with K, M or G: 512M, 2G)",
                                   quote(*m)));
        if (*bytes < kMinMemory)
            r.fail(mk, fmt::format("{} is less than the 32M a booted container needs", quote(*m)));
        res.memory_bytes = *bytes;
    }
    if (auto c = r.node(ck); c && !c->IsNull()) {
        const std::string all = cpu_list_string(host);
        if (c->IsScalar() && c->Tag() != "!") {
            // A plain number: how many CPUs (the first N of the host's).
            auto n = number(c->Scalar());
            if (!n)
                r.fail(ck, fmt::format("{} is neither a count of CPUs nor a quoted list of CPU "
                                       "numbers (\"0-1\", \"1\")",
                                       quote(c->Scalar())));
            if (*n < 1 || static_cast<std::size_t>(*n) > host.size())
                r.fail(ck, fmt::format("{} is out of range 1..{} (this host's CPUs: {})", *n,
                                       host.size(), all));
            res.cpus.assign(host.begin(), host.begin() + *n);
        } else {
            // A quoted list or range of CPU numbers, or a YAML list of them.
            std::string text;
            if (c->IsScalar()) {
                text = c->Scalar();
            } else if (c->IsSequence()) {
                for (const auto& item : *c) {
                    if (!item.IsScalar()) r.fail(ck, "must be a list of CPU numbers");
                    text += (text.empty() ? "" : ",") + item.Scalar();
                }
            } else {
                r.fail(ck, "must be a count of CPUs or a list of CPU numbers, not a mapping");
            }
            auto cpus = parse_cpu_list(text);
            if (!cpus)
                r.fail(ck, fmt::format("{} is not a list of CPU numbers (\"0-1\", \"0,2\", \"1\")",
                                       quote(text)));
            for (int cpu : *cpus)
                if (!std::binary_search(host.begin(), host.end(), cpu))
                    r.fail(ck, fmt::format("CPU {} of {} is not one of this host's CPUs ({})", cpu,
                                           quote(text), all));
            res.cpus = *cpus;
        }
    }
    if (auto t = r.integer(tk, false)) {
        if (*t < kMinTasks || *t > kMaxTasks)
            r.fail(tk, fmt::format("{} is out of range {}..{}", *t, kMinTasks, kMaxTasks));
        res.tasks = static_cast<std::uint64_t>(*t);
    }
    return res;
}

}  // namespace aplspawn::config
