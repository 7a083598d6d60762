#include "aplspawn/inventory/format.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <regex>

namespace aplspawn::inventory {

using json = nlohmann::ordered_json;

Format parse_format(std::string_view name) {
    if (name == "ini") return Format::ini;
    if (name == "yaml") return Format::yaml;
    if (name == "json") return Format::json;
    throw Error::usage(fmt::format("inventory: unknown format \"{}\" (ini, yaml or json)", name));
}

std::string shell_quote(std::string_view word) {
    if (word.empty()) return "''";
    bool safe = true;
    for (char ch : word) {
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  std::string_view("_@%+=:,./-").find(ch) != std::string_view::npos;
        if (!ok) {
            safe = false;
            break;
        }
    }
    if (safe) return std::string(word);
    std::string q = "'";
    for (char ch : word) {
        if (ch == '\'')
            q += "'\"'\"'";
        else
            q += ch;
    }
    return q + "'";
}

std::string python_literal(const json& v) {
    switch (v.type()) {
    case json::value_t::null: return "None";
    case json::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return v.dump();
    case json::value_t::string: {
        std::string out = "'";
        for (unsigned char ch : v.get_ref<const std::string&>()) {
            switch (ch) {
            case '\\': out += "\\\\"; break;
            case '\'': out += "\\'"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (ch < 0x20 || ch == 0x7f)
                    out += fmt::format("\\x{:02x}", ch);
                else
                    out += static_cast<char>(ch);
            }
        }
        return out + "'";
    }
    case json::value_t::array: {
        std::string out = "[";
        for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + python_literal(v[i]);
        return out + "]";
    }
    case json::value_t::object: {
        std::string out = "{";
        bool first = true;
        for (const auto& [k, x] : v.items()) {
            out += (first ? "" : ", ") + python_literal(json(k)) + ": " + python_literal(x);
            first = false;
        }
        return out + "}";
    }
    default: return "None";
    }
}

namespace {

// A value on an INI host line: Ansible splits the line with shlex, then reads each value as a
// Python literal when it can. A plain word that no literal can be (a name, a dotted or dashed
// name) stays as it is; anything else is written as a Python literal inside double quotes.
std::string ini_host_value(const json& v) {
    static const std::regex plain("^[A-Za-z_][A-Za-z0-9_.-]*$");
    if (v.is_string()) {
        const auto& s = v.get_ref<const std::string&>();
        if (std::regex_match(s, plain) && s != "True" && s != "False" && s != "None") return s;
    }
    std::string lit = python_literal(v), out = "\"";
    for (char ch : lit) {
        if (ch == '"' || ch == '\\') out += '\\';
        out += ch;
    }
    return out + "\"";
}

std::string ini_host_line(const Host& h) {
    std::string s = h.name;
    for (const auto& [k, v] : h.vars()) s += fmt::format(" {}={}", k, shell_quote(v));
    for (const auto& [k, v] : h.facts) s += fmt::format(" {}={}", k, ini_host_value(v));
    return s + "\n";
}

json host_object(const Host& h) { return h.all_vars(); }

// A mapping key YAML would read as itself: a plain name that is not a YAML 1.1 boolean or null.
bool plain_key(const std::string& k) {
    static const std::regex name("^[A-Za-z_][A-Za-z0-9_]*$");
    static const std::regex special("^(y|n|yes|no|true|false|on|off|null)$", std::regex::icase);
    return std::regex_match(k, name) && !std::regex_match(k, special);
}

void emit(YAML::Emitter& e, const json& v) {
    switch (v.type()) {
    case json::value_t::null: e << YAML::Null; break;
    case json::value_t::boolean: e << v.get<bool>(); break;
    case json::value_t::number_integer: e << v.get<long long>(); break;
    case json::value_t::number_unsigned: e << v.get<unsigned long long>(); break;
    case json::value_t::number_float: e << v.get<double>(); break;
    case json::value_t::string: e << YAML::DoubleQuoted << v.get<std::string>(); break;
    case json::value_t::array:
        e << YAML::BeginSeq;
        for (const auto& x : v) emit(e, x);
        e << YAML::EndSeq;
        break;
    case json::value_t::object:
        if (v.empty()) {
            e << YAML::Flow << YAML::BeginMap << YAML::EndMap;
            break;
        }
        e << YAML::BeginMap;
        for (const auto& [k, x] : v.items()) {
            e << YAML::Key;
            if (plain_key(k))
                e << k;
            else
                e << YAML::DoubleQuoted << k;
            e << YAML::Value;
            emit(e, x);
        }
        e << YAML::EndMap;
        break;
    default: e << YAML::Null;
    }
}

json hosts_object(const std::vector<const Host*>& hosts) {
    json o = json::object();
    for (const Host* h : hosts) o[h->name] = host_object(*h);
    return o;
}

std::vector<const Host*> all_hosts(const Inventory& inv) {
    std::vector<const Host*> out;
    for (const auto& h : inv.hosts) out.push_back(&h);
    return out;
}

}  // namespace

static std::string ini_vars(const std::string& group, const json& vars) {
    if (vars.empty()) return "";
    std::string s = fmt::format("\n[{}:vars]\n", group);
    for (const auto& [k, v] : vars.items()) s += fmt::format("{}={}\n", k, python_literal(v));
    return s;
}

std::string to_ini(const Inventory& inv) {
    std::string s = "# Ansible inventory of the aplspawn fleet (generated by aplspawn; do not edit)\n";
    if (inv.children.empty()) {
        s += fmt::format("[{}]\n", inv.group);
        for (const auto& h : inv.hosts) s += ini_host_line(h);
        return s + ini_vars(inv.group, inv.vars);
    }
    s += fmt::format("[{}:children]\n", inv.group);
    for (const auto& g : inv.children) s += g.name + "\n";
    for (const auto& g : inv.children) {
        s += fmt::format("\n[{}]\n", g.name);
        for (const Host* h : inv.hosts_of(g.name)) s += ini_host_line(*h);
        s += ini_vars(g.name, g.vars);
    }
    return s + ini_vars(inv.group, inv.vars);
}

json to_json(const Inventory& inv) {
    json fleet = json::object();
    if (inv.children.empty()) {
        fleet["hosts"] = hosts_object(all_hosts(inv));
    } else {
        json children = json::object();
        for (const auto& g : inv.children) {
            json group = {{"hosts", hosts_object(inv.hosts_of(g.name))}};
            if (!g.vars.empty()) group["vars"] = g.vars;
            children[g.name] = group;
        }
        fleet["children"] = children;
    }
    if (!inv.vars.empty()) fleet["vars"] = inv.vars;
    return {{"all", {{"children", {{inv.group, fleet}}}}}};
}

std::string to_yaml(const Inventory& inv) {
    YAML::Emitter e;
    emit(e, to_json(inv));
    return std::string("# Ansible inventory of the aplspawn fleet (generated by aplspawn)\n") +
           e.c_str() + "\n";
}

std::string render(const Inventory& inv, Format format) {
    switch (format) {
    case Format::ini: return to_ini(inv);
    case Format::yaml: return to_yaml(inv);
    case Format::json: return to_json(inv).dump(2) + "\n";
    }
    return {};
}

json dynamic_list(const Inventory& inv) {
    json hostvars = json::object();
    for (const auto& h : inv.hosts) hostvars[h.name] = host_object(h);
    json out = {{"_meta", {{"hostvars", hostvars}}}, {"all", {{"children", json::array({inv.group})}}}};
    auto names = [](const std::vector<const Host*>& hosts) {
        json arr = json::array();
        for (const Host* h : hosts) arr.push_back(h->name);
        return arr;
    };
    if (inv.children.empty()) {
        out[inv.group] = {{"hosts", names(all_hosts(inv))}};
    } else {
        json children = json::array();
        for (const auto& g : inv.children) children.push_back(g.name);
        out[inv.group] = {{"children", children}};
    }
    if (!inv.vars.empty()) out[inv.group]["vars"] = inv.vars;
    if (inv.children.empty()) return out;
    for (const auto& g : inv.children) {
        json group = {{"hosts", names(inv.hosts_of(g.name))}};
        if (!g.vars.empty()) group["vars"] = g.vars;
        out[g.name] = group;
    }
    return out;
}

std::optional<json> dynamic_host(const Inventory& inv, std::string_view name) {
    const Host* h = inv.find(name);
    if (!h) return std::nullopt;
    return host_object(*h);
}

}  // namespace aplspawn::inventory
