#include "aplspawn/inventory/inventory.hpp"

#include "aplspawn/fleet/state.hpp"
#include "aplspawn/inventory/format.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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

const Host* Inventory::find(std::string_view name) const {
    for (const auto& h : hosts)
        if (h.name == name) return &h;
    return nullptr;
}

std::string python_in_root(const fs::path& root) {
    constexpr const char* kPython = "usr/bin/python3";
    sys::UniqueFd fd = open_in_root(root, kPython);
    if (!fd) return "";
    struct stat st;
    if (::fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) return "";
    return std::string("/") + kPython;
}

std::string ssh_common_args(const fs::path& known_hosts) {
    return "-o UserKnownHostsFile=" + shell_quote(ssh_config_word(known_hosts.string())) +
           " -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes";
}

Inventory from_config(const config::Config& c) {
    Inventory inv;
    const std::string key = fs::absolute(c.common.ssh_private_key).lexically_normal().string();
    const std::string common_args =
        ssh_common_args(fs::absolute(fleet::StateDir(c).known_hosts()).lexically_normal());
    // The image's own root, for containers whose overlay is not mounted.
    const std::string image_python = python_in_root(c.paths.lower / c.image.name);
    for (const auto& ct : c.fleet) {
        Host h;
        h.name = ct.name;
        h.address = ct.ip.str();
        h.user = c.vars.user_name;
        h.private_key = key;
        h.ssh_common_args = common_args;
        h.python_interpreter = python_in_root(c.common.home_path / ct.name);
        if (h.python_interpreter.empty()) h.python_interpreter = image_python;
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
