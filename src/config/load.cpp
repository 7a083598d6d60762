// YAML text -> typed Config. Each section is read by one function; every value is checked where it
// is read (type, form), and cross-key rules (range inside the subnet, names unique, groups that
// clash, ...) are checked in validate.cpp once everything is read.
//
// Groups: a group's settings start as the top-level sections' (cntCommon, cntVariables, image)
// and every key the group sets replaces its value; Group::origins remembers where each value is
// written, so a message about it names that line. A file without `groups` is one implicit group.
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/image/url.hpp"
#include "aplspawn/text.hpp"
#include "config/hosts.hpp"
#include "config/resources.hpp"
#include "config/validate.hpp"
#include "config/yaml_json.hpp"
#include "config/yaml_reader.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <sstream>

namespace aplspawn::config {
namespace {

using Keys = std::vector<std::string>;

// Every key aplspawn understands, per section. The original's keys first, then new ones.
const Keys kImageKeys = {"os", "release", "repo", "loopDevice", "url", "sha256", "snapshot"};
const Keys kVarsKeys = {"userName",  "userGroup",  "userPassword",    "rootPassword",
                        "dnsAddress", "netPrefix", "defGateway", "sshPublicKeyPath"};
const Keys kCommonKeys = {"amount",        "sshPrivateKeyPath", "ipRange",      "bindHostResolve",
                          "bindHost",      "variablesFile",     "bindContainer", "startupScript",
                          "nameTmpl",      "homePath",          "inventoryFile", "readyTimeout",
                          "bootProfile",   "hostKeyTypes",      "binds",         "networks",
                          "resources"};
// A group's own keys, besides every cntCommon and cntVariables key.
const Keys kGroupOwnKeys = {"image", "vars"};

Keys concat(std::initializer_list<const Keys*> parts) {
    Keys out;
    for (const Keys* p : parts) out.insert(out.end(), p->begin(), p->end());
    return out;
}

const YamlReader::Schema& schema() {
    static const YamlReader::Schema s = {
        {"", {"bridge", "ipt", "path", "image", "cntVariables", "cntCommon", "groups", "networks", "hosts",
              "fabric"}},
        {"hosts", {"*"}},
        {"hosts.*", {"address", "groups"}},
        {"fabric", {"vxlanId", "port"}},
        {"bridge", {"name", "address", "network", "netPrefix"}},
        {"ipt", {"chainName"}},
        {"path",
         {"workingDirectory", "localStore", "imageLowerLayer", "imageUpperPath", "imageWorkPath",
          "stateDirectory"}},
        {"image", kImageKeys},
        {"cntVariables", kVarsKeys},
        {"cntCommon", kCommonKeys},
        {"groups", {"*"}},
        {"groups.*", concat({&kGroupOwnKeys, &kCommonKeys, &kVarsKeys})},
        {"groups.*.image", {"os", "release", "repo", "url", "sha256", "snapshot"}},
        {"networks", {"*"}},
        {"networks.*", {"bridge", "address", "netPrefix", "nat"}},
        {"cntCommon.networks", {"*"}},
        {"groups.*.networks", {"*"}},
        {"cntCommon.resources", {"memory", "cpus", "tasks"}},
        {"groups.*.resources", {"memory", "cpus", "tasks"}},
    };
    return s;
}

bool contains(const Keys& keys, std::string_view k) {
    return std::find(keys.begin(), keys.end(), k) != keys.end();
}

// A name Ansible accepts as a group name without warnings: [A-Za-z_][A-Za-z0-9_]*.
bool is_valid_ansible_group(std::string_view name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
    return std::all_of(name.begin(), name.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
    });
}

struct Parser {
    YamlReader& r;
    fs::path base;  // directory of the config file: relative paths resolve against it
    std::vector<int> cpus = host_cpus();  // what resources.cpus may name

    Ipv4 ipv4(const std::string& key, const std::string& text) {
        auto ip = Ipv4::parse(text);
        if (!ip) r.fail(key, fmt::format("{} is not an IPv4 address", quote(text)));
        return *ip;
    }

    int int_in(const std::string& key, long long v, long long lo, long long hi) {
        if (v < lo || v > hi) r.fail(key, fmt::format("{} is out of range {}..{}", v, lo, hi));
        return static_cast<int>(v);
    }

    // A directory or file on the host. Absent: the fallback. Empty: refused, unless the key
    // switches an optional feature off (bindHost, variablesFile, inventoryFile).
    fs::path path(const std::string& key, bool required, const fs::path& fallback = {},
                  bool empty_means_unset = false) {
        auto s = r.string(key, required);
        if (!s) return fallback;
        if (s->empty()) {
            if (!empty_means_unset) r.fail(key, "must not be empty");
            return fs::path{};
        }
        if (s->find('\0') != std::string::npos) r.fail(key, "contains a NUL byte");
        return resolve_path(*s, base);
    }

    std::string word(const std::string& key, const std::string& text, std::string_view extra_chars) {
        if (text.empty()) r.fail(key, "must not be empty");
        for (char c : text)
            if (!std::isalnum(static_cast<unsigned char>(c)) &&
                extra_chars.find(c) == std::string_view::npos)
                r.fail(key, fmt::format("{} may only contain letters, digits and '{}'", quote(text),
                                        extra_chars));
        return text;
    }

    void bridge(Config& c) {
        r.mapping("bridge", true);
        c.bridge.name = *r.string("bridge.name", true);
        c.bridge.address = ipv4("bridge.address", *r.string("bridge.address", true));
        c.bridge.prefix = int_in("bridge.netPrefix", *r.integer("bridge.netPrefix", true), 1, 30);
        c.bridge.subnet = Subnet::of(c.bridge.address, c.bridge.prefix);
        if (auto net = r.string("bridge.network", false)) {
            Ipv4 n = ipv4("bridge.network", *net);
            if (n != c.bridge.subnet.network)
                r.fail("bridge.network",
                       fmt::format("{} does not match bridge.address {}/{} (its network is {})",
                                   quote(*net), c.bridge.address.str(), c.bridge.prefix,
                                   c.bridge.subnet.network.str()));
        }
    }

    // The top-level networks section: each network's bridge, the host's address on it, NAT.
    void networks(Config& c) {
        if (!r.mapping("networks", false)) return;
        for (const auto& name : r.keys("networks")) {
            const std::string k = "networks." + name;
            if (!is_valid_network_name(name))
                r.fail(k, fmt::format("{} is not a valid network name: it names the containers' "
                                      "interface on it, so a-z, 0-9 and '_', starting with a "
                                      "letter, at most 15 bytes, and none of lo, host0 or the "
                                      "kernel's tunnel devices (sit0, gre0, ...)",
                                      quote(name)));
            r.mapping(k, true);
            Network n;
            n.name = name;
            n.bridge = *r.string(k + ".bridge", true);
            n.address = ipv4(k + ".address", *r.string(k + ".address", true));
            n.prefix = int_in(k + ".netPrefix", *r.integer(k + ".netPrefix", true), 1, 30);
            n.subnet = Subnet::of(n.address, n.prefix);
            n.nat = r.boolean(k + ".nat", false).value_or(false);
            c.networks.push_back(std::make_shared<const Network>(std::move(n)));
        }
    }

    // A group's ranges on the networks (scope.networks: NET: [first, end)), in the order of the
    // top-level networks section.
    std::vector<NetworkRange> network_ranges(const std::string& scope, const Config& c, Group& g) {
        const std::string key = scope + ".networks";
        std::vector<NetworkRange> out;
        if (!r.mapping(key, false)) return out;
        g.origins["networks"] = key;
        for (const auto& name : r.keys(key)) {
            const std::string k = key + "." + name;
            std::shared_ptr<const Network> net;
            for (const auto& n : c.networks)
                if (n->name == name) net = n;
            if (!net) {
                std::vector<std::string> known;
                for (const auto& n : c.networks) known.push_back(n->name);
                r.fail(k, known.empty()
                              ? fmt::format("unknown network {}: define it in the top-level "
                                            "networks section",
                                            quote(name))
                              : fmt::format("unknown network {} (the networks section has: {})",
                                            quote(name), fmt::join(known, ", ")));
            }
            auto range = *r.string_list(k, true);
            if (range.size() != 2)
                r.fail(k, fmt::format("must be a list of two addresses [first, end), got {} items",
                                      range.size()));
            out.push_back({net, ipv4(k, range[0]), ipv4(k, range[1]), k});
        }
        auto order = [&](const NetworkRange& x) {
            return std::find(c.networks.begin(), c.networks.end(), x.network) - c.networks.begin();
        };
        std::stable_sort(out.begin(), out.end(),
                         [&](const auto& a, const auto& b) { return order(a) < order(b); });
        return out;
    }

    void nat(Config& c) {
        c.nat.chain_name = r.string("ipt.chainName", false).value_or("NSPAWN");
        word("ipt.chainName", c.nat.chain_name, "_-");
        c.nat.table = "aplspawn_" + c.nat.chain_name;
    }

    void paths(Config& c) {
        r.mapping("path", true);
        auto& p = c.paths;
        p.working_dir = path("path.workingDirectory", true);
        p.local_store = path("path.localStore", false, p.working_dir / "images");
        p.lower = path("path.imageLowerLayer", false, p.working_dir / "lower");
        p.upper = path("path.imageUpperPath", false, p.working_dir / "upper");
        p.work = path("path.imageWorkPath", false, p.working_dir / "work");
        p.state = path("path.stateDirectory", false, p.working_dir / "state");
    }

    // repo/url: a URL (http, https, file) or a local directory/file path.
    std::string location(const std::string& key, const std::string& text) {
        if (text.empty()) r.fail(key, "must not be empty");
        auto scheme_end = text.find("://");
        if (scheme_end == std::string::npos) return image::file_url(resolve_path(text, base).string());
        std::string scheme = text::ascii_lower(std::string_view(text).substr(0, scheme_end));
        if (scheme != "http" && scheme != "https" && scheme != "file")
            r.fail(key, fmt::format("{}: unsupported scheme '{}' (use http, https or file)",
                                    quote(text), scheme));
        if (text.size() == scheme_end + 3) r.fail(key, quote(text) + " has no host/path");
        return text;
    }

    // An image from its keys, each read where `source` says it is written (the group's image,
    // else the top-level image section). `where` names the whole image for a missing key.
    using ImageSource = std::function<std::optional<std::string>(const std::string& key)>;
    Image image(const ImageSource& source, const std::string& where, Group* origins_of = nullptr) {
        Image im;
        auto at = [&](const std::string& k) { return source(k).value_or(where + "." + k); };
        auto get = [&](const std::string& k, bool required) -> std::optional<std::string> {
            auto key = source(k);
            if (!key) {
                if (required)
                    r.fail(where, fmt::format("missing image.{} (or image.url)", k));
                return std::nullopt;
            }
            if (origins_of) origins_of->origins["image." + k] = *key;
            return r.string(*key, true);
        };
        if (auto snap = get("snapshot", false)) {
            for (const char* k : {"os", "release", "repo", "url", "sha256"})
                if (source(k))
                    r.fail(at(k), fmt::format("image.{} and image.snapshot exclude each other (a "
                                              "snapshot is an image of the local store)",
                                              k));
            if (!is_valid_image_name(*snap))
                r.fail(at("snapshot"), fmt::format("{} is not an image name (letters, digits, '.', "
                                                   "'_', '-'; at most 64; without .img)",
                                                   quote(*snap)));
            im.snapshot = *snap;
            im.file_name = *snap + ".img";
            im.name = *snap;
            return im;
        }
        bool has_url = source("url").has_value();
        if (auto os = get("os", !has_url)) im.os = word(at("os"), *os, "._-");
        if (auto rel = get("release", !has_url)) im.release = word(at("release"), *rel, "._-");
        if (auto repo = get("repo", !has_url)) {
            im.repo = location(at("repo"), *repo);
            while (im.repo.size() > 1 && im.repo.back() == '/') im.repo.pop_back();
        }
        if (auto url = get("url", false))
            im.url = location(at("url"), *url);
        else
            im.url = fmt::format("{}/{}-{}-latest.img", im.repo, im.os, im.release);
        if (auto sha = get("sha256", false)) {
            std::string s = text::ascii_lower(*sha);
            if (s.size() != 64 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
                r.fail(at("sha256"),
                       fmt::format("{} is not a SHA-256 checksum (64 hex digits)", quote(*sha)));
            im.sha256 = s;
        }
        // The store name: the URL's last path segment, without a compression suffix.
        std::string last = image::url_file_name(im.url);
        for (std::string_view suffix : {".xz", ".zst", ".gz"})
            if (last.size() > suffix.size() && last.ends_with(suffix))
                last.resize(last.size() - suffix.size());
        if (last.empty() || last == "." || last == ".." || last.find('/') != std::string::npos)
            r.fail(has_url ? at("url") : at("repo"),
                   fmt::format("{} does not name an image file", quote(im.url)));
        im.file_name = last;
        im.name = last;
        for (std::string_view suffix : {".img", ".raw"})
            if (im.name.size() > suffix.size() && im.name.ends_with(suffix))
                im.name.resize(im.name.size() - suffix.size());
        return im;
    }

    // The top-level image section (with groups, what groups inherit; it may then be absent).
    Image top_image(Config& c, bool groups) {
        if (!r.mapping("image", !groups)) return {};
        Image top = image(
            [&](const std::string& k) -> std::optional<std::string> {
                std::string key = "image." + k;
                if (!r.has(key)) return std::nullopt;
                return key;
            },
            "image");
        if (auto loop = r.string("image.loopDevice", false); loop && !loop->empty()) {
            top.ignored_loop_device = *loop;
            c.notes.push_back(fmt::format(
                "{}:{}: image.loopDevice {} is ignored: aplspawn attaches the image to a free "
                "loop device itself",
                r.display_name(), r.line_of("image.loopDevice"), quote(*loop)));
        }
        return top;
    }

    // A group's image: its own keys over the top-level image. A group that names another image
    // (os, release, repo or url) does not inherit the top level's url or sha256: those pin the
    // top level's own image.
    Image group_image(const Group& top, Group& g, const std::string& scope) {
        const std::string own = scope + ".image";
        if (!r.has(own)) {
            if (!r.has("image"))
                r.fail(scope, "has no image: set one in the group (image: {os: ..., release: ...}) "
                              "or in the top-level image section");
            for (const auto& k : kImageKeys)
                if (r.has("image." + k)) g.origins["image." + k] = "image." + k;
            return top.image;
        }
        r.mapping(own, true);
        bool renamed = false;
        for (const char* k : {"os", "release", "repo", "url", "snapshot"})
            if (r.has(own + "." + k)) renamed = true;
        const bool own_snapshot = r.has(own + ".snapshot");
        return image(
            [&](const std::string& k) -> std::optional<std::string> {
                if (r.has(own + "." + k)) return own + "." + k;
                if (own_snapshot) return std::nullopt;  // a snapshot is the whole image
                if (k == "loopDevice" ||
                    ((k == "url" || k == "sha256" || k == "snapshot") && renamed))
                    return std::nullopt;
                if (r.has("image." + k)) return "image." + k;
                return std::nullopt;
            },
            own, &g);
    }

    // cntVariables keys read from `scope` ("cntVariables" or "groups.NAME") over v. `required`:
    // the keys that must be there (the top level of a file without groups).
    void vars(const std::string& scope, ContainerVariables& v, Group& g, const Bridge& bridge,
              bool required) {
        auto key = [&](const char* k) { return scope + "." + k; };
        auto note = [&](const char* k) { g.origins[k] = key(k); };
        if (auto s = r.string(key("userName"), required)) {
            v.user_name = *s;
            note("userName");
        }
        if (auto s = r.string(key("userGroup"), false); s && !s->empty()) {
            v.user_group = *s;
            note("userGroup");
        }
        if (auto s = r.string(key("userPassword"), false)) {
            v.user_password = *s;
            note("userPassword");
        }
        if (auto s = r.string(key("rootPassword"), false)) {
            v.root_password = *s;
            note("rootPassword");
        }
        if (auto dns = r.string(key("dnsAddress"), false)) {
            v.dns = dns->empty() ? std::nullopt : std::optional<Ipv4>(ipv4(key("dnsAddress"), *dns));
            note("dnsAddress");
        }
        if (auto p = r.integer(key("netPrefix"), false)) {
            v.prefix = int_in(key("netPrefix"), *p, 1, 30);
            note("netPrefix");
        }
        if (auto gw = r.string(key("defGateway"), false)) {
            v.gateway = gw->empty() ? bridge.address : ipv4(key("defGateway"), *gw);
            note("defGateway");
        }
        if (r.has(key("sshPublicKeyPath")) || required) {
            v.ssh_public_key = path(key("sshPublicKeyPath"), true);
            note("sshPublicKeyPath");
        }
    }

    // cntCommon keys read from `scope` ("cntCommon" or "groups.NAME") over k.
    void common(const std::string& scope, Common& k, Group& g, bool required) {
        auto key = [&](const char* name) { return scope + "." + name; };
        auto note = [&](const char* name) { g.origins[name] = key(name); };
        if (r.has(key("sshPrivateKeyPath")) || required) {
            k.ssh_private_key = path(key("sshPrivateKeyPath"), true);
            note("sshPrivateKeyPath");
        }
        if (auto b = r.boolean(key("bindHostResolve"), false)) {
            k.bind_host_resolve = *b;
            note("bindHostResolve");
        }
        if (r.node(key("bindHost"))) {
            k.bind_host = path(key("bindHost"), false, fs::path{}, true);
            note("bindHost");
        }
        if (r.node(key("variablesFile"))) {
            k.variables_file = path(key("variablesFile"), false, fs::path{}, true);
            note("variablesFile");
        }
        if (auto s = r.string(key("bindContainer"), false)) {
            k.bind_container = *s;
            note("bindContainer");
        }
        if (auto s = r.string(key("startupScript"), false)) {
            k.startup_script = *s;
            note("startupScript");
        }
        if (r.has(key("homePath"))) {
            k.home_path = path(key("homePath"), false, "/var/lib/machines");
            note("homePath");
        }
        if (auto t = r.integer(key("readyTimeout"), false)) {
            k.ready_timeout_sec = int_in(key("readyTimeout"), *t, 1, 3600);
            note("readyTimeout");
        }
        if (auto p = r.string(key("bootProfile"), false)) {
            if (*p == "full")
                k.boot_profile = BootProfile::full;
            else if (*p == "lean")
                k.boot_profile = BootProfile::lean;
            else
                r.fail(key("bootProfile"),
                       fmt::format("{} is not a boot profile (full or lean)", quote(*p)));
            note("bootProfile");
        }
        if (auto types = r.string_list(key("hostKeyTypes"), false)) {
            const auto& known = known_host_key_types();
            if (types->empty())
                r.fail(key("hostKeyTypes"),
                       fmt::format("must name at least one key type ({})", fmt::join(known, ", ")));
            for (const auto& t : *types) {
                if (std::find(known.begin(), known.end(), t) == known.end())
                    r.fail(key("hostKeyTypes"), fmt::format("{} is not an SSH host key type ({})",
                                                            quote(t), fmt::join(known, ", ")));
                if (std::count(types->begin(), types->end(), t) > 1)
                    r.fail(key("hostKeyTypes"), fmt::format("{} is named twice", quote(t)));
            }
            k.host_key_types = *types;
            note("hostKeyTypes");
        }
    }

    // amount and ipRange: the implicit group's in cntCommon, a group's own.
    void size(const std::string& scope, Common& k, Group& g) {
        k.amount = int_in(scope + ".amount", *r.integer(scope + ".amount", true), 1, 4096);
        g.origins["amount"] = scope + ".amount";
        const std::string rk = scope + ".ipRange";
        auto range = *r.string_list(rk, true);
        if (range.size() != 2)
            r.fail(rk, fmt::format("must be a list of two addresses [first, end), got {} items",
                                   range.size()));
        k.range_begin = ipv4(rk, range[0]);
        k.range_end = ipv4(rk, range[1]);
        g.origins["ipRange"] = rk;
    }

    // binds: "SRC:DST[:ro|rw]", SRC a host path (relative: to the config file), DST absolute.
    std::vector<BindMount> binds(const std::string& key) {
        std::vector<BindMount> out;
        auto list = r.string_list(key, false);
        if (!list) return out;
        for (std::size_t i = 0; i < list->size(); ++i) {
            const std::string item_key = fmt::format("{}[{}]", key, i);
            std::string_view s = (*list)[i];
            BindMount b;
            b.key = item_key;
            if (s.ends_with(":ro") || s.ends_with(":rw")) {
                b.read_only = s.ends_with(":ro");
                s.remove_suffix(3);
            }
            auto colon = s.find(':');
            if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size())
                r.fail(item_key, fmt::format("{} is not SOURCE:DESTINATION[:ro|rw]", quote((*list)[i])));
            std::string src(s.substr(0, colon)), dst(s.substr(colon + 1));
            if (dst.find(':') != std::string::npos)
                r.fail(item_key, fmt::format("{}: one ':' between source and destination, then "
                                             "optionally :ro or :rw",
                                             quote((*list)[i])));
            if (dst.front() != '/' || dst == "/")
                r.fail(item_key, fmt::format("{}: the destination must be an absolute path inside "
                                             "the container (other than /)",
                                             quote(dst)));
            if (src.find('\0') != std::string::npos || dst.find('\0') != std::string::npos)
                r.fail(item_key, "contains a NUL byte");
            b.host = resolve_path(src, base);
            b.container = dst;
            for (const auto& other : out)
                if (other.container == b.container)
                    r.fail(item_key, fmt::format("{} is bound twice (also at {})", dst,
                                                 r.place(other.key)));
            out.push_back(std::move(b));
        }
        return out;
    }
};

std::string display_name(const fs::path& file) {
    // Messages show the path as the user gave it when relative to the cwd, else absolute.
    std::error_code ec;
    fs::path cwd = fs::current_path(ec);
    if (!ec) {
        fs::path rel = file.lexically_relative(cwd);
        if (!rel.empty() && *rel.begin() != "..") return rel.string();
    }
    return file.string();
}

// The top-level sections: every group's defaults (or the implicit group itself).
Group top_level(Parser& p, Config& c, bool groups) {
    YamlReader& r = p.r;
    Group top;
    top.vars.prefix = c.bridge.prefix;
    top.vars.gateway = c.bridge.address;
    top.common.name_template = "aplspawn";
    top.common.home_path = "/var/lib/machines";
    r.mapping("cntVariables", !groups);
    r.mapping("cntCommon", !groups);
    p.vars("cntVariables", top.vars, top, c.bridge, !groups);
    p.common("cntCommon", top.common, top, !groups);
    top.binds = p.binds("cntCommon.binds");
    if (!top.binds.empty()) top.origins["binds"] = "cntCommon.binds";
    if (r.node("cntCommon.resources")) {
        top.resources = read_resources(r, "cntCommon.resources", p.cpus);
        top.origins["resources"] = "cntCommon.resources";
    }
    c.inventory_file = p.path("cntCommon.inventoryFile", false, fs::path{}, true);
    if (groups) {
        for (const char* k : {"amount", "ipRange", "nameTmpl", "networks"})
            if (r.node(std::string("cntCommon.") + k))
                r.fail(std::string("cntCommon.") + k,
                       fmt::format("with groups, every group has its own {}: move it into a group",
                                   k));
    } else {
        p.size("cntCommon", top.common, top);
        top.networks = p.network_ranges("cntCommon", c, top);
        if (auto t = r.string("cntCommon.nameTmpl", false)) {
            top.common.name_template = *t;
            top.origins["nameTmpl"] = "cntCommon.nameTmpl";
        }
    }
    return top;
}

void finish_vars(Group& g) {
    if (g.vars.user_group.empty() || !g.origins.contains("userGroup"))
        g.vars.user_group = g.vars.user_name;
}

Group parse_group(Parser& p, Config& c, const Group& top, const std::string& name) {
    YamlReader& r = p.r;
    const std::string scope = "groups." + name;
    if (!is_valid_ansible_group(name))
        r.fail(scope, fmt::format("{} is not a valid Ansible group name (letters, digits and '_', "
                                  "not starting with a digit)",
                                  quote(name)));
    if (name == "all" || name == "ungrouped" || name == kFleetGroup)
        r.fail(scope, fmt::format("{} is a group Ansible or aplspawn already has: choose another "
                                  "name",
                                  quote(name)));
    r.mapping(scope, true);
    if (r.node(scope + ".inventoryFile"))
        r.fail(scope + ".inventoryFile",
               "is fleet-wide (one inventory for every group): set it in cntCommon");
    Group g = top;
    g.name = name;
    p.vars(scope, g.vars, g, c.bridge, false);
    p.common(scope, g.common, g, false);
    p.size(scope, g.common, g);
    g.networks = p.network_ranges(scope, c, g);
    g.common.name_template = r.string(scope + ".nameTmpl", false).value_or(name);
    g.origins["nameTmpl"] = scope + (r.has(scope + ".nameTmpl") ? ".nameTmpl" : "");
    if (r.node(scope + ".binds")) {
        g.binds = p.binds(scope + ".binds");
        g.origins["binds"] = scope + ".binds";
    }
    if (r.node(scope + ".resources")) {  // replaces the top level's whole mapping
        g.resources = read_resources(r, scope + ".resources", p.cpus);
        g.origins["resources"] = scope + ".resources";
    }
    g.image = p.group_image(top, g, scope);
    if (auto v = r.node(scope + ".vars"); v && !v->IsNull()) {
        if (!v->IsMap())
            r.fail(scope + ".vars", "must be a mapping of Ansible variables (name: value)");
        for (auto it = v->begin(); it != v->end(); ++it)
            if (!is_valid_ansible_group(it->first.Scalar()))  // variable names: the same rule
                r.fail(scope + ".vars." + it->first.Scalar(),
                       fmt::format("{} is not a valid Ansible variable name",
                                   quote(it->first.Scalar())));
        g.ansible_vars = yaml_to_json(*v);
    }
    // Keys every container needs, wherever the group gets them from.
    auto need = [&](bool missing, const char* key, const char* section) {
        if (missing)
            r.fail(scope, fmt::format("{}.{} is set neither in the group nor in {}", section, key,
                                      section));
    };
    need(g.vars.user_name.empty(), "userName", "cntVariables");
    need(g.vars.ssh_public_key.empty(), "sshPublicKeyPath", "cntVariables");
    need(g.common.ssh_private_key.empty(), "sshPrivateKeyPath", "cntCommon");
    finish_vars(g);
    return g;
}

}  // namespace

std::string Group::origin(std::string_view key) const {
    if (auto it = origins.find(key); it != origins.end() && !it->second.empty()) return it->second;
    if (implicit || name.empty()) {
        if (key.starts_with("image.")) return std::string(key);
        if (contains(kVarsKeys, key)) return fmt::format("cntVariables.{}", key);
        return fmt::format("cntCommon.{}", key);
    }
    std::string scope = "groups." + name;
    if (key.starts_with("image.")) return scope + ".image";
    return scope;
}

Config parse(std::string_view yaml_text, const fs::path& file) {
    fs::path abs = fs::absolute(file).lexically_normal();
    YamlReader reader(abs, display_name(abs));
    reader.load(yaml_text);
    reader.refuse_unknown_keys(schema());

    Config c;
    c.file = abs;
    Parser p{reader, abs.parent_path()};
    p.bridge(c);
    p.nat(c);
    p.paths(c);
    p.networks(c);
    read_hosts(reader, c);
    const bool groups = reader.node("groups").has_value();
    if (groups) {
        auto g = reader.node("groups");
        if (g->IsNull() || !g->IsMap() || g->size() == 0)
            reader.fail("groups", "must be a mapping of at least one group (NAME: {amount: ..., "
                                  "ipRange: [...]})");
    }
    Image image = p.top_image(c, groups);
    Group top = top_level(p, c, groups);
    top.image = std::move(image);
    finish_vars(top);
    if (groups) {
        for (const auto& name : reader.keys("groups")) {
            Group g = parse_group(p, c, top, name);
            place_group(reader, c, g);
            c.groups.push_back(std::make_shared<const Group>(std::move(g)));
        }
    } else {
        top.name = std::string(kFleetGroup);
        top.implicit = true;
        place_group(reader, c, top);
        c.groups.push_back(std::make_shared<const Group>(std::move(top)));
    }
    validate(c, reader);
    c.lines = reader.lines();
    return c;
}

Config load(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        int err = errno;
        throw Error(fmt::format("config file {}: {}", file.string(), std::strerror(err)),
                    Exit::usage, err);
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        throw Error(fmt::format("config file {}: read error", file.string()), Exit::usage);
    return parse(text.str(), file);
}

std::string Config::where(std::string_view key) const {
    std::string shown = display_name(file);
    std::string k(key);
    while (!k.empty()) {
        if (auto it = lines.find(k); it != lines.end())
            return fmt::format("{}:{}: {}", shown, it->second, key);
        auto cut = k.find_last_of(".[");
        if (cut == std::string::npos) break;
        k.resize(cut);
    }
    return fmt::format("{}: {}", shown, key);
}

const Container* Config::find(std::string_view name) const {
    for (const auto& ct : fleet)
        if (ct.name == name) return &ct;
    return nullptr;
}

const Group* Config::find_group(std::string_view name) const {
    for (const auto& g : groups)
        if (g->name == name) return g.get();
    return nullptr;
}

const Network* Config::find_network(std::string_view name) const {
    for (const auto& n : networks)
        if (n->name == name) return n.get();
    return nullptr;
}

std::vector<const Image*> Config::images() const {
    std::vector<const Image*> out;
    for (const auto& g : groups) {
        bool seen = std::any_of(out.begin(), out.end(), [&](const Image* im) {
            return im->file_name == g->image.file_name;
        });
        if (!seen) out.push_back(&g->image);
    }
    return out;
}

}  // namespace aplspawn::config
