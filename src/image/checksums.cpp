#include "aplspawn/image/checksums.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/text.hpp"

#include <fmt/format.h>

namespace aplspawn::image {
namespace {

// GNU escaping: a line starting with '\' has "\\" and "\n" escaped in its name.
std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            char n = s[++i];
            out += n == 'n' ? '\n' : n;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string clean_name(std::string name) {
    while (name.starts_with("./")) name.erase(0, 2);
    return name;
}

std::optional<SumsEntry> parse_line(std::string_view line) {
    line = text::trim_blanks(line);
    if (line.empty() || line.front() == '#') return std::nullopt;
    // BSD tag style: SHA256 (NAME) = HEX
    if (line.starts_with("SHA256 (")) {
        auto close = line.rfind(") = ");
        if (close == std::string_view::npos) return std::nullopt;
        std::string_view hex = text::trim_blanks(line.substr(close + 4));
        if (!is_sha256_hex(hex)) return std::nullopt;
        return SumsEntry{text::ascii_lower(hex), clean_name(std::string(line.substr(8, close - 8)))};
    }
    bool escaped = false;
    if (line.front() == '\\') {
        escaped = true;
        line.remove_prefix(1);
    }
    if (line.size() < 66 || !is_sha256_hex(line.substr(0, 64))) return std::nullopt;
    if (line[64] != ' ' && line[64] != '\t') return std::nullopt;
    std::string_view rest = line.substr(65);
    if (!rest.empty() && (rest.front() == ' ' || rest.front() == '*')) rest.remove_prefix(1);
    if (rest.empty()) return std::nullopt;
    std::string name = escaped ? unescape(rest) : std::string(rest);
    return SumsEntry{text::ascii_lower(line.substr(0, 64)), clean_name(std::move(name))};
}

}  // namespace

std::vector<SumsEntry> parse_sha256sums(std::string_view text) {
    std::vector<SumsEntry> out;
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
        if (auto e = parse_line(line)) out.push_back(std::move(*e));
    }
    return out;
}

std::optional<std::string> find_sha256(std::string_view sums_text, std::string_view file_name) {
    std::optional<std::string> found;
    for (auto& e : parse_sha256sums(sums_text)) {
        if (e.name != file_name) continue;
        if (found && *found != e.sha256)
            throw Error(fmt::format("SHA256SUMS lists {} twice with different checksums ({} and {})",
                                    file_name, *found, e.sha256));
        found = e.sha256;
    }
    return found;
}

}  // namespace aplspawn::image
