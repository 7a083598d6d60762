#include "fleet/provision_text.hpp"

#include "aplspawn/error.hpp"

#include <sys/random.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace aplspawn::fleet::text {
namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return lines;
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> w;
    size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t' && line[j] != '\r') ++j;
        if (j > i) w.push_back(line.substr(i, j - i));
        i = j;
    }
    return w;
}

// The words of a line before any '#' comment.
std::vector<std::string_view> data_words(std::string_view line) {
    return words(line.substr(0, line.find('#')));
}

bool is_key_type(std::string_view w) {
    return w.starts_with("ssh-") || w.starts_with("ecdsa-sha2-") || w.starts_with("sk-ssh-") ||
           w.starts_with("sk-ecdsa-");
}

bool is_base64(std::string_view w) {
    if (w.size() < 16) return false;
    return std::all_of(w.begin(), w.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/' || c == '=';
    });
}

}  // namespace

namespace {

// The lines of /etc/hosts without the ones aplspawn manages for the container (127.0.1.1 or IP,
// or NAME as their only name) and without the fleet's block; where the first managed line was,
// and just after the first 127.0.0.1 line.
struct HostsLines {
    std::vector<std::string> lines;
    std::optional<size_t> at, after_local;
};

HostsLines strip_managed(std::string_view hosts, std::string_view name, const std::string& ip_text) {
    HostsLines h;
    bool in_block = false;
    for (std::string_view line : lines_of(hosts)) {
        if (line == kFleetBegin) {
            in_block = true;
            continue;
        }
        if (in_block) {
            if (line == kFleetEnd) in_block = false;
            continue;
        }
        auto w = data_words(line);
        bool managed = !w.empty() && (w[0] == "127.0.1.1" || w[0] == ip_text ||
                                      (w.size() == 2 && w[1] == name));
        if (managed) {
            if (!h.at) h.at = h.lines.size();
            continue;
        }
        h.lines.emplace_back(line);
        if (!h.after_local && !w.empty() && w[0] == "127.0.0.1") h.after_local = h.lines.size();
    }
    while (!h.lines.empty() && h.lines.back().empty()) h.lines.pop_back();
    return h;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    return text;
}

}  // namespace

std::string hosts_with(std::string_view hosts, std::string_view name, Ipv4 ip,
                       const std::vector<HostEntry>& fleet) {
    const std::string ip_text = ip.str();
    HostsLines h = strip_managed(hosts, name, ip_text);
    const std::vector<std::string> ours{fmt::format("{}\t{}", ip_text, name),
                                        fmt::format("127.0.1.1\t{}", name)};
    size_t pos = h.at ? *h.at : h.after_local ? *h.after_local : h.lines.size();
    pos = std::min(pos, h.lines.size());
    h.lines.insert(h.lines.begin() + static_cast<std::ptrdiff_t>(pos), ours.begin(), ours.end());
    std::vector<std::string> block;
    for (const auto& e : fleet)
        if (e.name != name) block.push_back(fmt::format("{}\t{}", e.ip.str(), e.name));
    if (!block.empty()) {
        h.lines.emplace_back(kFleetBegin);
        h.lines.insert(h.lines.end(), block.begin(), block.end());
        h.lines.emplace_back(kFleetEnd);
    }
    return joined(h.lines);
}

std::string hosts_without(std::string_view hosts, std::string_view name, Ipv4 ip) {
    return joined(strip_managed(hosts, name, ip.str()).lines);
}

bool is_valid_machine_id(std::string_view content) {
    if (content.ends_with('\n')) content.remove_suffix(1);
    if (content.size() != 32) return false;
    bool nonzero = false;
    for (char c : content) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        if (c != '0') nonzero = true;
    }
    return nonzero;
}

std::string new_machine_id() {
    std::uint8_t b[16];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error::from_errno("getrandom for a machine-id", errno);
        }
        got += static_cast<size_t>(n);
    }
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
    std::string id;
    for (auto x : b) id += fmt::format("{:02x}", x);
    return id;
}

std::string sudoers_dropin(std::string_view user) {
    return fmt::format("# Written by aplspawn: passwordless sudo for the fleet's user.\n"
                       "{} ALL=(ALL:ALL) NOPASSWD: ALL\n",
                       user);
}

std::string sudoers_dropin_name(std::string_view user) {
    std::string name = fmt::format("aplspawn-{}", user);
    std::replace(name.begin(), name.end(), '.', '_');
    return name;
}

bool sudoers_includes_dropins(std::string_view sudoers) {
    for (std::string_view line : lines_of(sudoers)) {
        auto w = words(line);
        if (w.size() == 2 && (w[0] == "@includedir" || w[0] == "#includedir") &&
            (w[1] == "/etc/sudoers.d" || w[1] == "/etc/sudoers.d/"))
            return true;
    }
    return false;
}

std::optional<std::string> public_key_id(std::string_view line) {
    auto w = words(line);
    if (w.empty() || w[0].starts_with("#")) return std::nullopt;
    for (size_t i = 0; i + 1 < w.size(); ++i)
        if (is_key_type(w[i]) && is_base64(w[i + 1]))
            return fmt::format("{} {}", w[i], w[i + 1]);
    return std::nullopt;
}

std::string authorized_keys_with(std::string_view existing, std::string_view keys) {
    std::string out(existing);
    std::vector<std::string> have;
    for (std::string_view line : lines_of(existing))
        if (auto id = public_key_id(line)) have.push_back(*id);
    for (std::string_view line : lines_of(keys)) {
        auto id = public_key_id(line);
        if (!id || std::find(have.begin(), have.end(), *id) != have.end()) continue;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (!out.empty() && out.back() != '\n') out += '\n';
        out += line;
        out += '\n';
        have.push_back(*id);
    }
    return out;
}

std::string resolv_conf_for(Ipv4 dns) {
    return fmt::format("# Written by aplspawn (cntVariables.dnsAddress).\nnameserver {}\n",
                       dns.str());
}

std::vector<std::string> nameservers(std::string_view resolv) {
    std::vector<std::string> out;
    for (std::string_view line : lines_of(resolv)) {
        auto w = words(line.substr(0, line.find_first_of("#;")));
        if (w.size() >= 2 && w[0] == "nameserver") out.emplace_back(w[1]);
    }
    return out;
}

bool is_resolved_stub(std::string_view resolv) {
    for (auto& ns : nameservers(resolv))
        if (ns == "127.0.0.53" || ns == "127.0.0.54") return true;
    return false;
}

std::string networkd_interface(std::string_view name, Ipv4 ip, int prefix, std::optional<Ipv4> gateway,
                               std::optional<Ipv4> dns) {
    std::string s = fmt::format(
        "# Written by aplspawn: {0}'s static address, set by aplspawn from the host before the\n"
        "# container started. This file keeps systemd-networkd from replacing it (no DHCP; on\n"
        "# host0 its 80-container-host0.network would ask for it) or dropping it at start.\n"
        "[Match]\n"
        "Name={0}\n"
        "Virtualization=container\n"
        "\n"
        "[Network]\n"
        "Address={1}/{2}\n",
        name, ip.str(), prefix);
    if (gateway) s += fmt::format("Gateway={}\n", gateway->str());
    if (dns) s += fmt::format("DNS={}\n", dns->str());
    s += "DHCP=no\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nKeepConfiguration=static\n";
    return s;
}

std::string networkd_file(std::string_view interface) { return fmt::format("10-aplspawn-{}.network", interface); }

bool is_networkd_file(std::string_view f) {
    return f.starts_with("10-aplspawn-") && f.ends_with(".network") && f.size() > 20;
}

Record parse_record(std::string_view text) {
    Record r;
    for (std::string_view line : lines_of(text)) {
        if (line.empty() || line.front() == '#') continue;
        size_t sp = line.find(' ');
        if (sp == std::string_view::npos) continue;
        std::string_view key = line.substr(0, sp), value = line.substr(sp + 1);
        if (key == "hostname") r.hostname = value;
        else if (key == "machine-id") r.machine_id = value;
        else if (key == "host-key") r.host_keys.emplace_back(value);
        else if (key == "masked") r.masked.emplace_back(value);
        else if (key == "masked-generator") r.masked_generators.emplace_back(value);
    }
    return r;
}

std::string format_record(const Record& r) {
    std::string s =
        "# Written by aplspawn: the identity it gave this container. A respawn keeps the\n"
        "# machine-id and SSH host keys listed here and replaces any others.\n";
    s += fmt::format("hostname {}\n", r.hostname);
    if (!r.machine_id.empty()) s += fmt::format("machine-id {}\n", r.machine_id);
    for (auto& k : r.host_keys) s += fmt::format("host-key {}\n", k);
    for (auto& u : r.masked) s += fmt::format("masked {}\n", u);
    for (auto& g : r.masked_generators) s += fmt::format("masked-generator {}\n", g);
    return s;
}

}  // namespace aplspawn::fleet::text
