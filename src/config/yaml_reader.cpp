#include "config/yaml_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace aplspawn::config {
namespace {

int line_of_node(const YAML::Node& node) {
    YAML::Mark m = node.Mark();
    return m.is_null() ? 0 : m.line + 1;
}

const char* kind_name(const YAML::Node& node) {
    switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "empty";
    default: return "undefined";
    }
}

// Edit distance, for "did you mean" on unknown keys.
size_t distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = (std::tolower(a[i - 1]) == std::tolower(b[j - 1])) ? 0 : 1;
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

std::string suggestion(std::string_view key, const std::vector<std::string>& candidates) {
    std::string best;
    size_t best_d = 3;  // suggest only close matches
    for (const auto& c : candidates) {
        size_t d = distance(key, c);
        if (d < best_d) {
            best_d = d;
            best = c;
        }
    }
    return best.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", best);
}

std::string join_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

}  // namespace

std::string quote(std::string_view value) {
    std::string out = "'";
    size_t n = 0;
    for (char c : value) {
        if (++n > 80) {
            out += "...";
            break;
        }
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            out += fmt::format("\\x{:02x}", u);
        else
            out += c;
    }
    out += "'";
    return out;
}

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> out;
    while (!path.empty()) {
        auto dot = path.find('.');
        out.emplace_back(path.substr(0, dot));
        if (dot == std::string_view::npos) break;
        path.remove_prefix(dot + 1);
    }
    return out;
}

YamlReader::YamlReader(std::filesystem::path file, std::string display_name)
    : file_(std::move(file)), display_(std::move(display_name)) {}

void YamlReader::load(std::string_view text) {
    try {
        root_ = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        int line = e.mark.is_null() ? 0 : e.mark.line + 1;
        fail_at(line, "", fmt::format("YAML syntax error: {}", e.msg));
    }
    if (root_.IsNull() || !root_.IsDefined())
        throw Error::usage(fmt::format("{}: empty config file (expected the sections bridge, ipt, "
                                       "path, image, cntVariables, cntCommon)",
                                       display_));
    if (!root_.IsMap())
        fail_at(line_of_node(root_), "",
                fmt::format("the top level must be a mapping of sections, not {}",
                            kind_name(root_)));
    record_lines(root_, "");
}

void YamlReader::record_lines(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) {
        for (auto it = node.begin(); it != node.end(); ++it) {
            std::string key = join_path(path, it->first.Scalar());
            lines_.emplace(key, line_of_node(it->first));
            record_lines(it->second, key);
        }
    } else if (node.IsSequence()) {
        std::size_t i = 0;
        for (const auto& item : node) {
            std::string key = fmt::format("{}[{}]", path, i++);
            lines_.emplace(key, line_of_node(item));
            record_lines(item, key);
        }
    }
}

int YamlReader::line_of(std::string_view key) const {
    std::string k(key);
    while (!k.empty()) {
        if (auto it = lines_.find(k); it != lines_.end()) return it->second;
        auto cut = k.find_last_of(".[");
        if (cut == std::string::npos) break;
        k.resize(cut);
    }
    return 0;
}

std::string YamlReader::place(std::string_view key) const {
    int line = line_of(key);
    return line > 0 ? fmt::format("{}:{}", display_, line) : display_;
}

void YamlReader::fail(std::string_view key, const std::string& message) const {
    fail_at(line_of(key), key, message);
}

void YamlReader::fail_at(int line, std::string_view key, const std::string& message) const {
    std::string where = line > 0 ? fmt::format("{}:{}", display_, line) : display_;
    if (key.empty()) throw Error::usage(fmt::format("{}: {}", where, message));
    throw Error::usage(fmt::format("{}: {}: {}", where, key, message));
}

std::optional<YAML::Node> YamlReader::node(std::string_view path) const {
    // Node::operator= assigns through to the tree in yaml-cpp; reset() rebinds the handle.
    YAML::Node cur;
    cur.reset(root_);
    std::string so_far;
    for (const auto& seg : split_path(path)) {
        if (cur.IsNull()) return std::nullopt;
        if (!cur.IsMap())  // a section (or group) written as a scalar or a list
            fail(so_far, fmt::format("must be a mapping of keys, not {}", kind_name(cur)));
        so_far = join_path(so_far, seg);
        const YAML::Node& parent = cur;  // const operator[]: never inserts
        const YAML::Node next = parent[seg];
        if (!next.IsDefined()) return std::nullopt;
        cur.reset(next);
    }
    return cur;
}

bool YamlReader::has(std::string_view path) const {
    auto n = node(path);
    return n && !n->IsNull();
}

std::vector<std::string> YamlReader::keys(std::string_view path) const {
    std::vector<std::string> out;
    auto n = path.empty() ? std::optional<YAML::Node>(root_) : node(path);
    if (!n || !n->IsMap()) return out;
    for (auto it = n->begin(); it != n->end(); ++it) out.push_back(it->first.Scalar());
    return out;
}

std::optional<YAML::Node> YamlReader::mapping(std::string_view path, bool required) const {
    auto n = node(path);
    if (!n || n->IsNull()) {
        if (required) {
            bool top = path.find('.') == std::string_view::npos;
            fail_at(n ? line_of(path) : (top ? 0 : line_of(path)), path,
                    top ? "missing section" : "missing key");
        }
        return std::nullopt;
    }
    if (!n->IsMap()) fail(path, fmt::format("must be a mapping of keys, not {}", kind_name(*n)));
    return n;
}

std::optional<YAML::Node> YamlReader::value(std::string_view path, bool required) const {
    auto n = node(path);
    if (!n) {
        if (required) fail(path, "missing key");
        return std::nullopt;
    }
    if (n->IsNull()) {
        if (required) fail(path, "missing value");
        return std::nullopt;
    }
    return n;
}

std::optional<std::string> YamlReader::string(std::string_view path, bool required) const {
    auto n = value(path, required);
    if (!n) return std::nullopt;
    if (!n->IsScalar()) fail(path, fmt::format("must be a string, not {}", kind_name(*n)));
    return n->Scalar();
}

std::optional<long long> YamlReader::integer(std::string_view path, bool required) const {
    auto n = value(path, required);
    if (!n) return std::nullopt;
    if (!n->IsScalar()) fail(path, fmt::format("must be an integer, not {}", kind_name(*n)));
    const std::string& s = n->Scalar();
    long long v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty())
        fail(path, fmt::format("must be an integer, got {}", quote(s)));
    return v;
}

std::optional<bool> YamlReader::boolean(std::string_view path, bool required) const {
    auto n = value(path, required);
    if (!n) return std::nullopt;
    bool b = false;
    if (!n->IsScalar() || !YAML::convert<bool>::decode(*n, b))
        fail(path, fmt::format("must be true or false, got {}",
                               n->IsScalar() ? quote(n->Scalar()) : kind_name(*n)));
    return b;
}

std::optional<std::vector<std::string>> YamlReader::string_list(std::string_view path,
                                                                bool required) const {
    auto n = value(path, required);
    if (!n) return std::nullopt;
    if (!n->IsSequence())
        fail(path, fmt::format("must be a list, not {}",
                               n->IsScalar() ? quote(n->Scalar()) : kind_name(*n)));
    std::vector<std::string> out;
    for (const auto& item : *n) {
        if (!item.IsScalar())
            fail_at(line_of_node(item), path,
                    fmt::format("list items must be strings, not {}", kind_name(item)));
        out.push_back(item.Scalar());
    }
    return out;
}

void YamlReader::refuse_unknown_keys(const Schema& schema) const {
    check_keys(root_, "", "", schema);
}

void YamlReader::check_keys(const YAML::Node& node, const std::string& path,
                            const std::string& pattern, const Schema& schema) const {
    auto known = schema.find(pattern);
    if (known == schema.end() || !node.IsMap()) return;
    for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = it->first.Scalar();
        const std::string child = join_path(path, key);
        const auto& allowed = known->second;
        if (std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) {
            check_keys(it->second, child, join_path(pattern, "*"), schema);
            continue;
        }
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
            fail_at(line_of_node(it->first), child,
                    (pattern.empty() ? "unknown section" : "unknown key") + suggestion(key, allowed));
        check_keys(it->second, child, join_path(pattern, key), schema);
    }
}

}  // namespace aplspawn::config
