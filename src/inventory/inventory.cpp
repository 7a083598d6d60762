#include "aplspawn/inventory/inventory.hpp"

#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/fleet/resources.hpp"
#include "aplspawn/fleet/state.hpp"
#include "aplspawn/inventory/format.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

namespace aplspawn::inventory {
namespace {

// ssh's config-line parser splits option values at blanks and reads quotes and backslashes;
// UserKnownHostsFile also expands %-tokens. A path is given to it literally.
std::string ssh_config_word(std::string_view path) {
    std::string escaped;
    bool needs_quotes = false;
    for (char ch : path) {
        if (ch == '%') {
            escaped += "%%";
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '"' || ch == '\'' || ch == '\\' || ch == '#' ||
            ch == '=')
            needs_quotes = true;
        if (ch == '"' || ch == '\\') escaped += '\\';
        escaped += ch;
    }
    return needs_quotes ? "\"" + escaped + "\"" : escaped;
}

// openat2(2) with RESOLVE_IN_ROOT: symlinks in the image resolve inside it, as they would in the
// container. glibc 2.36 has no wrapper.
sys::UniqueFd open_in_root(const fs::path& root, const char* relative) {
    sys::UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) return {};
    open_how how{};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, dir.get(), relative, &how, sizeof how);
    return sys::UniqueFd(fd < 0 ? -1 : static_cast<int>(fd));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> Host::vars() const {
    std::vector<std::pair<std::string, std::string>> v{
        {"ansible_host", address},
        {"ansible_user", user},
        {"ansible_ssh_private_key_file", private_key},
        {"ansible_ssh_common_args", ssh_common_args},
    };
    if (!python_interpreter.empty()) v.emplace_back("ansible_python_interpreter", python_interpreter);
    return v;
}

nlohmann::ordered_json Host::all_vars() const {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [k, v] : vars()) j[k] = v;
    for (const auto& [k, v] : facts) j[k] = v;
    return j;
}

std::vector<const Host*> Inventory::hosts_of(std::string_view g) const {
    std::vector<const Host*> out;
    for (const auto& h : hosts)
        if (h.group == g) out.push_back(&h);
    return out;
}

const Host* Inventory::find(std::string_view name) const {
    for (const auto& h : hosts)
        if (h.name == name) return &h;
    return nullptr;
}

namespace {

bool executable_in_root(const fs::path& root, const char* path) {
    sys::UniqueFd fd = open_in_root(root, path + 1);
    struct stat st;
    return fd && ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

}  // namespace

std::string python_in_root(const fs::path& root) {
    constexpr const char* kPython = "/usr/bin/python3";
    if (!executable_in_root(root, kPython)) return "";
    // aplspawn's, which runs that python3 (spawn writes it, fleet/provision.hpp).
    return executable_in_root(root, fleet::kAnsiblePython) ? fleet::kAnsiblePython : kPython;
}

std::string ssh_common_args(const fs::path& known_hosts) {
    return "-o UserKnownHostsFile=" + shell_quote(ssh_config_word(known_hosts.string())) +
           " -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes";
}

Inventory from_config(const config::Config& c, const Options& options) {
    Inventory inv;
    // Pipelining: one ssh session per task instead of three (no temporary module files). Safe
    // with what aplspawn provisions: its sudoers drop-in has no requiretty (docs/inventory.md).
    inv.vars["ansible_pipelining"] = true;
    const fs::path known_hosts = options.known_hosts.empty() ? fleet::StateDir(c).known_hosts() : options.known_hosts;
    const std::string common_args = ssh_common_args(fs::absolute(known_hosts).lexically_normal());
    const bool through_hosts = c.multi_host() && !c.local && !options.direct;
    if (c.has_groups())
        for (const auto& g : c.groups) inv.children.push_back({g->name, g->ansible_vars});
    // Each image's own root, for containers whose overlay is not mounted.
    std::map<std::string, std::string> image_python;
    for (const auto* im : c.images()) image_python[im->name] = python_in_root(c.paths.lower / im->name);
    for (const auto& ct : c.fleet) {
        Host h;
        h.name = ct.name;
        h.group = ct.group->name;
        h.address = ct.ip.str();
        h.user = ct.vars().user_name;
        h.private_key = fs::absolute(ct.common().ssh_private_key).lexically_normal().string();
        h.ssh_common_args = common_args;
        const config::Host* on = c.host_of(*ct.group);
        if (on && through_hosts) h.ssh_common_args += " -o ProxyJump=" + on->address.str();
        h.python_interpreter = python_in_root(ct.common().home_path / ct.name);
        if (h.python_interpreter.empty()) h.python_interpreter = image_python[ct.image().name];
        h.facts = {{"aplspawn_group", ct.group->name}, {"aplspawn_image", ct.image().name}};
        if (on) h.facts.emplace_back("aplspawn_host", on->name);
        // Its addresses on the other networks, by network (ansible_host stays the main one).
        if (!c.networks.empty()) {
            nlohmann::ordered_json nets = nlohmann::ordered_json::object();
            for (const auto& a : ct.networks) nets[a.network->name] = a.ip.str();
            h.facts.emplace_back("aplspawn_networks", std::move(nets));
        }
        for (const auto& [k, v] : fleet::limit_host_vars(ct.group->resources)) h.facts.emplace_back(k, v);
        inv.hosts.push_back(std::move(h));
    }
    return inv;
}

Change write_file(const fs::path& path, std::string_view text) {
    if (auto old = sys::read_file_if_exists(path); old && *old == text) return Change::unchanged;
    sys::write_file_atomic(path, text, 0644);
    return Change::changed;
}

}  // namespace aplspawn::inventory
