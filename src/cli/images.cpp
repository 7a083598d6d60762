// images: the local store's images, one line each on stdout: name, size, SHA-256, where it came
// from (a URL, or a snapshot of which container and when), and who uses it (groups of the config,
// running containers); --json too. --remove NAME takes an image out of the store (refused while a
// group of the config or a running container uses it, unless --force). docs/snapshots.md.
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/snapshot.hpp"
#include "aplspawn/image/pull.hpp"
#include "aplspawn/image/store.hpp"
#include "aplspawn/output.hpp"
#include "aplspawn/sys/lock.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <array>
#include <ctime>
#include <iostream>

namespace aplspawn::cli {
namespace {

struct Row {
    std::string name, size, sha256, source, created;
    std::vector<std::string> used_by;
    nlohmann::ordered_json json;
};

std::string date(std::int64_t t) {
    if (t <= 0) return "-";
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
    return buf;
}

// Who uses the image NAME: groups of the config, containers running on it.
std::vector<std::string> users(const config::Config& c, const fleet::FleetView& view,
                               const std::string& file_name) {
    std::vector<std::string> out;
    for (const auto& g : c.groups)
        if (g->image.file_name == file_name) out.push_back("group " + g->name);
    for (const auto& v : view.containers)
        if (v.running && v.record && v.record->image + ".img" == file_name) out.push_back(v.name);
    return out;
}

Row row(const config::Config& c, const fleet::FleetView& view, const std::string& name) {
    Row r;
    r.name = name;
    image::Store store(c.paths.local_store, name);
    auto version = store.current();
    r.used_by = users(c, view, name);
    nlohmann::ordered_json j = {{"name", name}};
    if (!version) {
        r.size = r.sha256 = r.source = r.created = "-";
        j["size"] = nullptr;
    } else {
        std::error_code ec;
        auto bytes = std::filesystem::file_size(version->path, ec);
        r.size = ec ? "-" : image::mebibytes(bytes);
        j["size"] = ec ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(bytes);
        const auto& info = version->info;
        r.sha256 = info ? info->sha256.substr(0, 12) : "-";
        j["sha256"] = info ? nlohmann::ordered_json(info->sha256) : nlohmann::ordered_json(nullptr);
        if (info && info->snapshot) {
            r.source = fmt::format("snapshot of {} ({})", info->snapshot->container,
                                   info->snapshot->base_image);
            j["snapshot"] = {{"container", info->snapshot->container},
                             {"group", info->snapshot->group},
                             {"base_image", info->snapshot->base_image}};
        } else {
            r.source = info && !info->url.empty() ? info->url : "-";
            j["url"] = info ? nlohmann::ordered_json(info->url) : nlohmann::ordered_json(nullptr);
        }
        r.created = date(info ? info->stored_at : 0);
        j["stored_at"] = info ? nlohmann::ordered_json(info->stored_at) : nlohmann::ordered_json(nullptr);
        auto loops = image::loop_devices_using(version->path);
        j["loop_devices"] = loops;
    }
    j["used_by"] = r.used_by;
    r.json = std::move(j);
    return r;
}

Exit remove_image(const config::Config& c, const fleet::FleetView& view, const std::string& name,
                  bool force, bool dry) {
    std::string file = name.ends_with(".img") || name.ends_with(".raw") ? name : name + ".img";
    image::Store store(c.paths.local_store, file);
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(store.current_path(), ec)))
        throw Error(fmt::format("images: the store {} has no image {}", c.paths.local_store.string(), file));
    auto used = users(c, view, file);
    if (!used.empty() && !force)
        throw Error(fmt::format("images: {} is in use ({}): stop them or change the config first, "
                                "or --force",
                                file, fmt::join(used, ", ")));
    if (dry) {
        out::plan(fmt::format("Remove {} from {}", file, c.paths.local_store.string()));
        return Exit::ok;
    }
    fleet::remove_snapshot_leftovers(c.paths.local_store);
    sys::DirLock lock = sys::DirLock::acquire(store.partial_dir(), "images --remove");
    std::filesystem::remove(store.current_path(), ec);
    if (ec) throw Error::from_errno(fmt::format("remove {}", store.current_path().string()), ec.value());
    image::set_sums_line(c.paths.local_store, file, "");
    auto pruned = store.prune();
    out::ok(fmt::format("Removed {} from {}", file, c.paths.local_store.string()));
    for (const auto& [version, devices] : pruned.in_use)
        out::info(fmt::format("{} stays until {} no longer use it", version.string(), fmt::join(devices, ", ")));
    return Exit::ok;
}

}  // namespace

Exit run_images(const Context& ctx) {
    const config::Config& c = ctx.config;
    const Options& o = ctx.options;
    const fleet::FleetView view = fleet::observe(c, fleet::StateDir(c));
    if (!o.remove.empty()) return remove_image(c, view, o.remove, o.force, o.dry_run);
    std::vector<Row> rows;
    for (const auto& n : image::store_names(c.paths.local_store)) rows.push_back(row(c, view, n));
    if (o.json) {
        auto arr = nlohmann::ordered_json::array();
        for (auto& r : rows) arr.push_back(std::move(r.json));
        std::cout << arr.dump(2) << '\n';
    } else {
        std::vector<std::array<std::string, 6>> cells{{"NAME", "SIZE", "SHA256", "CREATED", "USED BY", "SOURCE"}};
        for (const auto& r : rows)
            cells.push_back({r.name, r.size, r.sha256, r.created,
                             r.used_by.empty() ? "-" : fmt::format("{}", fmt::join(r.used_by, ", ")),
                             r.source});
        std::array<std::size_t, 6> width{};
        for (const auto& row : cells)
            for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
        for (const auto& row : cells) {
            std::string line;
            for (std::size_t i = 0; i < row.size(); ++i)
                line += i + 1 < row.size() ? fmt::format("{:<{}} ", row[i], width[i]) : row[i];
            std::cout << line << '\n';
        }
        std::cout << fmt::format("\n{} image{} in {}.\n", rows.size(), rows.size() == 1 ? "" : "s",
                                 c.paths.local_store.string());
    }
    std::cout.flush();
    if (!std::cout) throw Error("images: write to stdout failed");
    return Exit::ok;
}

}  // namespace aplspawn::cli
