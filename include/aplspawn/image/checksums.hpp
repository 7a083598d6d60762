// SHA256SUMS, as mkosi and distributions publish it beside their images:
//   5dc1...1b1b  debian-bookworm-latest.img        (GNU, text mode)
//   5dc1...1b1b *debian-bookworm-latest.img.xz     (GNU, binary mode)
//   SHA256 (debian-bookworm-latest.img) = 5dc1...  (BSD tag style, `sha256sum --tag`)
// Blank lines, comments (#) and lines for other files or other formats are ignored.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::image {

struct SumsEntry {
    std::string sha256;  // lower-case hex
    std::string name;    // as listed, without a leading "./" or "*"
};

std::vector<SumsEntry> parse_sha256sums(std::string_view text);

// The checksum listed for file_name; nullopt when it is not listed. Throws Error when the file
// lists it twice with different checksums.
std::optional<std::string> find_sha256(std::string_view sums_text, std::string_view file_name);

}  // namespace aplspawn::image
