// fleet::provision: validates the spec, then runs the steps (provision_steps.hpp) in order and
// writes aplspawn's record of the identity it gave the container.
#include "aplspawn/fleet/provision.hpp"

#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/mount.hpp"

#include "fleet/provision_accounts.hpp"
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace aplspawn::fleet {
namespace detail {

constexpr std::string_view kRecordDir = "/var/lib/aplspawn";
constexpr std::string_view kRecordFile = "/var/lib/aplspawn/provision";

Change write_keeping_attrs(const sys::RootFs& root, std::string_view path,
                           std::string_view content, const sys::FileAttrs& fallback) {
    sys::FileAttrs attrs = fallback;
    if (auto st = root.symlink_status(path); st && S_ISREG(st->st_mode))
        attrs = {static_cast<mode_t>(st->st_mode & 07777), {st->st_uid, st->st_gid}};
    return root.write_file(path, content, attrs);
}

}  // namespace detail

namespace {

void validate(const ProvisionSpec& spec) {
    if (!config::is_valid_machine_name(spec.hostname))
        throw Error(fmt::format("'{}' is not a valid host name", spec.hostname));
    if (!accounts::is_valid_name(spec.user))
        throw Error(fmt::format("'{}' is not a valid user name", spec.user));
    if (spec.user == "root") throw Error("the fleet's user cannot be root");
    if (!accounts::is_valid_name(spec.group))
        throw Error(fmt::format("'{}' is not a valid group name", spec.group));
    if (spec.prefix < 1 || spec.prefix > 32)
        throw Error(fmt::format("network prefix /{} is out of range", spec.prefix));
    const auto& known = config::known_host_key_types();
    if (spec.host_key_types.empty()) throw Error("no SSH host key type to generate");
    for (const auto& t : spec.host_key_types)
        if (std::find(known.begin(), known.end(), t) == known.end())
            throw Error(fmt::format("'{}' is not an SSH host key type", t));
    bool key = false;
    std::string_view rest = spec.authorized_key;
    while (!rest.empty() && !key) {
        size_t nl = rest.find('\n');
        key = text::public_key_id(rest.substr(0, nl)).has_value();
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
    if (!key)
        throw Error("the SSH public key to authorize (cntVariables.sshPublicKeyPath) holds no "
                    "public key line");
}

// Where the container's writes land on the host: the overlay's upper directory when root is an
// overlay, else root itself. For a "no space" message that names the filesystem to free.
std::filesystem::path written_to(const std::filesystem::path& root) {
    try {
        auto m = sys::find_mount(sys::read_mountinfo(), sys::canonical_for_mountinfo(root));
        if (m && m->fstype == "overlay")
            if (auto upper = m->super_option("upperdir")) return *upper;
    } catch (const Error&) {
    }
    return root;
}

ProvisionResult provision_root(const std::filesystem::path& root, const ProvisionSpec& spec);

}  // namespace

ProvisionResult provision(const std::filesystem::path& root, const ProvisionSpec& spec) {
    try {
        return provision_root(root, spec);
    } catch (Error& e) {
        if (!sys::is_no_space(e.sys_errno())) throw;
        throw sys::with_no_space_hint(std::move(e), written_to(root));
    }
}

namespace {

ProvisionResult provision_root(const std::filesystem::path& root, const ProvisionSpec& spec) {
    return with_context(fmt::format("provision {} ({})", spec.hostname, root.string()), [&] {
        validate(spec);
        sys::RootFs rootfs(root);
        text::Record previous =
            text::parse_record(rootfs.read_file(detail::kRecordFile).value_or(""));
        if (previous.hostname != spec.hostname) previous = {};  // not this container's
        text::Record record;
        record.hostname = spec.hostname;
        ProvisionResult result;
        detail::Step step{rootfs, spec, previous, record, result};

        detail::provision_identity(step);
        detail::provision_user(step);
        detail::provision_sudo(step);
        detail::provision_resolver(step);
        detail::provision_networkd(step);
        detail::provision_host_keys(step);
        detail::provision_boot_profile(step);
        detail::provision_ansible_python(step);

        step.note(rootfs.ensure_dir(detail::kRecordDir),
                  fmt::format("created {}", detail::kRecordDir));
        step.note(rootfs.write_file(detail::kRecordFile, text::format_record(record)),
                  fmt::format("wrote {}", detail::kRecordFile));
        return result;
    });
}

}  // namespace

Change update_hosts(const std::filesystem::path& root, const std::string& hostname, Ipv4 ip,
                    const std::vector<HostEntry>& fleet) {
    return with_context(fmt::format("update /etc/hosts of {} ({})", hostname, root.string()), [&] {
        sys::RootFs rootfs(root);
        return detail::write_hosts(rootfs, hostname, ip, fleet);
    });
}

}  // namespace aplspawn::fleet
