// The unit that brings a fleet back at boot on a systemd host (`aplspawn enable` / `disable`):
// one oneshot service per config file, aplspawn-fleet-<escaped config path>.service in
// /etc/systemd/system, that runs `netup` then `spawn` for that config once the network is up
// (After/Wants=network-online.target, WantedBy=multi-user.target) and `stop` when it is stopped
// (at shutdown). Its first line marks it as aplspawn's: disable removes only a unit with it.
#pragma once

#include "aplspawn/config.hpp"

#include <filesystem>
#include <string>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

// The first line of every unit aplspawn writes.
inline constexpr std::string_view kBootUnitMarker = "# Written by aplspawn enable";

// systemd's path escaping (systemd-escape --path): "/etc/aplspawn/a b.yaml" ->
// "etc-aplspawn-a\x20b.yaml".
std::string escape_unit_path(const fs::path& absolute);

// "aplspawn-fleet-<escaped config path>.service"; a path whose escaped form would make the name
// longer than systemd allows (255) is named by the first 16 hex digits of its SHA-256 instead.
std::string boot_unit_name(const fs::path& config_file);

// One argument of an Exec*= line, quoted for systemd ("..." with \, " escaped; % and $ doubled).
std::string quote_exec_argument(const std::string& arg);

// The unit's text: `binary -c CONFIG -o netup|spawn|stop`.
std::string boot_unit_text(const fs::path& binary, const fs::path& config_file);

struct BootUnit {
    std::string name;  // aplspawn-fleet-....service
    fs::path file;     // /etc/systemd/system/NAME (unit_dir / name)
    std::string text;  // what it should contain
};

// The unit of this config, written by this binary (/proc/self/exe), in unit_dir.
BootUnit boot_unit(const config::Config& c, const fs::path& unit_dir = "/etc/systemd/system");

// Whether the file at `file` is a unit aplspawn wrote (it starts with kBootUnitMarker).
bool written_by_aplspawn(const std::string& text);

// `enable`: writes the unit (atomically, only when its text differs), reloads systemd and enables
// it (the multi-user.target.wants link). `disable`: disables it, removes the file, reloads. Both
// print one line per step ("(already so)" when nothing changed; plan lines when dry_run) and
// throw Error (exit 1) before changing anything when systemd is not this host's init, or when a
// file of that name exists that aplspawn did not write.
void enable_at_boot(const config::Config& c, bool dry_run);
void disable_at_boot(const config::Config& c, bool dry_run);

}  // namespace aplspawn::fleet
