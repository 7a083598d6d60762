// Streaming decompression of .xz, .zst and .gz images while they download (as machinectl
// pull-raw does): compressed bytes go in as they arrive, the image comes out in blocks. A stream
// that is corrupt or ends early is an Error.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

namespace aplspawn::image {

enum class Compression { none, xz, zstd, gzip };

// By the published file name's suffix: .xz, .zst, .gz; anything else: none.
Compression compression_of(std::string_view file_name);
// "none", "xz", "zstd", "gzip".
std::string_view compression_name(Compression c);

using ByteSink = std::function<void(std::span<const unsigned char>)>;

class Decompressor {
public:
    // Throws for Compression::none (there is nothing to decompress).
    static std::unique_ptr<Decompressor> create(Compression c);
    virtual ~Decompressor() = default;

    // Decompresses `in`, handing every block it produces to `out` (zero or more calls).
    virtual void feed(std::span<const unsigned char> in, const ByteSink& out) = 0;
    // The input has ended: flushes the rest; throws Error when the stream is incomplete.
    virtual void finish(const ByteSink& out) = 0;
    // Forgets everything: ready for a new stream from its first byte.
    virtual void reset() = 0;

    std::uint64_t bytes_out() const { return bytes_out_; }

protected:
    void emit(const ByteSink& out, const unsigned char* data, std::size_t n) {
        if (n == 0) return;
        bytes_out_ += n;
        out({data, n});
    }
    std::uint64_t bytes_out_ = 0;
};

}  // namespace aplspawn::image
