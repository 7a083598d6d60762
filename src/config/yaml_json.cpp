#include "config/yaml_json.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <regex>

namespace aplspawn::config {
namespace {

using json = nlohmann::ordered_json;

bool one_of(const std::string& s, std::initializer_list<const char*> words) {
    for (const char* w : words)
        if (s == w) return true;
    return false;
}

// YAML 1.1 integers: decimal, 0x hex, 0 octal, 0b binary, with '_' separators and a sign.
std::optional<long long> yaml11_int(const std::string& text) {
    static const std::regex re("^[-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0[0-7_]+|0b[01_]+)$");
    if (!std::regex_match(text, re)) return std::nullopt;
    std::string s;
    for (char c : text)
        if (c != '_') s += c;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        s.erase(0, 1);
    }
    int base = 10;
    if (s.size() > 2 && (s[1] == 'x' || s[1] == 'b')) {
        base = s[1] == 'x' ? 16 : 2;
        s.erase(0, 2);
    } else if (s.size() > 1 && s[0] == '0') {
        base = 8;
        s.erase(0, 1);
    }
    if (s.empty()) return std::nullopt;
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return neg ? -v : v;
}

// YAML 1.1 floats as PyYAML reads them (a '.' is needed; exponents allowed), and .inf/.nan.
std::optional<double> yaml11_float(const std::string& text) {
    static const std::regex re(
        "^([-+]?[0-9][0-9_]*\\.[0-9_]*|\\.[0-9_]+)([eE][-+][0-9]+)?$");
    if (one_of(text, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"}))
        return std::numeric_limits<double>::infinity();
    if (one_of(text, {"-.inf", "-.Inf", "-.INF"})) return -std::numeric_limits<double>::infinity();
    if (one_of(text, {".nan", ".NaN", ".NAN"})) return std::numeric_limits<double>::quiet_NaN();
    if (!std::regex_match(text, re)) return std::nullopt;
    std::string s;
    for (char c : text)
        if (c != '_') s += c;
    try {
        return std::stod(s);
    } catch (...) {
        return std::nullopt;
    }
}

}  // namespace

json plain_scalar(const std::string& s) {
    if (one_of(s, {"", "~", "null", "Null", "NULL"})) return nullptr;
    if (one_of(s, {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})) return true;
    if (one_of(s, {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}))
        return false;
    if (auto i = yaml11_int(s)) return *i;
    if (auto f = yaml11_float(s)) {
        // JSON has no inf/nan: keep such a value as the text it was.
        if (std::isfinite(*f)) return *f;
        return s;
    }
    return s;
}

json yaml_to_json(const YAML::Node& node) {
    switch (node.Type()) {
    case YAML::NodeType::Map: {
        json obj = json::object();
        for (auto it = node.begin(); it != node.end(); ++it)
            obj[it->first.Scalar()] = yaml_to_json(it->second);
        return obj;
    }
    case YAML::NodeType::Sequence: {
        json arr = json::array();
        for (const auto& item : node) arr.push_back(yaml_to_json(item));
        return arr;
    }
    case YAML::NodeType::Scalar: {
        const std::string& tag = node.Tag();
        if (tag == "?") return plain_scalar(node.Scalar());
        if (tag == "tag:yaml.org,2002:int")
            if (auto i = yaml11_int(node.Scalar())) return *i;
        if (tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null" ||
            tag == "tag:yaml.org,2002:float")
            return plain_scalar(node.Scalar());
        return node.Scalar();  // quoted, !!str, or a tag of its own: the text
    }
    default: return nullptr;
    }
}

}  // namespace aplspawn::config
