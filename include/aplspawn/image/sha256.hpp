// SHA-256 computed as bytes stream past (OpenSSL EVP), so a download is verified without a
// second pass over the file.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace aplspawn::image {

class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(Sha256&&) noexcept;
    Sha256& operator=(Sha256&&) noexcept;

    void update(std::span<const unsigned char> data);
    void update(std::string_view data);
    // The digest of everything so far, as 64 lower-case hex digits. Ends this hash: call
    // reset() before updating again.
    std::string hex();
    void reset();
    std::uint64_t bytes() const { return bytes_; }

private:
    struct Ctx;
    std::unique_ptr<Ctx> ctx_;
    std::uint64_t bytes_ = 0;
};

// One-shot helpers.
std::string sha256_hex(std::string_view data);
// Whether s is 64 hex digits (either case).
bool is_sha256_hex(std::string_view s);

}  // namespace aplspawn::image
