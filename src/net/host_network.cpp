#include "aplspawn/net/host_network.hpp"

#include "aplspawn/net/forwarding.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <charconv>

namespace aplspawn::net {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kNeedsRoot = "reading nftables needs root";

bool carries(Netlink& nl, const Link& link, const Address& address) {
    for (const Address& a : ipv4_addresses(nl, link.index))
        if (a == address) return true;
    return false;
}

}  // namespace

std::optional<Address> parse_address(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto ip = Ipv4::parse(text.substr(0, slash));
    std::string_view p = text.substr(slash + 1);
    int prefix = -1;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (!ip || ec != std::errc() || end != p.data() + p.size() || prefix < 0 || prefix > 32) return std::nullopt;
    return Address{*ip, prefix};
}

std::string NetRecord::to_json() const {
    json j = {{"bridge", bridge},
              {"bridge_created", bridge_created},
              {"bridge_index", bridge_index},
              {"address", address},
              {"address_added", address_added},
              {"link_set_up", link_set_up},
              {"table", table},
              {"ip_forward_before", ip_forward_before ? json(*ip_forward_before) : json(nullptr)}};
    return j.dump(2) + "\n";
}

NetRecord NetRecord::from_json(std::string_view text, const std::filesystem::path& file) {
    try {
        json j = json::parse(text);
        NetRecord r;
        r.bridge = j.at("bridge").get<std::string>();
        r.bridge_created = j.value("bridge_created", false);
        r.bridge_index = j.value("bridge_index", 0);
        r.address = j.at("address").get<std::string>();
        r.address_added = j.value("address_added", false);
        r.link_set_up = j.value("link_set_up", false);
        r.table = j.at("table").get<std::string>();
        if (j.contains("ip_forward_before") && !j["ip_forward_before"].is_null())
            r.ip_forward_before = j["ip_forward_before"].get<int>();
        if (!parse_address(r.address)) throw Error(fmt::format("bad address \"{}\"", r.address));
        return r;
    } catch (const json::exception& e) {
        throw Error(fmt::format("net state {}: unreadable: {}", file.string(), e.what()));
    } catch (Error& e) {
        throw std::move(e).wrap(fmt::format("net state {}", file.string()));
    }
}

std::optional<NetRecord> load_record(const std::filesystem::path& file) {
    auto text = sys::read_file_if_exists(file);
    if (!text) return std::nullopt;
    return NetRecord::from_json(*text, file);
}

void save_record(const std::filesystem::path& file, const NetRecord& record) {
    sys::ensure_dir(file.parent_path(), 0700);  // the state directory: private
    sys::write_file_atomic(file, record.to_json(), 0644);
}

Change remove_record(const std::filesystem::path& file) {
    if (::unlink(file.c_str()) == 0) {
        sys::sync_dir(file.parent_path());
        return Change::changed;
    }
    if (errno == ENOENT) return Change::unchanged;
    throw_errno(fmt::format("remove {}", file.string()));
}

void check_record_matches(const NetRecord& r, const NetSpec& spec, const std::filesystem::path& file) {
    std::vector<std::string> diff;
    if (r.bridge != spec.bridge) diff.push_back(fmt::format("bridge {} (config: {})", r.bridge, spec.bridge));
    if (r.address != spec.address.str())
        diff.push_back(fmt::format("address {} (config: {})", r.address, spec.address.str()));
    if (r.table != spec.table) diff.push_back(fmt::format("table {} (config: {})", r.table, spec.table));
    if (diff.empty()) return;
    throw Error(fmt::format("{} records an earlier netup with {}: run netdown with that configuration first",
                            file.string(), fmt::join(diff, ", ")));
}

Observed observe(Netlink& nl, Nftables& nft, const NetSpec& spec) {
    Observed o;
    o.link = find_link(nl, spec.bridge);
    o.has_address = o.link && carries(nl, *o.link, spec.address);
    o.ip_forward = ip_forward();
    // Reading nftables needs CAP_NET_ADMIN; without root only a --dry-run gets here.
    if (::geteuid() == 0)
        o.nat = inspect_nat(nft, spec.nat());
    else
        o.nat_unreadable = kNeedsRoot;
    return o;
}

UpPlan plan_up(const NetSpec& spec, const Observed& now) {
    if (now.link && !now.link->is_bridge())
        throw Error(fmt::format("bridge {}: a link of that name exists and is not a bridge (it is {}); "
                                "remove it or choose another bridge.name",
                                spec.bridge, now.link->kind.empty() ? "a device without a link kind"
                                                                    : "of kind " + now.link->kind));
    UpPlan p;
    p.create_bridge = !now.link;
    p.add_address = !now.has_address;
    p.set_up = !now.link || !now.link->up();
    p.enable_forwarding = now.ip_forward != 1;
    // Anything else in aplspawn's table is not wanted either: rewriting the table removes it.
    p.write_forward_rules = !now.nat.forward_ok || now.nat.extra;
    p.write_nat_rules = !now.nat.postrouting_ok || now.nat.extra;
    return p;
}

void reconcile_record(NetRecord& record, const Observed& now) {
    if (record.bridge_created && (!now.link || now.link->index != record.bridge_index)) {
        record.bridge_created = false;
        record.bridge_index = 0;
    }
    if (!now.link) {
        record.address_added = false;
        record.link_set_up = false;
    }
}

DownTarget down_target(const std::optional<NetRecord>& record, const NetSpec& spec) {
    if (!record) return DownTarget{spec.bridge, spec.address, spec.table};
    // from_json() has checked the address.
    return DownTarget{record->bridge, *parse_address(record->address), record->table};
}

DownObserved observe_down(Netlink& nl, Nftables& nft, const DownTarget& target) {
    DownObserved o;
    o.link = find_link(nl, target.bridge);
    o.has_address = o.link && carries(nl, *o.link, target.address);
    o.ip_forward = ip_forward();
    if (::geteuid() == 0)
        o.table_exists = list_table(nft, target.table).has_value();
    else
        o.table_unreadable = kNeedsRoot;
    return o;
}

DownPlan plan_down(const std::optional<NetRecord>& record, const DownTarget& target, const DownObserved& now) {
    DownPlan p;
    p.target = target;
    // The table is aplspawn's own by its name: it goes whoever made it.
    p.remove_table = now.table_exists || !now.table_unreadable.empty();
    if (!record) {
        if (now.link)
            p.notes.push_back(fmt::format("bridge {}: no record of netup creating or changing it, left as it is",
                                          target.bridge));
        return p;
    }
    if (record->bridge_created) {
        if (now.link && now.link->index == record->bridge_index && now.link->is_bridge())
            p.delete_bridge = true;
        else if (now.link)
            p.notes.push_back(fmt::format("bridge {}: not the bridge netup created (that one is gone), "
                                          "left as it is",
                                          target.bridge));
    } else if (now.link) {
        p.remove_address = record->address_added && now.has_address;
        p.set_down = record->link_set_up && now.link->up();
    }
    if (record->ip_forward_before && now.ip_forward != *record->ip_forward_before)
        p.restore_forwarding = *record->ip_forward_before;
    return p;
}

}  // namespace aplspawn::net
