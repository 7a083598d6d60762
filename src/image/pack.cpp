#include "aplspawn/image/pack.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/process.hpp"
#include "aplspawn/sys/programs.hpp"
#include "aplspawn/sys/stream_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace aplspawn::image {
namespace {

constexpr std::uint64_t kMiB = 1u << 20;
constexpr std::string_view kRootType = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";  // DPS root x86-64

std::uint64_t size_of(const fs::path& p) {
    struct stat st;
    if (::stat(p.c_str(), &st) < 0) throw_errno(fmt::format("stat {}", p.string()));
    return static_cast<std::uint64_t>(st.st_size);
}

}  // namespace

PackedImage pack_root(const fs::path& root, const fs::path& out) {
    sys::require_program("mksquashfs");
    sys::require_program("sfdisk");
    std::error_code ec;
    fs::remove(out, ec);
    // The filesystem at 1 MiB of the image file (-o), as the default image's recipe lays it out.
    // zstd level 3, not the recipe's 15: on the default image's root (2 cores, loaded) 1.2 s
    // against 26 s, for 58 MB against 50 MB (docs/snapshots.md).
    sys::RunOptions o;
    o.timeout = std::chrono::hours(2);
    auto r = sys::run({"mksquashfs", root.string(), out.string(), "-o", std::to_string(kMiB), "-comp",
                       "zstd", "-Xcompression-level", "3", "-b", "128K", "-noappend", "-no-progress",
                       "-quiet"},
                      o);
    if (!r.ok()) {
        std::string why = r.err.empty() ? r.out : r.err;
        while (!why.empty() && why.back() == '\n') why.pop_back();
        if (auto nl = why.rfind('\n'); nl != std::string::npos) why.erase(0, nl + 1);
        throw Error(fmt::format("mksquashfs {} into {} failed ({}){}", root.string(), out.string(),
                                r.describe(), why.empty() ? "" : ": " + why));
    }
    PackedImage p;
    p.file = out;
    p.filesystem_bytes = size_of(out) - kMiB;
    const std::uint64_t part_bytes = (p.filesystem_bytes + kMiB - 1) / kMiB * kMiB;
    p.size = part_bytes + 2 * kMiB;  // 1 MiB before it, 1 MiB after for the backup GPT
    {
        sys::UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd) throw_errno(fmt::format("open {}", out.string()));
        if (::ftruncate(fd.get(), static_cast<off_t>(p.size)) < 0)
            throw_errno(fmt::format("extend {} to {} bytes", out.string(), p.size));
    }
    sys::RunOptions table;
    table.input = fmt::format(
        "label: gpt\nunit: sectors\nsector-size: 512\n"
        "start=2048, size={}, type={}, name=\"root-x86-64\"\n",
        part_bytes / 512, kRootType);
    table.timeout = std::chrono::seconds(60);
    sys::run_checked({"sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", out.string()}, table);
    {
        sys::UniqueFd fd(::open(out.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd || ::fsync(fd.get()) < 0) throw_errno(fmt::format("sync {}", out.string()));
    }
    Sha256 h;
    sys::read_blocks(out, p.size, 4 * kMiB, [&](std::span<const unsigned char> b) { h.update(b); });
    p.sha256 = h.hex();
    return p;
}

}  // namespace aplspawn::image
