#include "aplspawn/image/decompress.hpp"

#include "aplspawn/error.hpp"

#include <fmt/format.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <memory>

namespace aplspawn::image {
namespace {

constexpr std::size_t kOutBlock = 1 << 20;

class XzDecompressor final : public Decompressor {
public:
    XzDecompressor() : buf_(std::make_unique_for_overwrite<unsigned char[]>(kOutBlock)) { init(); }
    ~XzDecompressor() override { lzma_end(&s_); }

    void feed(std::span<const unsigned char> in, const ByteSink& out) override {
        s_.next_in = in.data();
        s_.avail_in = in.size();
        while (s_.avail_in > 0) run(LZMA_RUN, out);
    }

    void finish(const ByteSink& out) override {
        s_.next_in = nullptr;
        s_.avail_in = 0;
        while (!run(LZMA_FINISH, out)) {
        }
    }

    void reset() override {
        lzma_end(&s_);
        s_ = LZMA_STREAM_INIT;
        bytes_out_ = 0;
        init();
    }

private:
    void init() {
        lzma_mt mt{};
        mt.flags = LZMA_CONCATENATED;
        mt.threads = std::max<std::uint32_t>(1, lzma_cputhreads());
        mt.timeout = 0;
        // Threads only while their buffers stay within a quarter of the memory; never refuse.
        mt.memlimit_threading = std::max<std::uint64_t>(lzma_physmem() / 4, 64ull << 20);
        mt.memlimit_stop = UINT64_MAX;
        if (lzma_stream_decoder_mt(&s_, &mt) != LZMA_OK &&
            lzma_stream_decoder(&s_, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
            throw Error("xz: cannot start the decoder (out of memory?)");
    }

    // One lzma_code step; true at the end of the stream.
    bool run(lzma_action action, const ByteSink& out) {
        s_.next_out = buf_.get();
        s_.avail_out = kOutBlock;
        lzma_ret r = lzma_code(&s_, action);
        emit(out, buf_.get(), kOutBlock - s_.avail_out);
        switch (r) {
        case LZMA_OK: return false;
        case LZMA_STREAM_END:
            if (action != LZMA_FINISH && s_.avail_in > 0)
                throw Error("xz: data after the end of the compressed stream");
            return true;
        case LZMA_BUF_ERROR:
            if (action == LZMA_FINISH) throw Error("xz: the compressed image ends early (truncated)");
            return false;
        case LZMA_FORMAT_ERROR: throw Error("xz: not xz data");
        case LZMA_DATA_ERROR: throw Error("xz: the compressed data is corrupt");
        case LZMA_MEM_ERROR: throw Error("xz: out of memory");
        default: throw Error(fmt::format("xz: decoder error {}", static_cast<int>(r)));
        }
    }

    lzma_stream s_ = LZMA_STREAM_INIT;
    std::unique_ptr<unsigned char[]> buf_;
};

class ZstdDecompressor final : public Decompressor {
public:
    ZstdDecompressor() : buf_(std::make_unique_for_overwrite<unsigned char[]>(kOutBlock)) {
        d_ = ZSTD_createDCtx();
        if (!d_) throw Error("zstd: out of memory");
        // Accept frames made with --long (windows up to 2 GiB).
        ZSTD_DCtx_setParameter(d_, ZSTD_d_windowLogMax, 31);
    }
    ~ZstdDecompressor() override { ZSTD_freeDCtx(d_); }

    void feed(std::span<const unsigned char> in, const ByteSink& out) override {
        if (in.empty()) return;  // (an empty call would start reading a next frame)
        ZSTD_inBuffer ib{in.data(), in.size(), 0};
        seen_input_ = true;
        while (true) {
            ZSTD_outBuffer ob{buf_.get(), kOutBlock, 0};
            std::size_t r = ZSTD_decompressStream(d_, &ob, &ib);
            if (ZSTD_isError(r)) throw Error(fmt::format("zstd: {}", ZSTD_getErrorName(r)));
            emit(out, buf_.get(), ob.pos);
            pending_ = r;
            // Done with this input once it is consumed and everything is flushed: the output
            // buffer was not filled, or the frame ended (another call would start on a next one).
            if (ib.pos == ib.size && (ob.pos < ob.size || r == 0)) break;
        }
    }

    void finish(const ByteSink&) override {
        // feed() flushed all output it could; 0 means the last frame is complete.
        if (!seen_input_ || pending_ != 0)
            throw Error("zstd: the compressed image ends early (truncated)");
    }

    void reset() override {
        ZSTD_DCtx_reset(d_, ZSTD_reset_session_only);
        pending_ = 0;
        seen_input_ = false;
        bytes_out_ = 0;
    }

private:
    ZSTD_DCtx* d_ = nullptr;
    std::size_t pending_ = 0;  // 0: at a frame boundary
    bool seen_input_ = false;
    std::unique_ptr<unsigned char[]> buf_;
};

class GzipDecompressor final : public Decompressor {
public:
    GzipDecompressor() : buf_(std::make_unique_for_overwrite<unsigned char[]>(kOutBlock)) { init(); }
    ~GzipDecompressor() override { inflateEnd(&z_); }

    void feed(std::span<const unsigned char> in, const ByteSink& out) override {
        // zlib counts in uInt: feed very large spans in pieces.
        while (!in.empty()) {
            std::size_t n = std::min<std::size_t>(in.size(), 1u << 30);
            feed_some(in.first(n), out);
            in = in.subspan(n);
        }
    }

    void finish(const ByteSink& out) override {
        feed_some({}, out);
        if (!ended_) throw Error("gzip: the compressed image ends early (truncated)");
    }

    void reset() override {
        inflateEnd(&z_);
        z_ = z_stream{};
        ended_ = false;
        bytes_out_ = 0;
        init();
    }

private:
    void init() {
        // 15 + 16: gzip framing only (the .gz suffix promised gzip).
        if (inflateInit2(&z_, 15 + 16) != Z_OK) throw Error("gzip: cannot start the decoder");
    }

    void feed_some(std::span<const unsigned char> in, const ByteSink& out) {
        z_.next_in = const_cast<Bytef*>(in.data());
        z_.avail_in = static_cast<uInt>(in.size());
        while (true) {
            if (ended_) {
                if (z_.avail_in == 0) return;
                // Another gzip member follows (gzip files may be concatenated).
                if (inflateReset(&z_) != Z_OK) throw Error("gzip: cannot restart the decoder");
                ended_ = false;
            }
            z_.next_out = buf_.get();
            z_.avail_out = kOutBlock;
            int r = inflate(&z_, Z_NO_FLUSH);
            emit(out, buf_.get(), kOutBlock - z_.avail_out);
            if (r == Z_STREAM_END) {
                ended_ = true;
                continue;
            }
            if (r == Z_BUF_ERROR) return;  // needs more input
            if (r != Z_OK)
                throw Error(fmt::format("gzip: the compressed data is corrupt ({})",
                                        z_.msg ? z_.msg : "inflate error"));
            if (z_.avail_in == 0 && z_.avail_out != 0) return;
        }
    }

    z_stream z_{};
    bool ended_ = false;
    std::unique_ptr<unsigned char[]> buf_;
};

}  // namespace

Compression compression_of(std::string_view name) {
    if (name.ends_with(".xz")) return Compression::xz;
    if (name.ends_with(".zst")) return Compression::zstd;
    if (name.ends_with(".gz")) return Compression::gzip;
    return Compression::none;
}

std::string_view compression_name(Compression c) {
    switch (c) {
    case Compression::none: return "none";
    case Compression::xz: return "xz";
    case Compression::zstd: return "zstd";
    case Compression::gzip: return "gzip";
    }
    return "none";
}

std::unique_ptr<Decompressor> Decompressor::create(Compression c) {
    switch (c) {
    case Compression::xz: return std::make_unique<XzDecompressor>();
    case Compression::zstd: return std::make_unique<ZstdDecompressor>();
    case Compression::gzip: return std::make_unique<GzipDecompressor>();
    case Compression::none: break;
    }
    throw Error("decompress: no compression to undo");
}

}  // namespace aplspawn::image
