#include "aplspawn/sys/programs.hpp"

#include "aplspawn/sys/process.hpp"

#include <fmt/format.h>

#include <array>
#include <cstring>

namespace aplspawn::sys {
namespace {

constexpr std::array kPrograms{
    Program{"systemd-nspawn", "systemd-container", "running every container"},
    Program{"ssh", "openssh-client", "waiting for a container's SSH and status's ssh check"},
    Program{"ssh-keygen", "openssh-client", "the fleet key and the containers' host keys"},
    Program{"visudo", "sudo", "checking the sudoers drop-in of an image that has sudo"},
    Program{"mksquashfs", "squashfs-tools", "container snapshots"},
    Program{"sfdisk", "fdisk", "the partition table of a snapshot's disk image"},
    Program{"lxcfs", "lxcfs", "the resource limits a container sees"},
};

std::string_view base_name(std::string_view name) {
    auto slash = name.rfind('/');
    return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

std::string package_hint(std::string_view name, std::string_view verb) {
    const Program* p = find_known_program(name);
    if (!p) return "";
    return fmt::format(" ({}Debian package {})", verb, p->package);
}

}  // namespace

std::span<const Program> programs() { return kPrograms; }

const Program* find_known_program(std::string_view name) {
    std::string_view base = base_name(name);
    for (const auto& p : kPrograms)
        if (p.name == base) return &p;
    return nullptr;
}

Error program_error(std::string_view name, const std::filesystem::path& path, int err) {
    std::string_view base = base_name(name);
    if (path.empty()) {
        std::string where = name.find('/') == std::string_view::npos
                                ? fmt::format("no {} in PATH", base)
                                : fmt::format("{} is not an executable file", name);
        return Error(fmt::format("{} is not installed: {}{}", base, where, package_hint(name, "")),
                     Exit::failed, err ? err : ENOENT);
    }
    return Error(fmt::format("{} ({}) cannot run: {}{}", base, path.string(), std::strerror(err),
                             package_hint(name, "reinstall the ")),
                 Exit::failed, err);
}

std::filesystem::path require_program(std::string_view name) {
    auto found = find_program(std::string(name));
    if (!found) throw program_error(name, {}, ENOENT);
    return *found;
}

}  // namespace aplspawn::sys
