// The programs aplspawn runs, each with the Debian package that installs it, and the one way to
// require one: a program that is missing or cannot run is one line naming it and its package
// ("ssh is not installed: no ssh in PATH (Debian package openssh-client)"), exit 1, wherever it
// is needed (a prerequisite check, or sys::run / sys::spawn of it, also in a parallel worker).
// New features that run a program add it to the table (programs.cpp) and call require_program.
#pragma once

#include "aplspawn/error.hpp"

#include <filesystem>
#include <span>
#include <string_view>

namespace aplspawn::sys {

struct Program {
    std::string_view name;     // as looked up in PATH: "ssh"
    std::string_view package;  // the Debian package that installs it: "openssh-client"
    std::string_view used_for; // what aplspawn runs it for, for docs and messages
};

// Every program aplspawn runs (ssh, ssh-keygen, systemd-nspawn, visudo, mksquashfs, lxcfs).
std::span<const Program> programs();

// The table's entry for a program name (a path's last component counts: "/usr/bin/ssh").
const Program* find_known_program(std::string_view name);

// The absolute path of `name` in PATH. Throws Error (exit 1) when it is not there:
// "NAME is not installed: no NAME in PATH (Debian package PKG)".
std::filesystem::path require_program(std::string_view name);

// The Error for a program that was found at `path` but cannot be started (exec's errno):
// "NAME (PATH) cannot run: REASON (reinstall the Debian package PKG)". With path empty and
// err ENOENT: the "is not installed" error above.
Error program_error(std::string_view name, const std::filesystem::path& path, int err);

}  // namespace aplspawn::sys
