// YAML text -> typed Config. Each section is read by one function; every value is checked where it
// is read (type, form), and cross-key rules (range inside the subnet, names unique, ...) are
// checked in validate.cpp once everything is read.
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/text.hpp"
#include "config/validate.hpp"
#include "config/yaml_reader.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace aplspawn::config {
namespace {

// Every key aplspawn understands, per section. The original's keys first, then new ones.
const std::map<std::string, std::vector<std::string>> kKnownKeys = {
    {"bridge", {"name", "address", "network", "netPrefix"}},
    {"ipt", {"chainName"}},
    {"path",
     {"workingDirectory", "localStore", "imageLowerLayer", "imageUpperPath", "imageWorkPath",
      "stateDirectory"}},
    {"image", {"os", "release", "repo", "loopDevice", "url", "sha256"}},
    {"cntVariables",
     {"userName", "userGroup", "userPassword", "rootPassword", "dnsAddress", "netPrefix",
      "defGateway", "sshPublicKeyPath"}},
    {"cntCommon",
     {"amount", "sshPrivateKeyPath", "ipRange", "bindHostResolve", "bindHost", "variablesFile",
      "bindContainer", "startupScript", "nameTmpl", "homePath", "inventoryFile", "readyTimeout",
      "bootProfile", "hostKeyTypes"}},
};

struct Parser {
    YamlReader& r;
    fs::path base;  // directory of the config file: relative paths resolve against it

    Ipv4 ipv4(const std::string& section, const std::string& key, const std::string& text) {
        auto ip = Ipv4::parse(text);
        if (!ip) r.fail(section + "." + key, fmt::format("{} is not an IPv4 address", quote(text)));
        return *ip;
    }

    int int_in(const std::string& section, const std::string& key, long long v, long long lo,
               long long hi) {
        if (v < lo || v > hi)
            r.fail(section + "." + key, fmt::format("{} is out of range {}..{}", v, lo, hi));
        return static_cast<int>(v);
    }

    // A directory or file on the host. Absent: the fallback. Empty: refused, unless the key
    // switches an optional feature off (bindHost, variablesFile, inventoryFile).
    fs::path path(const std::string& section, const std::string& key, bool required,
                  const fs::path& fallback = {}, bool empty_means_unset = false) {
        auto s = r.string(section, key, required);
        if (!s) return fallback;
        if (s->empty()) {
            if (!empty_means_unset) r.fail(section + "." + key, "must not be empty");
            return fallback;
        }
        if (s->find('\0') != std::string::npos) r.fail(section + "." + key, "contains a NUL byte");
        return resolve_path(*s, base);
    }

    std::string word(const std::string& section, const std::string& key, const std::string& text,
                     std::string_view extra_chars) {
        if (text.empty()) r.fail(section + "." + key, "must not be empty");
        for (char c : text)
            if (!std::isalnum(static_cast<unsigned char>(c)) &&
                extra_chars.find(c) == std::string_view::npos)
                r.fail(section + "." + key,
                       fmt::format("{} may only contain letters, digits and '{}'", quote(text),
                                   extra_chars));
        return text;
    }

    void bridge(Config& c) {
        r.section("bridge", true);
        c.bridge.name = *r.string("bridge", "name", true);
        c.bridge.address = ipv4("bridge", "address", *r.string("bridge", "address", true));
        c.bridge.prefix = int_in("bridge", "netPrefix", *r.integer("bridge", "netPrefix", true), 1,
                                 30);
        c.bridge.subnet = Subnet::of(c.bridge.address, c.bridge.prefix);
        if (auto net = r.string("bridge", "network", false)) {
            Ipv4 n = ipv4("bridge", "network", *net);
            if (n != c.bridge.subnet.network)
                r.fail("bridge.network",
                       fmt::format("{} does not match bridge.address {}/{} (its network is {})",
                                   quote(*net), c.bridge.address.str(), c.bridge.prefix,
                                   c.bridge.subnet.network.str()));
        }
    }

    void nat(Config& c) {
        c.nat.chain_name = r.string("ipt", "chainName", false).value_or("NSPAWN");
        word("ipt", "chainName", c.nat.chain_name, "_-");
        c.nat.table = "aplspawn_" + c.nat.chain_name;
    }

    void paths(Config& c) {
        r.section("path", true);
        auto& p = c.paths;
        p.working_dir = path("path", "workingDirectory", true);
        p.local_store = path("path", "localStore", false, p.working_dir / "images");
        p.lower = path("path", "imageLowerLayer", false, p.working_dir / "lower");
        p.upper = path("path", "imageUpperPath", false, p.working_dir / "upper");
        p.work = path("path", "imageWorkPath", false, p.working_dir / "work");
        p.state = path("path", "stateDirectory", false, p.working_dir / "state");
    }

    // repo/url: a URL (http, https, file) or a local directory/file path.
    std::string location(const std::string& key, const std::string& text) {
        if (text.empty()) r.fail("image." + key, "must not be empty");
        auto scheme_end = text.find("://");
        if (scheme_end == std::string::npos) return "file://" + resolve_path(text, base).string();
        std::string scheme = text::ascii_lower(std::string_view(text).substr(0, scheme_end));
        if (scheme != "http" && scheme != "https" && scheme != "file")
            r.fail("image." + key,
                   fmt::format("{}: unsupported scheme '{}' (use http, https or file)",
                               quote(text), scheme));
        if (text.size() == scheme_end + 3) r.fail("image." + key, quote(text) + " has no host/path");
        return text;
    }

    void image(Config& c) {
        auto& im = c.image;
        bool has_url = r.string("image", "url", false).has_value();
        r.section("image", true);
        if (auto os = r.string("image", "os", !has_url)) im.os = word("image", "os", *os, "._-");
        if (auto rel = r.string("image", "release", !has_url))
            im.release = word("image", "release", *rel, "._-");
        if (auto repo = r.string("image", "repo", !has_url)) {
            im.repo = location("repo", *repo);
            while (im.repo.size() > 1 && im.repo.back() == '/') im.repo.pop_back();
        }
        if (auto url = r.string("image", "url", false))
            im.url = location("url", *url);
        else
            im.url = fmt::format("{}/{}-{}-latest.img", im.repo, im.os, im.release);
        if (auto sha = r.string("image", "sha256", false)) {
            std::string s = text::ascii_lower(*sha);
            if (s.size() != 64 || s.find_first_not_of("0123456789abcdef") != std::string::npos)
                r.fail("image.sha256",
                       fmt::format("{} is not a SHA-256 checksum (64 hex digits)", quote(*sha)));
            im.sha256 = s;
        }
        if (auto loop = r.string("image", "loopDevice", false); loop && !loop->empty()) {
            im.ignored_loop_device = *loop;
            c.notes.push_back(fmt::format(
                "{}:{}: image.loopDevice {} is ignored: aplspawn attaches the image to a free "
                "loop device itself",
                r.display_name(), r.line_of("image.loopDevice"), quote(*loop)));
        }
        // The store name: the URL's last path segment, without a compression suffix.
        std::string url_path = im.url.substr(im.url.find("://") + 3);
        if (auto q = url_path.find_first_of("?#"); q != std::string::npos)
            url_path.resize(q);
        std::string last = url_path.substr(url_path.find_last_of('/') + 1);
        for (std::string_view suffix : {".xz", ".zst", ".gz"})
            if (last.size() > suffix.size() && last.ends_with(suffix))
                last.resize(last.size() - suffix.size());
        if (last.empty() || last == "." || last == "..")
            r.fail(has_url ? "image.url" : "image.repo",
                   fmt::format("{} does not name an image file", quote(im.url)));
        im.file_name = last;
        im.name = last;
        for (std::string_view suffix : {".img", ".raw"})
            if (im.name.size() > suffix.size() && im.name.ends_with(suffix))
                im.name.resize(im.name.size() - suffix.size());
    }

    void vars(Config& c) {
        r.section("cntVariables", true);
        auto& v = c.vars;
        v.user_name = *r.string("cntVariables", "userName", true);
        v.user_group = r.string("cntVariables", "userGroup", false).value_or(v.user_name);
        if (v.user_group.empty()) v.user_group = v.user_name;
        v.user_password = r.string("cntVariables", "userPassword", false).value_or("");
        v.root_password = r.string("cntVariables", "rootPassword", false).value_or("");
        if (auto dns = r.string("cntVariables", "dnsAddress", false); dns && !dns->empty())
            v.dns = ipv4("cntVariables", "dnsAddress", *dns);
        v.prefix = c.bridge.prefix;
        if (auto p = r.integer("cntVariables", "netPrefix", false))
            v.prefix = int_in("cntVariables", "netPrefix", *p, 1, 30);
        v.gateway = c.bridge.address;
        if (auto gw = r.string("cntVariables", "defGateway", false); gw && !gw->empty())
            v.gateway = ipv4("cntVariables", "defGateway", *gw);
        v.ssh_public_key = path("cntVariables", "sshPublicKeyPath", true);
    }

    void common(Config& c) {
        r.section("cntCommon", true);
        auto& k = c.common;
        k.amount = int_in("cntCommon", "amount", *r.integer("cntCommon", "amount", true), 1, 4096);
        k.ssh_private_key = path("cntCommon", "sshPrivateKeyPath", true);
        auto range = *r.string_list("cntCommon", "ipRange", true);
        if (range.size() != 2)
            r.fail("cntCommon.ipRange",
                   fmt::format("must be a list of two addresses [first, end), got {} items",
                               range.size()));
        k.range_begin = ipv4("cntCommon", "ipRange", range[0]);
        k.range_end = ipv4("cntCommon", "ipRange", range[1]);
        k.bind_host_resolve = r.boolean("cntCommon", "bindHostResolve", false).value_or(false);
        k.bind_host = path("cntCommon", "bindHost", false, fs::path{}, true);
        k.variables_file = path("cntCommon", "variablesFile", false, fs::path{}, true);
        k.bind_container = r.string("cntCommon", "bindContainer", false).value_or("");
        k.startup_script = r.string("cntCommon", "startupScript", false).value_or("");
        k.name_template = r.string("cntCommon", "nameTmpl", false).value_or("aplspawn");
        k.home_path = path("cntCommon", "homePath", false, "/var/lib/machines");
        k.inventory_file = path("cntCommon", "inventoryFile", false, fs::path{}, true);
        if (auto t = r.integer("cntCommon", "readyTimeout", false))
            k.ready_timeout_sec = int_in("cntCommon", "readyTimeout", *t, 1, 3600);
        if (auto p = r.string("cntCommon", "bootProfile", false)) {
            if (*p == "full")
                k.boot_profile = BootProfile::full;
            else if (*p == "lean")
                k.boot_profile = BootProfile::lean;
            else
                r.fail("cntCommon.bootProfile",
                       fmt::format("{} is not a boot profile (full or lean)", quote(*p)));
        }
        if (auto types = r.string_list("cntCommon", "hostKeyTypes", false)) {
            const auto& known = known_host_key_types();
            if (types->empty())
                r.fail("cntCommon.hostKeyTypes",
                       fmt::format("must name at least one key type ({})", fmt::join(known, ", ")));
            for (const auto& t : *types) {
                if (std::find(known.begin(), known.end(), t) == known.end())
                    r.fail("cntCommon.hostKeyTypes",
                           fmt::format("{} is not an SSH host key type ({})", quote(t),
                                       fmt::join(known, ", ")));
                if (std::count(types->begin(), types->end(), t) > 1)
                    r.fail("cntCommon.hostKeyTypes", fmt::format("{} is named twice", quote(t)));
            }
            k.host_key_types = *types;
        }
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

}  // namespace

Config parse(std::string_view yaml_text, const fs::path& file) {
    fs::path abs = fs::absolute(file).lexically_normal();
    YamlReader reader(abs, display_name(abs));
    reader.load(yaml_text);
    reader.refuse_unknown_keys(kKnownKeys);

    Config c;
    c.file = abs;
    Parser p{reader, abs.parent_path()};
    p.bridge(c);
    p.nat(c);
    p.paths(c);
    p.image(c);
    p.vars(c);
    p.common(c);
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
    auto it = lines.find(key);
    if (it == lines.end()) return fmt::format("{}: {}", shown, key);
    return fmt::format("{}:{}: {}", shown, it->second, key);
}

const Container* Config::find(std::string_view name) const {
    for (const auto& ct : fleet)
        if (ct.name == name) return &ct;
    return nullptr;
}

}  // namespace aplspawn::config
