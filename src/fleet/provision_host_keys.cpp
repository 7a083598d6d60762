// Fresh SSH host keys for every container: generated with the host's ssh-keygen into a private
// (0700) staging directory inside the container's own /etc/ssh, then written into place (private
// 0600, public 0644, root). ssh-keygen is given the staging directory as /proc/PID/fd/N, so it
// writes into exactly that directory whatever symlinks the image holds; and no private key ever
// sits in a host directory (/tmp), where an interrupted run (kill -9) would leave it behind. A
// staging directory an interrupted run left in the container is removed by the next provision.
// Keys aplspawn gave this very container (its record) are kept on respawn; any others (an image
// built once carries one set, which a fleet would share) are replaced or removed.
#include "aplspawn/sys/process.hpp"
#include "fleet/provision_steps.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <future>

namespace aplspawn::fleet {

namespace detail {
namespace {

constexpr std::string_view kStaging = "/etc/ssh/.aplspawn-keygen";

std::string key_path(const std::string& type) {
    return fmt::format("/etc/ssh/ssh_host_{}_key", type);
}

// Removes the staging directory (and the files in it) when it is there. Only a real directory
// is emptied: a symlink by that name is removed itself, never followed.
Change remove_staging(const sys::RootFs& root) {
    auto st = root.symlink_status(kStaging);
    if (!st) return Change::unchanged;
    if (S_ISDIR(st->st_mode))
        for (const auto& name : root.list_dir(kStaging)) root.remove(fmt::format("{}/{}", kStaging, name));
    return root.remove_empty_dir(kStaging);
}

// The staging directory, freshly made (0700 root), open.
sys::UniqueFd make_staging(const sys::RootFs& root) {
    if (root.ensure_dir(kStaging, {0700, {}}) != Change::changed)
        throw Error(fmt::format("create {}: it appeared while being made", kStaging));
    return root.open_directory(kStaging);
}

// A host path naming exactly the directory `dir` holds, for a child process.
std::string proc_path(const sys::UniqueFd& dir) {
    std::string p = fmt::format("/proc/{}/fd/{}", ::getpid(), dir.get());
    struct ::stat by_path {}, by_fd {};
    if (::stat(p.c_str(), &by_path) < 0 || ::fstat(dir.get(), &by_fd) < 0 ||
        by_path.st_dev != by_fd.st_dev || by_path.st_ino != by_fd.st_ino)
        throw Error(fmt::format("generate SSH host keys: {} does not show the staging directory "
                                "(is /proc this process's own?)",
                                p));
    return p;
}

bool is_regular(const sys::RootFs& root, const std::string& path) {
    auto st = root.symlink_status(path);
    return st && S_ISREG(st->st_mode);
}

// The key aplspawn recorded for this container, if it is still in place.
std::optional<std::string> kept_key(Step& s, const std::string& type) {
    const std::string priv = key_path(type), pub = priv + ".pub";
    if (!is_regular(s.root, priv) || !is_regular(s.root, pub)) return std::nullopt;
    auto id = text::public_key_id(s.root.read_file(pub).value_or(""));
    if (!id) return std::nullopt;
    const auto& ours = s.previous.host_keys;
    if (std::find(ours.begin(), ours.end(), *id) == ours.end()) {
        s.result.notes.push_back(fmt::format(
            "replaced the image's SSH host key {} (not one aplspawn made for {})", pub,
            s.spec.hostname));
        return std::nullopt;
    }
    return id;
}

// ssh-keygen for each type at once (RSA takes most of the time), into dir (a host path).
void generate(const std::vector<std::string>& types, const std::string& dir,
              const std::string& hostname) {
    std::vector<std::future<sys::RunResult>> runs;
    for (const auto& type : types) {
        std::vector<std::string> argv{"ssh-keygen", "-q", "-t", type, "-N", "", "-C",
                                      "root@" + hostname, "-f",
                                      fmt::format("{}/ssh_host_{}_key", dir, type)};
        runs.push_back(std::async(std::launch::async, [argv] {
            sys::RunOptions o;
            o.timeout = std::chrono::seconds(60);
            return sys::run(argv, o);
        }));
    }
    std::optional<Error> failed;
    for (size_t i = 0; i < runs.size(); ++i) {
        try {
            auto r = runs[i].get();
            if (!r.ok() && !failed)
                failed = Error(fmt::format("ssh-keygen -t {} failed ({}): {}", types[i],
                                           r.describe(), r.err));
        } catch (Error& e) {
            if (!failed) failed = std::move(e);
        }
    }
    if (failed) throw std::move(*failed);
}

}  // namespace

void provision_host_keys(Step& s) {
    const auto& root = s.root;
    const auto& types = s.spec.host_key_types;
    s.note(root.ensure_dir("/etc/ssh"), "created /etc/ssh");

    std::vector<std::string> ids(types.size());
    std::vector<std::string> missing;
    for (size_t i = 0; i < types.size(); ++i) {
        const auto& type = types[i];
        if (auto id = kept_key(s, type)) {
            ids[i] = *id;
            s.note(root.set_attrs(key_path(type), {0600, {}}), "set mode of " + key_path(type));
            s.note(root.set_attrs(key_path(type) + ".pub", {0644, {}}),
                   "set mode of " + key_path(type) + ".pub");
        } else {
            missing.push_back(type);
        }
    }

    // Left by an interrupted run (its keys were never recorded): gone.
    s.note(remove_staging(root), fmt::format("removed {} (left by an interrupted run)", kStaging));
    if (!missing.empty()) {
        sys::UniqueFd staging = make_staging(root);
        try {
            generate(missing, proc_path(staging), s.spec.hostname);
            for (const auto& type : missing) {
                const std::string name = fmt::format("{}/ssh_host_{}_key", kStaging, type);
                const std::string priv = root.read_file(name).value_or("");
                const std::string pub = root.read_file(name + ".pub").value_or("");
                auto id = text::public_key_id(pub);
                if (!id) throw Error(fmt::format("ssh-keygen -t {}: no public key in {}.pub", type, name));
                root.write_file(key_path(type), priv, {0600, {}});
                root.write_file(key_path(type) + ".pub", pub, {0644, {}});
                s.note(Change::changed, "generated " + key_path(type));
                auto pos = std::find(types.begin(), types.end(), type);
                ids[static_cast<size_t>(pos - types.begin())] = *id;
            }
        } catch (...) {
            try {
                remove_staging(root);
            } catch (const Error&) {  // the first error is the one to report
            }
            throw;
        }
        remove_staging(root);
    }

    // Host keys of other types come from the image (shared by the fleet) or are of a type
    // cntCommon.hostKeyTypes no longer names: gone, so that sshd offers only recorded keys.
    for (const auto& name : root.list_dir("/etc/ssh")) {
        if (!name.starts_with("ssh_host_")) continue;
        std::string stem = name.ends_with(".pub") ? name.substr(0, name.size() - 4) : name;
        if (!stem.ends_with("_key")) continue;
        std::string type = stem.substr(9, stem.size() - 9 - 4);
        if (std::find(types.begin(), types.end(), type) != types.end()) continue;
        s.note(root.remove("/etc/ssh/" + name),
               fmt::format("removed /etc/ssh/{} (not a type of cntCommon.hostKeyTypes)", name));
    }

    s.result.host_public_keys = ids;
    s.record.host_keys = ids;
}

}  // namespace detail
}  // namespace aplspawn::fleet
