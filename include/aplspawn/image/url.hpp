// The parts of an image URL that getimage needs: its scheme, the file name it publishes and
// the address of a file beside it (SHA256SUMS). Pure string work, no network.
#pragma once

#include <string>
#include <string_view>

namespace aplspawn::image {

// "http", "https", "file" (lower case); "" when the text has no "://".
std::string url_scheme(std::string_view url);
// The last path segment, percent-decoded, without query or fragment:
// "http://h/a/debian%2Bx.img.xz?x=1" -> "debian+x.img.xz".
std::string url_file_name(std::string_view url);
// The URL of `name` in the same directory: ("http://h/a/b.img?x", "SHA256SUMS") ->
// "http://h/a/SHA256SUMS".
std::string sibling_url(std::string_view url, std::string_view name);
// Decodes %XX escapes; malformed escapes are kept as they are.
std::string percent_decode(std::string_view s);
// A local path as a file:// URL: '%', '#', '?', blanks and control characters percent-encoded,
// so that file_url_path gives the path back ("/a b#c" -> "file:///a%20b%23c").
std::string file_url(std::string_view path);
// For file:// URLs: the local path ("file:///var/x.img" -> "/var/x.img"), decoded.
std::string file_url_path(std::string_view url);

}  // namespace aplspawn::image
