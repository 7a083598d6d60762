#include "aplspawn/image/sha256.hpp"

#include "aplspawn/error.hpp"

#include <openssl/evp.h>

namespace aplspawn::image {

struct Sha256::Ctx {
    EVP_MD_CTX* md = nullptr;
    ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
    ctx_->md = EVP_MD_CTX_new();
    if (!ctx_->md) throw Error("sha256: out of memory");
    reset();
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::reset() {
    if (EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) throw Error("sha256: init failed");
    bytes_ = 0;
}

void Sha256::update(std::span<const unsigned char> data) {
    if (data.empty()) return;
    if (EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) throw Error("sha256: update failed");
    bytes_ += data.size();
}

void Sha256::update(std::string_view data) {
    update({reinterpret_cast<const unsigned char*>(data.data()), data.size()});
}

std::string Sha256::hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_->md, digest, &len) != 1) throw Error("sha256: final failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned int i = 0; i < len; ++i) {
        out += kHex[digest[i] >> 4];
        out += kHex[digest[i] & 0xf];
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    Sha256 h;
    h.update(data);
    return h.hex();
}

bool is_sha256_hex(std::string_view s) {
    return s.size() == 64 && s.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

}  // namespace aplspawn::image
