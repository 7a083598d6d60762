#include "aplspawn/fleet/boot_unit.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/fleet/systemd.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/fs.hpp"

#include <unistd.h>

#include <optional>

#include <fmt/format.h>

namespace aplspawn::fleet {

std::string escape_unit_path(const fs::path& absolute) {
    // systemd's unit_name_path_escape: drop leading, trailing and doubled slashes, "/" -> "-",
    // every byte but [A-Za-z0-9:_.] (and a leading ".") -> \xNN; "/" alone -> "-".
    std::string p = absolute.lexically_normal().string();
    std::string out;
    bool slash = true;  // at the start: skip slashes
    for (char ch : p) {
        if (ch == '/') {
            if (!slash) out += '-';
            slash = true;
            continue;
        }
        slash = false;
        auto c = static_cast<unsigned char>(ch);
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == ':' || c == '_' || (c == '.' && !out.empty());
        out += plain ? std::string(1, ch) : fmt::format("\\x{:02x}", c);
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out.empty() ? "-" : out;
}

std::string boot_unit_name(const fs::path& config_file) {
    std::string name = fmt::format("aplspawn-fleet-{}.service", escape_unit_path(config_file));
    if (name.size() <= 255) return name;
    image::Sha256 h;
    h.update(config_file.lexically_normal().string());
    return fmt::format("aplspawn-fleet-{}.service", h.hex().substr(0, 16));
}

std::string quote_exec_argument(const std::string& arg) {
    std::string out = "\"";
    for (char c : arg) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '%') out += '%';
        if (c == '$') out += '$';
        out += c;
    }
    return out + "\"";
}

std::string boot_unit_text(const fs::path& binary, const fs::path& config_file) {
    auto cmd = [&](std::string_view op) {
        return fmt::format("{} -c {} -o {}", quote_exec_argument(binary.string()),
                           quote_exec_argument(config_file.string()), op);
    };
    std::string description;  // % starts a specifier there
    for (char ch : config_file.string()) description += ch == '%' ? std::string("%%") : std::string(1, ch);
    return fmt::format(
        "{marker} for the fleet of {config}.\n"
        "# `aplspawn -c {config} -o disable` removes it (and only units with this first line).\n"
        "[Unit]\n"
        "Description=aplspawn fleet of {description}\n"
        "Documentation=man:aplspawn(1)\n"
        "Wants=network-online.target\n"
        "After=network-online.target local-fs.target\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "Environment=NO_COLOR=1\n"
        "ExecStart={netup}\n"
        "ExecStart={spawn}\n"
        "ExecStop={stop}\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n",
        fmt::arg("marker", kBootUnitMarker), fmt::arg("config", config_file.string()),
        fmt::arg("description", description),
        fmt::arg("netup", cmd("netup")), fmt::arg("spawn", cmd("spawn")), fmt::arg("stop", cmd("stop")));
}

BootUnit boot_unit(const config::Config& c, const fs::path& unit_dir) {
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) throw Error(fmt::format("find the aplspawn binary (/proc/self/exe): {}", ec.message()));
    BootUnit u;
    u.name = boot_unit_name(c.file);
    u.file = unit_dir / u.name;
    u.text = boot_unit_text(self, c.file);
    return u;
}

bool written_by_aplspawn(const std::string& text) { return text.starts_with(kBootUnitMarker); }

namespace {

void require_systemd(std::string_view op) {
    if (systemd::Manager::is_init()) return;
    throw Error(fmt::format(
        "{}: this host does not run systemd as its init (no /run/systemd/system): nothing can "
        "start the fleet at boot here; run `aplspawn -c CONFIG -o netup` and `-o spawn` from your "
        "init system's boot scripts instead",
        op));
}

// The text of the unit file as it is now; refuses a file aplspawn did not write.
std::optional<std::string> existing(const BootUnit& u, std::string_view op) {
    auto text = with_context(fmt::format("{}: read {}", op, u.file.string()),
                             [&] { return sys::read_file_if_exists(u.file); });
    if (text && !written_by_aplspawn(*text))
        throw Error(fmt::format("{}: {} exists and was not written by aplspawn (its first line is "
                                "not \"{}\"): left alone",
                                op, u.file.string(), kBootUnitMarker));
    return text;
}

void line(bool dry_run, bool changes, const std::string& text) {
    if (!changes) out::ok(text + std::string(out::already_so));
    else if (dry_run) out::plan(text);
    else out::ok(text);
}

}  // namespace

void enable_at_boot(const config::Config& c, bool dry_run) {
    require_systemd("enable");
    BootUnit u = boot_unit(c);
    auto now = existing(u, "enable");
    const bool write = !now || *now != u.text;
    std::optional<systemd::Manager> m;
    std::optional<std::string> state;
    if (!dry_run || !write) {
        m.emplace();
        if (!write) state = m->unit_file_state(u.name);
    }
    const std::string wrote = fmt::format("Writing unit {} (netup, then spawn, of {} at boot)",
                                          u.file.string(), c.file.string());
    if (dry_run) {
        line(true, write, wrote);
        if (write) out::plan("Reloading systemd (daemon-reload)");
        line(true, write || state != "enabled",
             fmt::format("Enabling {} (multi-user.target, after network-online.target)", u.name));
        return;
    }
    if (write) {
        with_context(fmt::format("enable: write {}", u.file.string()),
                     [&] { sys::write_file_atomic(u.file, u.text, 0644); });
        m->reload();
    }
    line(false, write, wrote);
    bool enabled = m->enable_unit_file(u.name);
    line(false, enabled, fmt::format("Enabling {} (multi-user.target, after network-online.target)", u.name));
    if (write || enabled)
        out::info(fmt::format("The fleet comes up at the next boot; `systemctl start {}` brings it up now",
                              u.name));
}

void disable_at_boot(const config::Config& c, bool dry_run) {
    require_systemd("disable");
    BootUnit u = boot_unit(c);
    auto now = existing(u, "disable");
    systemd::Manager m;
    auto state = m.unit_file_state(u.name);
    // Enabled links without the file (removed by hand): systemd still knows the name.
    const bool linked = state && *state != "disabled" && *state != "static";
    const std::string disabling = fmt::format("Disabling {} (the fleet no longer comes up at boot)", u.name);
    const std::string removing = fmt::format("Removing unit {}", u.file.string());
    if (dry_run) {
        line(true, now && linked, disabling);
        line(true, now.has_value(), removing);
        if (now) out::plan("Reloading systemd (daemon-reload)");
        return;
    }
    bool disabled = now && linked ? m.disable_unit_file(u.name) : false;
    line(false, disabled, disabling);
    if (now) {
        if (::unlink(u.file.c_str()) < 0 && errno != ENOENT)
            throw_errno(fmt::format("disable: remove {}", u.file.string()));
        m.reload();
    }
    line(false, now.has_value(), removing);
    if (now && m.active_state(u.name) == std::optional<std::string>("active"))
        out::info(fmt::format("{} stays active until shutdown (the fleet keeps running); "
                              "aplspawn -o stop stops the fleet now",
                              u.name));
}

}  // namespace aplspawn::fleet
