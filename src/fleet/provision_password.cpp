#include "fleet/provision_password.hpp"

#include "aplspawn/error.hpp"

#include <crypt.h>
#include <string.h>

#include <cerrno>
#include <memory>

namespace aplspawn::fleet::password {
namespace {

// crypt_data is ~32 KiB: on the heap, and wiped when done (it holds the phrase).
struct Scratch {
    std::unique_ptr<crypt_data> data = std::make_unique<crypt_data>();
    Scratch() { ::explicit_bzero(data.get(), sizeof(crypt_data)); }
    ~Scratch() { ::explicit_bzero(data.get(), sizeof(crypt_data)); }
};

}  // namespace

std::string hash(std::string_view plain) {
    if (plain.find('\0') != std::string_view::npos)
        throw Error("hash password: it contains a NUL byte");
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    // count 0: the method's default cost; rbytes nullptr: libxcrypt reads getrandom itself.
    if (!::crypt_gensalt_rn("$y$", 0, nullptr, 0, salt, sizeof salt))
        throw Error::from_errno("hash password: crypt_gensalt_rn($y$)", errno);
    Scratch s;
    std::string phrase(plain);
    const char* out = ::crypt_rn(phrase.c_str(), salt, s.data.get(), sizeof(crypt_data));
    ::explicit_bzero(phrase.data(), phrase.size());
    if (!out || out[0] == '*') throw Error::from_errno("hash password: crypt_rn(yescrypt)", errno);
    return out;
}

bool matches(std::string_view plain, std::string_view hash) {
    if (hash.empty() || hash[0] != '$' || plain.find('\0') != std::string_view::npos) return false;
    Scratch s;
    std::string phrase(plain), setting(hash);
    const char* out = ::crypt_rn(phrase.c_str(), setting.c_str(), s.data.get(), sizeof(crypt_data));
    ::explicit_bzero(phrase.data(), phrase.size());
    return out && out[0] != '*' && hash == out;
}

}  // namespace aplspawn::fleet::password
