#include "aplspawn/fleet/fleet_key.hpp"

#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/process.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

namespace {

bool exists_no_follow(const fs::path& p) {
    std::error_code ec;
    return fs::exists(fs::symlink_status(p, ec));
}

// Throws when exactly one of the two files exists; true when both do.
bool both_exist(const config::Config& c, const KeyPair& k) {
    const fs::path& priv = k.private_key;
    const fs::path& pub = k.public_key;
    bool have_priv = exists_no_follow(priv), have_pub = exists_no_follow(pub);
    if (have_priv && have_pub) return true;
    if (have_priv)
        throw Error(fmt::format("{}: {} does not exist, but the private key {} does: give the "
                                "path of its public key (ssh-keygen -y -f {} > {}), or remove "
                                "both and spawn generates a new pair",
                                c.where(k.group->origin("sshPublicKeyPath")), pub.string(), priv.string(),
                                priv.string(), pub.string()));
    if (have_pub)
        throw Error(fmt::format("{}: {} does not exist, but the public key {} does: give the path "
                                "of its private key, or remove both and spawn generates a new pair",
                                c.where(k.group->origin("sshPrivateKeyPath")), priv.string(), pub.string()));
    return false;
}

}  // namespace

std::vector<KeyPair> key_pairs(const config::Config& c) {
    std::vector<KeyPair> out;
    for (const auto& g : c.groups) {
        KeyPair k{g->common.ssh_private_key, g->vars.ssh_public_key, g.get()};
        bool seen = false;
        for (const auto& o : out) seen = seen || (o.private_key == k.private_key && o.public_key == k.public_key);
        if (!seen) out.push_back(k);
    }
    return out;
}

std::string plan_fleet_key(const config::Config& c, const KeyPair& k) {
    if (both_exist(c, k)) return "";
    return fmt::format("generate the fleet key pair (ed25519) {} and {}", k.private_key.string(),
                       k.public_key.string());
}

Change ensure_fleet_key(const config::Config& c, const KeyPair& k) {
    if (both_exist(c, k)) return Change::unchanged;
    const fs::path priv = k.private_key;
    const fs::path pub = k.public_key;
    return with_context(fmt::format("generate fleet key {}", priv.string()), [&] {
        sys::ensure_dir(priv.parent_path(), 0755);
        sys::ensure_dir(pub.parent_path(), 0755);
        // Generated in a private directory beside the private key, then renamed into place: no
        // half-written key is ever visible under the configured names.
        // What a run killed during ssh-keygen left (under the fleet lock, none is in use).
        std::error_code ignored;
        for (const auto& e : fs::directory_iterator(priv.parent_path(), ignored))
            if (e.path().filename().string().starts_with(".aplspawn-keygen.") &&
                e.is_directory(ignored) && !e.is_symlink(ignored))
                fs::remove_all(e.path(), ignored);
        std::string tmpl = (priv.parent_path() / ".aplspawn-keygen.XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw_errno("create temporary directory");
        fs::path tmp = tmpl;
        struct Cleanup {
            fs::path p;
            ~Cleanup() {
                std::error_code ec;
                fs::remove_all(p, ec);
            }
        } cleanup{tmp};
        try {
            sys::run_checked({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "aplspawn-fleet",
                              "-f", (tmp / "key").string()});
        } catch (const Error& e) {
            // ssh-keygen says "No space left on device" in words, not as an errno.
            if (e.message().find("No space left") != std::string::npos ||
                e.message().find("quota exceeded") != std::string::npos)
                throw sys::no_space_error(e.message(), priv.parent_path());
            throw;
        }
        // The private key first, then the public one; should the second fail (another
        // filesystem, full), the first goes again: never one of the pair without the other.
        std::error_code ec;
        fs::rename(tmp / "key", priv, ec);
        if (ec) sys::write_file_atomic(priv, sys::read_file(tmp / "key"), 0600);
        try {
            fs::rename(tmp / "key.pub", pub, ec);
            if (ec) sys::write_file_atomic(pub, sys::read_file(tmp / "key.pub"), 0644);
        } catch (...) {
            fs::remove(priv, ec);
            throw;
        }
        return Change::changed;
    });
}

std::string read_public_key(const config::Config& c, const config::Group& g) {
    const fs::path& pub = g.vars.ssh_public_key;
    const std::string where = c.where(g.origin("sshPublicKeyPath"));
    std::string text = with_context(fmt::format("read {}", where),
                                    [&] { return sys::read_file(pub); });
    std::string_view line(text);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\n')) line.remove_prefix(1);
    line = line.substr(0, line.find('\n'));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    bool looks_like_key = line.starts_with("ssh-") || line.starts_with("ecdsa-") ||
                          line.starts_with("sk-ssh-") || line.starts_with("sk-ecdsa-");
    if (!looks_like_key || line.find(' ') == std::string_view::npos)
        throw Error(fmt::format("{}: {} is not an SSH public key (expected \"ssh-ed25519 AAAA...\")",
                                where, pub.string()));
    return std::string(line);
}

}  // namespace aplspawn::fleet
