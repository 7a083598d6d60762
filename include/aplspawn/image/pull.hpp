// getimage's decisions. precheck() finds out, without changing anything, what is published (the
// image's size and validators, its checksum from image.sha256 or SHA256SUMS), what the store
// holds, whether a partial download can be resumed and whether the store has room. pull() then
// downloads into the store's .partial/ (resuming, decompressing and hashing as bytes arrive),
// verifies, fsyncs and installs the new version (store.hpp), and prunes unused old ones.
#pragma once

#include "aplspawn/image/decompress.hpp"
#include "aplspawn/image/fetch.hpp"
#include "aplspawn/image/store.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace aplspawn::image {

namespace fs = std::filesystem;

struct PullRequest {
    std::string url;     // image.url
    std::string sha256;  // image.sha256 (pinned); "": SHA256SUMS beside the image, if any
    fs::path store;      // path.localStore
    std::string name;    // image.file_name: the name in the store
    FetchOptions fetch;
};

enum class ChecksumSource { pinned, sums_file, none };

struct Prechecks {
    PullRequest request;
    std::string published_name;  // the URL's file name, as SHA256SUMS lists it
    Compression compression = Compression::none;

    // The SHA-256 the published bytes must have ("" when none is available).
    std::string expected_sha256;
    ChecksumSource source = ChecksumSource::none;
    std::string sums_url;         // where SHA256SUMS was looked for
    std::string no_checksum_why;  // source none: why, for the warning line

    bool probed = false;  // false: the pinned checksum settled it without the network
    RemoteFile remote;

    std::optional<Version> current;
    std::string current_sha256;   // of the current version's bytes, when known
    bool up_to_date = false;
    std::string up_to_date_why;   // "sha256 5dc1… matches SHA256SUMS", "not modified", ...
    bool record_current = false;  // up to date, but the file at NAME is not recorded yet

    std::uint64_t resume_from = 0;  // bytes of an earlier partial download to continue from
    std::uint64_t free_bytes = 0;   // on the store's filesystem
    std::uint64_t needed_bytes = 0; // the rest of the download plus the margin
};

// Reads only (network and store). Throws Error naming the URL for an image that cannot be
// reached (404, refused, unknown host, ...) and naming the store, its free space and the image
// size when the store is too small.
Prechecks precheck(const PullRequest& request);

struct PullEvents {
    // A body begins at offset (0 again when the server restarts it); total when known.
    std::function<void(std::uint64_t offset, std::optional<std::uint64_t> total)> start;
    std::function<void(std::uint64_t position, std::optional<std::uint64_t> total)> progress;
};

struct PullResult {
    Version version;               // the new current version
    std::uint64_t size = 0;        // published bytes
    std::uint64_t received = 0;    // bytes received by this run
    std::uint64_t resumed_from = 0;
    bool restarted = false;        // the server sent the whole file instead of the rest
    std::string published_sha256;  // computed while downloading
    bool verified = false;         // it matched expected_sha256
    Store::Pruned pruned;
    std::chrono::duration<double> elapsed{};
};

// Downloads, verifies and installs the image as prechecked. On failure: a checksum mismatch, a
// corrupt compressed stream or running out of space (ENOSPC) removes the partial download; any
// other failure keeps it for the next run to resume (the message says which).
PullResult pull(const Prechecks& checks, const PullEvents& events = {});

// Records an up-to-date file found at NAME (record_current) as a version of the store.
Version record_current(const Prechecks& checks);

// The room a download of `size` bytes wants beyond its own size.
std::uint64_t space_margin(std::uint64_t size);
// "image.sha256", "SHA256SUMS (URL)" or "none".
std::string checksum_source_text(const Prechecks& checks);
// Whole mebibytes, rounded up: "148M" as the original printed sizes.
std::string mebibytes(std::uint64_t bytes);

}  // namespace aplspawn::image
