// Streaming decompression of xz, zstd and gzip, fed in awkward pieces; truncated and corrupt
// streams are errors; the block pipeline keeps order and reports a worker's error.
#include "aplspawn/error.hpp"
#include "aplspawn/image/decompress.hpp"
#include "image/pipeline.hpp"

#include <catch2/catch.hpp>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <vector>

using namespace aplspawn;
using namespace aplspawn::image;

namespace {

using Bytes = std::vector<unsigned char>;

Bytes sample(std::size_t n) {
    // Compressible but not trivial: runs of words with random noise.
    std::mt19937 rng(42);
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = (i / 512) % 3 == 0 ? static_cast<unsigned char>(rng()) : static_cast<unsigned char>("aplspawn"[i % 8]);
    return b;
}

Bytes xz(const Bytes& in) {
    Bytes out(lzma_stream_buffer_bound(in.size()));
    std::size_t pos = 0;
    REQUIRE(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC64, nullptr, in.data(), in.size(), out.data(), &pos,
                                    out.size()) == LZMA_OK);
    out.resize(pos);
    return out;
}

Bytes zst(const Bytes& in) {
    Bytes out(ZSTD_compressBound(in.size()));
    std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    REQUIRE_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

Bytes gz(const Bytes& in) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&z, static_cast<uLong>(in.size())) + 64);
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

Bytes compress(Compression c, const Bytes& in) {
    switch (c) {
    case Compression::xz: return xz(in);
    case Compression::zstd: return zst(in);
    case Compression::gzip: return gz(in);
    default: return in;
    }
}

// Feeds `in` in pieces of varying size (1 byte up to ~100 KiB) and collects the output.
Bytes run(Decompressor& d, const Bytes& in, bool finish = true) {
    Bytes out;
    ByteSink sink = [&](std::span<const unsigned char> b) { out.insert(out.end(), b.begin(), b.end()); };
    std::size_t at = 0, step = 1;
    while (at < in.size()) {
        std::size_t n = std::min(in.size() - at, step);
        d.feed({in.data() + at, n}, sink);
        at += n;
        step = step * 7 % 100003 + 1;
    }
    if (finish) d.finish(sink);
    return out;
}

}  // namespace

TEST_CASE("compression is chosen by the published name's suffix", "[image]") {
    CHECK(compression_of("x.img.xz") == Compression::xz);
    CHECK(compression_of("x.img.zst") == Compression::zstd);
    CHECK(compression_of("x.img.gz") == Compression::gzip);
    CHECK(compression_of("x.img") == Compression::none);
    CHECK(compression_of("x.xzimg") == Compression::none);
    CHECK_THROWS(Decompressor::create(Compression::none));
}

TEST_CASE("xz, zstd and gzip streams decompress while fed in pieces", "[image]") {
    const Bytes original = sample(3u << 20);
    for (Compression c : {Compression::xz, Compression::zstd, Compression::gzip}) {
        INFO(compression_name(c));
        Bytes packed = compress(c, original);
        CHECK(packed.size() < original.size());
        auto d = Decompressor::create(c);
        CHECK(run(*d, packed) == original);
        CHECK(d->bytes_out() == original.size());
        // Reset: ready for a new stream from its first byte.
        d->reset();
        CHECK(run(*d, packed) == original);
    }
}

TEST_CASE("a whole stream fed at once, its output a multiple of the decoder's block", "[image]") {
    // As a download's 4 MiB pipeline blocks hand it over: the frame ends exactly when the
    // decoder's 1 MiB output buffer is full, with no input left.
    const Bytes original = sample(3u << 20);
    for (Compression c : {Compression::xz, Compression::zstd, Compression::gzip}) {
        INFO(compression_name(c));
        Bytes packed = compress(c, original);
        auto d = Decompressor::create(c);
        Bytes out;
        ByteSink sink = [&](std::span<const unsigned char> b) { out.insert(out.end(), b.begin(), b.end()); };
        d->feed(packed, sink);
        d->finish(sink);
        CHECK(out == original);
    }
}

TEST_CASE("concatenated streams decompress to the concatenation", "[image]") {
    const Bytes a = sample(100000), b = Bytes(70000, 'z');
    for (Compression c : {Compression::xz, Compression::zstd, Compression::gzip}) {
        INFO(compression_name(c));
        Bytes packed = compress(c, a), second = compress(c, b);
        packed.insert(packed.end(), second.begin(), second.end());
        Bytes expect = a;
        expect.insert(expect.end(), b.begin(), b.end());
        auto d = Decompressor::create(c);
        CHECK(run(*d, packed) == expect);
    }
}

TEST_CASE("a truncated or corrupt compressed image is an error", "[image]") {
    const Bytes original = sample(1u << 20);
    for (Compression c : {Compression::xz, Compression::zstd, Compression::gzip}) {
        INFO(compression_name(c));
        Bytes packed = compress(c, original);
        Bytes truncated(packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(packed.size() / 2));
        auto d = Decompressor::create(c);
        CHECK_THROWS_WITH(run(*d, truncated), Catch::Contains("truncated") || Catch::Contains("corrupt"));
        // Not compressed at all (an HTML error page, say).
        auto d2 = Decompressor::create(c);
        Bytes html(4096, '<');
        CHECK_THROWS_AS(run(*d2, html), Error);
        // Nothing at all.
        auto d3 = Decompressor::create(c);
        CHECK_THROWS_AS(run(*d3, {}), Error);
    }
}

TEST_CASE("the block pipeline consumes every byte in order on its worker", "[image]") {
    Bytes seen;
    std::thread::id worker;
    {
        BlockPipeline p([&](std::span<const unsigned char> b) {
            worker = std::this_thread::get_id();
            seen.insert(seen.end(), b.begin(), b.end());
        }, 1000, 3);
        Bytes data = sample(123457);
        std::size_t at = 0, step = 1;
        while (at < data.size()) {
            std::size_t n = std::min(data.size() - at, step);
            p.push({data.data() + at, n});
            at += n;
            step = step * 3 % 4001 + 1;
        }
        p.drain();
        CHECK(seen == data);
        CHECK(worker != std::this_thread::get_id());
    }
}

TEST_CASE("every consumer of the block pipeline sees every byte in order, on its own thread", "[image]") {
    Bytes fast_seen, slow_seen;
    std::thread::id fast_thread, slow_thread;
    std::atomic<bool> changed_under_reader = false;  // (Catch2 assertions stay on this thread)
    {
        BlockPipeline p({[&](std::span<const unsigned char> b) {
                             fast_thread = std::this_thread::get_id();
                             fast_seen.insert(fast_seen.end(), b.begin(), b.end());
                         },
                         [&](std::span<const unsigned char> b) {
                             slow_thread = std::this_thread::get_id();
                             // Slower than the other: a block must not be refilled while this
                             // consumer still reads it.
                             Bytes copy(b.begin(), b.end());
                             std::this_thread::sleep_for(std::chrono::microseconds(200));
                             if (!std::equal(copy.begin(), copy.end(), b.begin())) changed_under_reader = true;
                             slow_seen.insert(slow_seen.end(), b.begin(), b.end());
                         }},
                        1000, 3);
        Bytes data = sample(200000);
        std::size_t at = 0, step = 1;
        while (at < data.size()) {
            std::size_t n = std::min(data.size() - at, step);
            p.push({data.data() + at, n});
            at += n;
            step = step * 5 % 3001 + 1;
        }
        p.drain();
        CHECK(fast_seen == data);
        CHECK(slow_seen == data);
        CHECK_FALSE(changed_under_reader);
        CHECK(fast_thread != slow_thread);
        CHECK(fast_thread != std::this_thread::get_id());
        CHECK(slow_thread != std::this_thread::get_id());
    }
}

TEST_CASE("one consumer failing stops the others and reaches the pushing thread once", "[image]") {
    std::atomic<std::size_t> written = 0, hashed = 0;
    BlockPipeline p({[&](std::span<const unsigned char> b) {
                         written += b.size();
                         if (written > 5000) throw Error("write /x: No space left on device", Exit::failed, ENOSPC);
                     },
                     [&](std::span<const unsigned char> b) { hashed += b.size(); }},
                    1000, 2);
    Bytes block(1000, 1);
    try {
        for (int i = 0; i < 100; ++i) p.push(block);
        p.drain();
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.sys_errno() == ENOSPC);
    }
    CHECK(written <= 7000);
    CHECK(hashed <= 9000);
    // Later calls fail too (the download is over), without the original error.
    CHECK_THROWS_WITH(p.drain(), Catch::Contains("stopped after an earlier error"));
}

TEST_CASE("an error on the pipeline's worker comes back to the pushing thread", "[image]") {
    std::size_t consumed = 0;
    BlockPipeline p([&](std::span<const unsigned char> b) {
        consumed += b.size();
        if (consumed > 5000) throw Error("write /x: No space left on device", Exit::failed, ENOSPC);
    }, 1000, 2);
    Bytes block(1000, 1);
    auto push_all = [&] {
        for (int i = 0; i < 100; ++i) p.push(block);
        p.drain();
    };
    try {
        push_all();
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.sys_errno() == ENOSPC);
    }
    CHECK(consumed <= 7000);
}
