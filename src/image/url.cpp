#include "aplspawn/image/url.hpp"
#include "aplspawn/text.hpp"

namespace aplspawn::image {
namespace {

// The URL without query and fragment.
std::string_view strip_query(std::string_view url) {
    auto scheme_end = url.find("://");
    std::size_t from = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    auto q = url.find_first_of("?#", from);
    return q == std::string_view::npos ? url : url.substr(0, q);
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string url_scheme(std::string_view url) {
    auto end = url.find("://");
    if (end == std::string_view::npos) return "";
    return text::ascii_lower(url.substr(0, end));
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

std::string url_file_name(std::string_view url) {
    std::string_view u = strip_query(url);
    auto scheme_end = u.find("://");
    std::string_view path = scheme_end == std::string_view::npos ? u : u.substr(scheme_end + 3);
    return percent_decode(path.substr(path.find_last_of('/') + 1));
}

std::string sibling_url(std::string_view url, std::string_view name) {
    std::string_view u = strip_query(url);
    auto scheme_end = u.find("://");
    std::size_t min = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    auto slash = u.find_last_of('/');
    if (slash == std::string_view::npos || slash < min) return std::string(u) + "/" + std::string(name);
    return std::string(u.substr(0, slash + 1)) + std::string(name);
}

std::string file_url(std::string_view path) {
    std::string out = "file://";
    for (unsigned char ch : path) {
        if (ch == '%' || ch == '#' || ch == '?' || ch <= 0x20 || ch == 0x7f) {
            static constexpr char kHex[] = "0123456789ABCDEF";
            out += '%';
            out += kHex[ch >> 4];
            out += kHex[ch & 15];
        } else {
            out += static_cast<char>(ch);
        }
    }
    return out;
}

std::string file_url_path(std::string_view url) {
    std::string_view u = strip_query(url);
    auto scheme_end = u.find("://");
    std::string_view rest = scheme_end == std::string_view::npos ? u : u.substr(scheme_end + 3);
    // file://HOST/path: only an empty host or "localhost" names this machine.
    if (!rest.starts_with('/')) {
        auto slash = rest.find('/');
        rest = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    }
    return percent_decode(rest);
}

}  // namespace aplspawn::image
