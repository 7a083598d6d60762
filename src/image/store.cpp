#include "aplspawn/image/store.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/loop.hpp"
#include "aplspawn/sys/stream_file.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>

namespace aplspawn::image {
namespace {

using json = nlohmann::ordered_json;

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// std::filesystem calls, with failures as aplspawn::Error naming the operation.
void check(const std::error_code& ec, std::string_view what) {
    if (ec) throw Error::from_errno(what, ec.value());
}

json validators_json(const Validators& v) {
    json j = json::object();
    if (!v.etag.empty()) j["etag"] = v.etag;
    if (!v.last_modified.empty()) j["last_modified"] = v.last_modified;
    return j;
}

Validators validators_from(const json& j) {
    Validators v;
    if (j.is_object()) {
        v.etag = j.value("etag", "");
        v.last_modified = j.value("last_modified", "");
    }
    return v;
}

std::optional<json> read_json(const fs::path& path) {
    auto text = sys::read_file_if_exists(path);
    if (!text) return std::nullopt;
    json j = json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
}

std::string random_suffix() {
    std::random_device rd;
    return fmt::format("{:08x}", rd());
}

// The SHA-256 of a whole file, read once.
std::string hash_file(const fs::path& path, std::uint64_t size) {
    Sha256 h;
    sys::read_blocks(path, size, 4u << 20, [&](std::span<const unsigned char> b) { h.update(b); });
    return h.hex();
}

}  // namespace

std::string to_json(const VersionInfo& i) {
    json j;
    j["name"] = i.name;
    j["sha256"] = i.sha256;
    j["published_sha256"] = i.published_sha256;
    j["checksum_source"] = i.checksum_source;
    j["url"] = i.url;
    j["compression"] = i.compression;
    j["size"] = i.size;
    j["validators"] = validators_json(i.validators);
    j["stored_at"] = i.stored_at;
    if (i.snapshot)
        j["snapshot"] = {{"container", i.snapshot->container},
                         {"group", i.snapshot->group},
                         {"base_image", i.snapshot->base_image}};
    return j.dump(2) + "\n";
}

std::optional<VersionInfo> version_info_from_json(std::string_view text) {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    try {
        VersionInfo i;
        i.name = j.at("name").get<std::string>();
        i.sha256 = j.at("sha256").get<std::string>();
        i.published_sha256 = j.value("published_sha256", "");
        i.checksum_source = j.value("checksum_source", "");
        i.url = j.value("url", "");
        i.compression = j.value("compression", "none");
        i.size = j.at("size").get<std::uint64_t>();
        i.validators = validators_from(j.value("validators", json::object()));
        i.stored_at = j.value("stored_at", std::int64_t{0});
        if (auto sn = j.find("snapshot"); sn != j.end() && sn->is_object())
            i.snapshot = VersionInfo::Snapshot{sn->value("container", ""), sn->value("group", ""),
                                               sn->value("base_image", "")};
        if (!is_sha256_hex(i.sha256) || i.name.empty()) return std::nullopt;
        return i;
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

std::vector<std::string> store_names(const fs::path& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        std::string n = e.path().filename().string();
        if (n.starts_with(".") || n == "by-sha256" || n == "SHA256SUMS") continue;
        if (e.is_directory(ec) && !e.is_symlink(ec)) continue;
        out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
}

void set_sums_line(const fs::path& dir, const std::string& name, const std::string& sha256) {
    const fs::path file = dir / "SHA256SUMS";
    std::string old = sys::read_file_if_exists(file).value_or("");
    std::string out;
    std::string_view rest(old);
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        // "HEX  NAME" or "HEX *NAME" (binary mode), as sha256sum writes them
        auto sp = line.find(' ');
        std::string_view listed = sp == std::string_view::npos ? "" : line.substr(sp + 1);
        while (!listed.empty() && (listed.front() == ' ' || listed.front() == '*')) listed.remove_prefix(1);
        if (listed == name || line.empty()) continue;
        out += std::string(line) + "\n";
    }
    if (!sha256.empty()) out += fmt::format("{}  {}\n", sha256, name);
    if (out == old) return;
    if (out.empty()) {
        std::error_code ec;
        fs::remove(file, ec);
        check(ec, fmt::format("remove {}", file.string()));
        return;
    }
    sys::write_file_atomic(file, out, 0644);
}

Store::Store(fs::path dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {}

fs::path Store::version_path(std::string_view sha256) const {
    std::string file(sha256);
    for (std::string_view ext : {".img", ".raw"})
        if (name_.ends_with(ext)) file += ext;
    return versions_dir() / file;
}

std::optional<Version> Store::current() const {
    fs::path link = current_path();
    struct stat st;
    if (::lstat(link.c_str(), &st) < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno(fmt::format("stat {}", link.string()));
    }
    if (S_ISREG(st.st_mode)) return Version{link, std::nullopt};
    if (!S_ISLNK(st.st_mode))
        throw Error(fmt::format("image store: {} is neither a file nor a symlink", link.string()));
    std::error_code ec;
    fs::path target = fs::read_symlink(link, ec);
    check(ec, fmt::format("read symlink {}", link.string()));
    fs::path resolved = (target.is_absolute() ? target : dir_ / target).lexically_normal();
    if (::stat(resolved.c_str(), &st) < 0) {
        if (errno == ENOENT) return std::nullopt;  // dangling: no current version
        throw_errno(fmt::format("stat {}", resolved.string()));
    }
    if (!S_ISREG(st.st_mode))
        throw Error(fmt::format("image store: {} points at {}, not a file", link.string(),
                                resolved.string()));
    Version v{resolved, std::nullopt};
    if (resolved.parent_path() == versions_dir().lexically_normal()) {
        fs::path info_path = versions_dir() / (resolved.stem().string() + ".json");
        if (auto text = sys::read_file_if_exists(info_path)) {
            auto info = version_info_from_json(*text);
            // A record counts only while the file still is what it describes.
            if (info && info->size == static_cast<std::uint64_t>(st.st_size) &&
                version_path(info->sha256) == resolved)
                v.info = std::move(info);
        }
    }
    return v;
}

std::optional<Store::Partial> Store::partial() const {
    auto j = read_json(partial_info_path());
    if (!j) return std::nullopt;
    struct stat st;
    if (::stat(partial_path().c_str(), &st) < 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    Partial p;
    p.info.url = j->value("url", "");
    p.info.validators = validators_from(j->value("validators", json::object()));
    if (j->contains("size") && (*j)["size"].is_number_unsigned())
        p.info.size = (*j)["size"].get<std::uint64_t>();
    p.info.compression = j->value("compression", "none");
    p.size = static_cast<std::uint64_t>(st.st_size);
    return p;
}

void Store::write_partial_info(const PartialInfo& info) const {
    json j;
    j["url"] = info.url;
    j["validators"] = validators_json(info.validators);
    if (info.size) j["size"] = *info.size;
    j["compression"] = info.compression;
    sys::write_file_atomic(partial_info_path(), j.dump(2) + "\n", 0644);
}

bool Store::remove_partial() const {
    bool any = false;
    for (const fs::path& p : {partial_path(), partial_info_path(), unpack_path()}) {
        std::error_code ec;
        any |= fs::remove(p, ec);
        check(ec, fmt::format("remove {}", p.string()));
    }
    if (fs::exists(partial_dir())) sys::sync_dir(partial_dir());
    return any;
}

void Store::remove_unpack() const {
    std::error_code ec;
    fs::remove(unpack_path(), ec);
    check(ec, fmt::format("remove {}", unpack_path().string()));
}

Version Store::install(const fs::path& file, VersionInfo info) const {
    if (!is_sha256_hex(info.sha256)) throw Error("image store: install without a checksum");
    sys::ensure_dir(versions_dir());
    info.name = name_;
    if (info.stored_at == 0) info.stored_at = now_seconds();
    const fs::path dest = version_path(info.sha256);
    // Recording the file found at NAME itself: link it (NAME stays in place until the symlink
    // replaces it, so the current version is reachable at every moment).
    const bool adopting = file.lexically_normal() == current_path().lexically_normal();
    std::error_code ec;
    struct stat st;
    if (::stat(dest.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        static_cast<std::uint64_t>(st.st_size) == info.size) {
        // This version is stored already (same bytes): keep the one that is there.
        if (!adopting) fs::remove(file, ec);
        check(ec, fmt::format("remove {}", file.string()));
    } else if (adopting) {
        fs::create_hard_link(file, dest, ec);
        check(ec, fmt::format("link {} to {}", file.string(), dest.string()));
    } else {
        fs::permissions(file, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read,
                        ec);
        check(ec, fmt::format("chmod {}", file.string()));
        fs::rename(file, dest, ec);
        check(ec, fmt::format("rename {} to {}", file.string(), dest.string()));
    }
    sys::write_file_atomic(versions_dir() / (info.sha256 + ".json"), to_json(info), 0644);

    // A file at NAME that aplspawn did not record and a loop device uses: keep it as a version
    // (a hard link, same inode) so that pruning and status can still see it.
    if (!adopting && ::lstat(current_path().c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        !loop_devices_using(current_path()).empty()) {
        std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
        std::string hex = hash_file(current_path(), size);
        fs::path kept = version_path(hex);
        if (!fs::exists(kept)) {
            fs::create_hard_link(current_path(), kept, ec);
            check(ec, fmt::format("link {} to {}", current_path().string(), kept.string()));
            VersionInfo old;
            old.name = name_;
            old.sha256 = hex;
            old.checksum_source = "none (found in the store)";
            old.compression = "none";
            old.size = size;
            old.stored_at = now_seconds();
            sys::write_file_atomic(versions_dir() / (hex + ".json"), to_json(old), 0644);
        }
    }
    sys::sync_dir(versions_dir());

    // Point NAME at the new version: a new symlink renamed over the old name.
    fs::path tmp = dir_ / fmt::format(".{}.link-{}", name_, random_suffix());
    fs::create_symlink(dest.lexically_relative(dir_), tmp, ec);
    check(ec, fmt::format("create symlink {}", tmp.string()));
    fs::rename(tmp, current_path(), ec);
    if (ec) {
        std::error_code ignored;
        fs::remove(tmp, ignored);
        check(ec, fmt::format("rename {} to {}", tmp.string(), current_path().string()));
    }
    sys::sync_dir(dir_);
    return Version{dest, std::move(info)};
}

Store::Pruned Store::prune() const {
    Pruned out;
    if (!fs::is_directory(versions_dir())) return out;
    // Every version some name in the store points at stays.
    std::set<fs::path> pointed;
    for (const auto& e : fs::directory_iterator(dir_)) {
        if (!e.is_symlink()) continue;
        std::error_code ec;
        fs::path t = fs::read_symlink(e.path(), ec);
        if (!ec) pointed.insert((t.is_absolute() ? t : dir_ / t).lexically_normal());
    }
    std::vector<fs::path> records;
    for (const auto& e : fs::directory_iterator(versions_dir()))
        if (e.path().extension() == ".json") records.push_back(e.path());
    bool changed = false;
    for (const fs::path& record : records) {
        auto text = sys::read_file_if_exists(record);
        auto info = text ? version_info_from_json(*text) : std::nullopt;
        if (!info || info->name != name_) continue;
        fs::path file = version_path(info->sha256).lexically_normal();
        if (pointed.count(file)) continue;
        std::error_code ec;
        if (fs::exists(file)) {
            auto devices = loop_devices_using(file);
            if (!devices.empty()) {
                out.in_use.emplace_back(file, std::move(devices));
                continue;
            }
            fs::remove(file, ec);
            check(ec, fmt::format("remove {}", file.string()));
            out.removed.push_back(file);
        }
        fs::remove(record, ec);
        check(ec, fmt::format("remove {}", record.string()));
        changed = true;
    }
    if (changed) sys::sync_dir(versions_dir());
    return out;
}

std::vector<std::string> loop_devices_using(const fs::path& file) {
    std::vector<std::string> out;
    struct stat st;
    if (::stat(file.c_str(), &st) < 0) return out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
        std::string name = e.path().filename().string();
        if (!name.starts_with("loop")) continue;
        if (!fs::exists(e.path() / "loop")) continue;  // not bound to a file
        std::optional<sys::LoopStatus> s;
        try {
            s = sys::loop_status("/dev/" + name);
        } catch (const Error&) {
            continue;  // gone meanwhile, or no device node here
        }
        if (s && s->backing_device == st.st_dev && s->backing_inode == st.st_ino)
            out.push_back(s->device);
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace aplspawn::image
