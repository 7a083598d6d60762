#include "aplspawn/net/nat.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <set>

namespace aplspawn::net {
namespace {

using json = nlohmann::json;

// Names go into nft's language inside double quotes (interfaces) or bare (the table): refuse
// anything that could end the quote or the word.
void check_name(std::string_view what, std::string_view name) {
    for (char c : name) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-' || c == '.';
        if (!plain)
            throw Error(fmt::format("{} \"{}\": only letters, digits, '_', '-' and '.' can be used in "
                                    "nftables rules",
                                    what, name));
    }
    if (name.empty()) throw Error(fmt::format("{}: empty name", what));
}

bool table_missing(const Nftables::Result& r) {
    return r.error.find("No such file or directory") != std::string::npos;
}

}  // namespace

std::string render_table(const NatSpec& spec) {
    check_name("nftables table", spec.table);
    std::string forward, postrouting;
    for (const auto& b : spec.bridges) {
        check_name("bridge", b.bridge);
        if (!b.nat)
            forward += fmt::format("\t\tiifname \"{0}\" oifname != \"{0}\" drop\n"
                                   "\t\toifname \"{0}\" iifname != \"{0}\" drop\n",
                                   b.bridge);
    }
    for (const auto& b : spec.bridges) {
        if (!b.nat) continue;
        forward += fmt::format("\t\tiifname \"{0}\" accept\n"
                               "\t\toifname \"{0}\" ct state established,related accept\n",
                               b.bridge);
        postrouting += fmt::format("\t\tip saddr {} oifname != \"{}\" masquerade\n", b.subnet.str(), b.bridge);
    }
    return fmt::format(
        "table ip {0} {{\n"
        "\tchain {1} {{\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        "{2}"
        "\t}}\n"
        "\n"
        "\tchain {3} {{\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        "{4}"
        "\t}}\n"
        "}}\n",
        spec.table, kForwardChain, forward, kPostroutingChain, postrouting);
}

namespace {

json meta_match(const char* op, const char* key, const std::string& value) {
    return {{"match", {{"op", op}, {"left", {{"meta", {{"key", key}}}}}, {"right", value}}}};
}

json rule(const NatSpec& spec, std::string_view chain, json expr) {
    return {{"rule", {{"family", "ip"}, {"table", spec.table}, {"chain", chain}, {"expr", std::move(expr)}}}};
}

// An object of the listing without its handle (which the kernel assigns).
json without_handle(json object) {
    for (auto& [kind, body] : object.items())
        if (body.is_object()) body.erase("handle");
    return object;
}

}  // namespace

json wanted_objects(const NatSpec& spec) {
    check_name("nftables table", spec.table);
    auto chain = [&](std::string_view name, const char* type, const char* hook, int prio) {
        return json{{"chain", {{"family", "ip"}, {"table", spec.table}, {"name", name}, {"type", type},
                               {"hook", hook}, {"prio", prio}, {"policy", "accept"}}}};
    };
    json objects = json::array({
        {{"table", {{"family", "ip"}, {"name", spec.table}}}},
        chain(kForwardChain, "filter", "forward", 0),         // priority filter
        chain(kPostroutingChain, "nat", "postrouting", 100),  // priority srcnat
    });
    const json accept = {{"accept", nullptr}};
    const json drop = {{"drop", nullptr}};
    // In render_table's order: the isolated bridges' drops, then the NATed bridges' accepts;
    // then the masquerade rules.
    for (const auto& b : spec.bridges) {
        check_name("bridge", b.bridge);
        if (b.nat) continue;
        objects.push_back(rule(spec, kForwardChain,
                               json::array({meta_match("==", "iifname", b.bridge),
                                            meta_match("!=", "oifname", b.bridge), drop})));
        objects.push_back(rule(spec, kForwardChain,
                               json::array({meta_match("==", "oifname", b.bridge),
                                            meta_match("!=", "iifname", b.bridge), drop})));
    }
    for (const auto& b : spec.bridges) {
        if (!b.nat) continue;
        objects.push_back(rule(spec, kForwardChain, json::array({meta_match("==", "iifname", b.bridge), accept})));
        objects.push_back(rule(spec, kForwardChain,
                               json::array({meta_match("==", "oifname", b.bridge),
                                            {{"match", {{"op", "in"}, {"left", {{"ct", {{"key", "state"}}}}},
                                                        {"right", json::array({"established", "related"})}}}},
                                            accept})));
    }
    for (const auto& b : spec.bridges) {
        if (!b.nat) continue;
        const std::string network = b.subnet.network.str();
        json saddr = b.subnet.prefix == 32 ? json(network)
                                           : json{{"prefix", {{"addr", network}, {"len", b.subnet.prefix}}}};
        objects.push_back(rule(spec, kPostroutingChain,
                               json::array({{{"match", {{"op", "=="},
                                                        {"left", {{"payload", {{"protocol", "ip"}, {"field", "saddr"}}}}},
                                                        {"right", saddr}}}},
                                            meta_match("!=", "oifname", b.bridge),
                                            {{"masquerade", nullptr}}})));
    }
    return objects;
}

std::string NatState::problem(const NatSpec& spec) const {
    if (!table_exists) return fmt::format("table ip {} is missing", spec.table);
    std::vector<std::string> wrong;
    if (!forward_ok) wrong.push_back(fmt::format("chain {} is missing or differs", kForwardChain));
    if (!postrouting_ok) wrong.push_back(fmt::format("chain {} is missing or differs", kPostroutingChain));
    if (extra) wrong.push_back("it holds other chains or objects");
    if (wrong.empty()) return "";
    return fmt::format("table ip {}: {}", spec.table, fmt::join(wrong, "; "));
}

NatState compare_listing(const NatSpec& spec, std::optional<std::string_view> json_listing) {
    NatState st;
    if (!json_listing) return st;
    json doc = json::parse(*json_listing, nullptr, false);
    if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array())
        throw Error(fmt::format("nftables table ip {}: the listing is not nft's JSON", spec.table));
    st.table_exists = true;
    // The listing's objects by what they belong to: the table, a chain (its own object), or a
    // chain's rules in order; anything else (sets, maps, other chains) is extra.
    json have_chain = json::object(), have_rules = json::object();
    for (const json& item : doc["nftables"]) {
        if (item.contains("metainfo") || item.contains("table")) continue;
        json o = without_handle(item);
        if (o.contains("chain")) {
            std::string name = o["chain"].value("name", "");
            if (name == kForwardChain || name == kPostroutingChain) have_chain[name] = o;
            else st.extra = true;
        } else if (o.contains("rule")) {
            std::string chain = o["rule"].value("chain", "");
            if (chain == kForwardChain || chain == kPostroutingChain) have_rules[chain].push_back(o);
        } else {
            st.extra = true;
        }
    }
    json want_chain = json::object(), want_rules = json::object();
    for (const json& o : wanted_objects(spec)) {
        if (o.contains("chain")) want_chain[o["chain"]["name"].get<std::string>()] = o;
        else if (o.contains("rule")) want_rules[o["rule"]["chain"].get<std::string>()].push_back(o);
    }
    auto same = [&](std::string_view chain) {
        std::string c(chain);
        return have_chain.contains(c) && have_chain[c] == want_chain[c] &&
               have_rules.value(c, json::array()) == want_rules[c];
    };
    st.forward_ok = same(kForwardChain);
    st.postrouting_ok = same(kPostroutingChain);
    return st;
}

std::optional<std::string> list_table(Nftables& nft, std::string_view table) {
    check_name("nftables table", table);
    auto r = nft.run_json(fmt::format("list table ip {}", table));
    if (r.ok()) return r.out;
    if (table_missing(r)) return std::nullopt;
    throw Error(fmt::format("list nftables table ip {}: {}", table, r.first_error_line()));
}

NatState inspect_nat(Nftables& nft, const NatSpec& spec) {
    auto listing = list_table(nft, spec.table);
    if (!listing) return compare_listing(spec, std::nullopt);
    return compare_listing(spec, std::string_view(*listing));
}

void apply_nat(Nftables& nft, const NatSpec& spec) {
    // "add" makes the "delete" valid when the table does not exist yet; nft runs the whole
    // buffer as one transaction.
    std::string batch = fmt::format("add table ip {0}\ndelete table ip {0}\n{1}", spec.table, render_table(spec));
    nft.run_checked(batch, fmt::format("write nftables table ip {}", spec.table));
}

Change remove_nat(Nftables& nft, std::string_view table) {
    if (!list_table(nft, table)) return Change::unchanged;
    auto r = nft.run(fmt::format("delete table ip {}", table));
    if (r.ok()) return Change::changed;
    if (table_missing(r)) return Change::unchanged;
    throw Error(fmt::format("delete nftables table ip {}: {}", table, r.first_error_line()));
}

std::vector<ForwardDrop> find_forward_drops(std::string_view ruleset_json, std::string_view own_table,
                                            std::string_view bridge) {
    json doc = json::parse(ruleset_json, nullptr, false);
    std::vector<ForwardDrop> drops;
    if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array()) return drops;
    using Key = std::pair<std::string, std::string>;  // family, table
    std::set<Key> names_bridge, has_docker_user;
    const std::string quoted = json(std::string(bridge)).dump();  // "\"nspawnd0\""
    for (const json& item : doc["nftables"]) {
        if (item.contains("rule")) {
            const json& r = item["rule"];
            if (r.contains("expr") && r["expr"].dump().find(quoted) != std::string::npos)
                names_bridge.insert({r.value("family", ""), r.value("table", "")});
        } else if (item.contains("chain")) {
            const json& c = item["chain"];
            if (c.value("name", "") == "DOCKER-USER")
                has_docker_user.insert({c.value("family", ""), c.value("table", "")});
        }
    }
    for (const json& item : doc["nftables"]) {
        if (!item.contains("chain")) continue;
        const json& c = item["chain"];
        ForwardDrop d{c.value("family", ""), c.value("table", ""), c.value("name", ""), false, false};
        if (c.value("hook", "") != "forward" || c.value("policy", "") != "drop") continue;
        if (d.family != "ip" && d.family != "inet") continue;
        if (d.family == "ip" && d.table == own_table) continue;
        if (names_bridge.contains({d.family, d.table})) continue;
        d.iptables = d.family == "ip" && d.table == "filter" && d.chain == "FORWARD";
        d.docker_user = has_docker_user.contains({d.family, d.table});
        drops.push_back(std::move(d));
    }
    return drops;
}

std::string forward_drop_note(const ForwardDrop& d, std::string_view bridge) {
    std::string how;
    if (d.iptables) {
        std::string chain = d.docker_user ? "DOCKER-USER" : "FORWARD";
        how = fmt::format("iptables -I {0} -i {1} -j ACCEPT && iptables -I {0} -o {1} -m conntrack "
                          "--ctstate RELATED,ESTABLISHED -j ACCEPT",
                          chain, bridge);
    } else {
        how = fmt::format("nft insert rule {0} {1} {2} iifname \"{3}\" accept && nft insert rule {0} {1} {2} "
                          "oifname \"{3}\" ct state established,related accept",
                          d.family, d.table, d.chain, bridge);
    }
    return fmt::format("The host's firewall drops forwarded traffic ({} table {} {}, chain {}, policy drop{}): "
                       "aplspawn's accept cannot override a drop in another chain, so the containers on {} "
                       "cannot reach beyond this host until you allow the bridge there: {}",
                       d.iptables ? "iptables-nft" : "nftables", d.family, d.table, d.chain,
                       d.docker_user ? ", as Docker installs" : "", bridge, how);
}

std::optional<std::string> forward_drop_note(Nftables& nft, std::string_view own_table, std::string_view bridge) {
    auto r = nft.run_json("list ruleset");
    if (!r.ok()) throw Error(fmt::format("list nftables ruleset: {}", r.first_error_line()));
    auto drops = find_forward_drops(r.out, own_table, bridge);
    if (drops.empty()) return std::nullopt;
    return forward_drop_note(drops.front(), bridge);
}

}  // namespace aplspawn::net
