#include "aplspawn/image/url.hpp"

#include "aplspawn/error.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>

namespace aplspawn::image {
namespace {

// libcurl's URL API (curl_url): the URL parsed by the library that fetches it, so what aplspawn
// derives from a URL is what libcurl will request.
struct UrlCleanup {
    void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlFree {
    void operator()(char* s) const { curl_free(s); }
};
using Url = std::unique_ptr<CURLU, UrlCleanup>;
using CurlString = std::unique_ptr<char, CurlFree>;

// nullptr when libcurl does not take it as a URL.
Url parse(std::string_view text, unsigned flags = 0) {
    Url u(curl_url());
    if (!u) throw Error("libcurl: cannot create a URL handle (out of memory?)");
    std::string s(text);
    if (curl_url_set(u.get(), CURLUPART_URL, s.c_str(), flags | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
        return nullptr;
    return u;
}

Url parse_or_throw(std::string_view text) {
    Url u = parse(text);
    if (!u) throw Error(fmt::format("{}: not a URL libcurl can use", text));
    return u;
}

std::string part(const Url& u, CURLUPart which, unsigned flags = 0) {
    char* out = nullptr;
    if (curl_url_get(u.get(), which, &out, flags) != CURLUE_OK) return "";
    CurlString owned(out);
    return owned ? std::string(owned.get()) : std::string();
}

}  // namespace

std::string url_scheme(std::string_view url) {
    Url u = parse(url);
    return u ? part(u, CURLUPART_SCHEME) : std::string();  // libcurl gives it in lower case
}

std::string percent_decode(std::string_view s) {
    int n = 0;
    CurlString out(curl_easy_unescape(nullptr, s.data(), static_cast<int>(s.size()), &n));
    if (!out) throw Error("libcurl: out of memory");
    return std::string(out.get(), static_cast<std::size_t>(n));
}

std::string url_file_name(std::string_view url) {
    Url u = parse_or_throw(url);
    std::string path = part(u, CURLUPART_PATH);  // still encoded: an encoded '/' stays in its segment
    return percent_decode(std::string_view(path).substr(path.find_last_of('/') + 1));
}

std::string sibling_url(std::string_view url, std::string_view name) {
    Url u = parse_or_throw(url);
    // A relative reference resolved against the URL (RFC 3986): same directory, no query.
    std::string rel(name);
    if (curl_url_set(u.get(), CURLUPART_URL, rel.c_str(), CURLU_URLENCODE) != CURLUE_OK)
        throw Error(fmt::format("{}: cannot resolve {} beside it", url, name));
    return part(u, CURLUPART_URL);
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
    Url u = parse_or_throw(url);
    return part(u, CURLUPART_PATH, CURLU_URLDECODE);
}

}  // namespace aplspawn::image
