// Password hashes for /etc/shadow: yescrypt ("$y$", libxcrypt), the Debian 11+ default. The plain
// text never leaves these functions: it is not logged, not put in an error message, not passed
// to a program; the hashing scratch buffers are zeroed after use.
#pragma once

#include <string>
#include <string_view>

namespace aplspawn::fleet::password {

// A new yescrypt hash of plain with a random salt. Throws Error (without the password) when
// libxcrypt fails.
std::string hash(std::string_view plain);

// Whether hash (any method libxcrypt knows: yescrypt, sha512, ...) is a hash of plain. False for
// locked or empty fields ("!", "*", "").
bool matches(std::string_view plain, std::string_view hash);

}  // namespace aplspawn::fleet::password
