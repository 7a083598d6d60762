// Passwordless sudo for the fleet's user when the image has sudo: a drop-in in /etc/sudoers.d
// (0440), checked with the host's visudo first, and an includedir line in /etc/sudoers when the
// image's lacks one.
#include "aplspawn/sys/process.hpp"
#include "aplspawn/sys/programs.hpp"
#include "fleet/provision_accounts.hpp"
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <set>

namespace aplspawn::fleet::detail {
namespace {

// visudo -c on the content, given on its stdin ("-f -"): a drop-in with a syntax error would
// make the container's sudo refuse to run at all. No file on the host. The host's visudo is
// required then (sys/programs.hpp: a missing one is named with its package). A content that
// passed is not checked again in this process: a fleet's containers share one user and so one
// drop-in, and provisioning them forked one visudo each (containers are provisioned in
// parallel, hence the lock).
void check_with_visudo(const std::string& name, const std::string& content) {
    static std::mutex mutex;
    static std::set<std::string> passed;
    {
        std::lock_guard lock(mutex);
        if (passed.contains(content)) return;
    }
    auto visudo = sys::require_program("visudo");
    sys::RunOptions o;
    o.timeout = std::chrono::seconds(30);
    o.input = content;
    auto r = sys::run({visudo.string(), "-c", "-f", "-"}, o);
    if (!r.ok())
        throw Error(fmt::format("check sudoers drop-in {} with visudo: {}: {}", name, r.describe(),
                                r.err.empty() ? r.out : r.err));
    std::lock_guard lock(mutex);
    passed.insert(content);
}

}  // namespace

void provision_sudo(Step& s) {
    const auto& root = s.root;
    const bool has_sudo = root.is_executable("/usr/bin/sudo") || root.is_executable("/bin/sudo") ||
                          root.is_executable("/usr/local/bin/sudo");
    if (!has_sudo) return;
    auto sudoers = root.read_file("/etc/sudoers");
    if (!sudoers) {
        s.result.notes.push_back("the image has sudo but no /etc/sudoers: no sudo for " + s.spec.user);
        return;
    }
    const std::string name = text::sudoers_dropin_name(s.spec.user);
    const std::string content = text::sudoers_dropin(s.spec.user);
    const std::string path = "/etc/sudoers.d/" + name;

    // Only check when the file has to be written: the check forks visudo.
    auto current = root.symlink_status(path);
    bool up_to_date = current && S_ISREG(current->st_mode) &&
                      (current->st_mode & 07777) == 0440 && current->st_uid == 0 &&
                      current->st_gid == 0 && root.read_file(path) == content;
    if (!up_to_date) check_with_visudo(name, content);
    s.note(root.ensure_dir("/etc/sudoers.d"), "created /etc/sudoers.d");
    s.note(root.write_file(path, content, {0440, {}}), "wrote " + path);

    if (!text::sudoers_includes_dropins(*sudoers)) {
        std::string updated = accounts::append_line(
            *sudoers, "# Added by aplspawn: read the drop-ins in /etc/sudoers.d.\n"
                      "#includedir /etc/sudoers.d");
        s.note(write_keeping_attrs(root, "/etc/sudoers", updated, {0440, {}}),
               "added #includedir /etc/sudoers.d to /etc/sudoers");
    }
    s.result.has_sudo = true;
}

}  // namespace aplspawn::fleet::detail
