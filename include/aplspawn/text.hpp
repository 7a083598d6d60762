// Two small text rules the modules share: ASCII lowercase (URL schemes, hex digests, HTTP header
// names, partition type GUIDs) and trimming the blanks around a line of a file we parse.
#pragma once

#include <string>
#include <string_view>

namespace aplspawn::text {

// `s` with A-Z turned into a-z; every other byte as it is.
std::string ascii_lower(std::string_view s);

// `s` without leading spaces and tabs, and without trailing spaces, tabs and carriage returns
// (a line of a file that may have been written on Windows).
std::string_view trim_blanks(std::string_view s);

}  // namespace aplspawn::text
