#include "aplspawn/image/pull.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/image/checksums.hpp"
#include "aplspawn/image/sha256.hpp"
#include "aplspawn/image/url.hpp"
#include "aplspawn/sys/fs.hpp"
#include "aplspawn/sys/lock.hpp"
#include "aplspawn/sys/stream_file.hpp"
#include "aplspawn/text.hpp"
#include "image/pipeline.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>

namespace aplspawn::image {
namespace {

constexpr std::size_t kMaxSumsBytes = 4u << 20;
constexpr std::size_t kReadBlock = 4u << 20;

std::string short_hash(std::string_view h) { return std::string(h.substr(0, 16)) + "…"; }

std::uint64_t stored_size(const fs::path& p) {
    struct stat st;
    if (::stat(p.c_str(), &st) < 0) throw_errno(fmt::format("stat {}", p.string()));
    return static_cast<std::uint64_t>(st.st_size);
}

std::string hash_file(const fs::path& path) {
    Sha256 h;
    sys::read_blocks(path, stored_size(path), kReadBlock, [&](std::span<const unsigned char> b) { h.update(b); });
    return h.hex();
}

// Throws when the store's filesystem has less than `needed` bytes available.
void check_space(const Store& store, std::uint64_t remaining, std::uint64_t size, std::uint64_t free) {
    std::uint64_t margin = space_margin(size);
    if (free >= remaining + margin) return;
    throw Error(fmt::format(
        "no space in {} for image {}: {} free, the download needs {} ({} plus a margin of {})",
        store.dir().string(), store.name(), mebibytes(free), mebibytes(remaining + margin),
        mebibytes(remaining), mebibytes(margin)));
}

// The download's receiving end: the receiving thread only copies the published bytes into the
// pipeline; one of its threads writes them to .partial/NAME.part, another puts them through the
// SHA-256 (both beside the network). A compressed image is also decompressed on the hashing
// thread into .partial/NAME.unpack and hashed again, to name its version.
class Download final : public BodySink {
public:
    Download(const Store& store, const Prechecks& p, const PullEvents& ev)
        : store_(store), p_(p), ev_(ev), total_(p.remote.size) {
        if (p.compression != Compression::none) dec_ = Decompressor::create(p.compression);
        unpacked_ = [this](std::span<const unsigned char> b) {
            content_hash_.update(b);
            unpack_.write(b);
        };
        pipe_ = std::make_unique<BlockPipeline>(std::vector<BlockPipeline::Consumer>{
            [this](std::span<const unsigned char> b) { raw_.write(b); },
            [this](std::span<const unsigned char> b) {
                raw_hash_.update(b);
                decompress(b);
            }});
    }

    // Opens the partial download: continues one that precheck found resumable (hashing its bytes
    // once, from disk), else starts a new one.
    void open() {
        sys::ensure_dir(store_.partial_dir());
        std::uint64_t keep = p_.resume_from;
        if (keep > 0) {
            auto part = store_.partial();
            if (!part || part->size < keep) keep = 0;
        }
        if (keep > 0) {
            raw_ = sys::OutputFile::append(store_.partial_path());
            if (raw_.size() != keep) raw_.truncate(keep);
            if (dec_) unpack_ = sys::OutputFile::create(store_.unpack_path());
            // The bytes already there are hashed (and decompressed) once, here: nothing to write.
            sys::read_blocks(store_.partial_path(), keep, kReadBlock, [&](std::span<const unsigned char> b) {
                raw_hash_.update(b);
                decompress(b);
            });
            position_ = keep;
            resumed_from_ = keep;
        } else {
            store_.remove_partial();
            raw_ = sys::OutputFile::create(store_.partial_path());
            if (dec_) unpack_ = sys::OutputFile::create(store_.unpack_path());
            store_.write_partial_info({p_.request.url, p_.remote.validators, p_.remote.size,
                                       std::string(compression_name(p_.compression))});
        }
    }

    void begin(std::uint64_t offset, std::optional<std::uint64_t> total) override {
        if (offset != position_) {
            if (offset != 0)
                throw Error(fmt::format("download {}: the body starts at byte {}, expected {}",
                                        p_.request.url, offset, position_));
            restart();
        }
        if (total) {
            if (offset > 0 && total_ && *total != *total_) {
                discard_ = true;
                throw Error(fmt::format("download {}: the image changed on the server while it "
                                        "was downloaded ({} bytes, now {}); run getimage again",
                                        p_.request.url, *total_, *total));
            }
            total_ = total;
            check_space(store_, *total - offset, *total, sys::free_space(store_.dir()));
        }
        if (ev_.start) ev_.start(offset, total_);
    }

    void write(std::span<const unsigned char> data) override {
        pipe_->push(data);
        position_ += data.size();
        if (ev_.progress) ev_.progress(position_, total_);
    }

    struct Done {
        fs::path file;          // what to install
        std::uint64_t size = 0;
        std::string published;  // SHA-256 of the published bytes
        std::string stored;     // SHA-256 of the stored bytes
    };

    // The body is complete: checks it, syncs the file to install and closes everything.
    Done finish() {
        pipe_->drain();
        if (dec_) {
            try {
                dec_->finish(unpacked_);
            } catch (Error& e) {
                discard_ = true;
                throw std::move(e).wrap(fmt::format("decompress {}", p_.request.url));
            }
        }
        Done d;
        d.published = raw_hash_.hex();
        if (total_ && position_ != *total_)
            throw Error(fmt::format("download {}: the body ended after {} of {} bytes",
                                    p_.request.url, position_, *total_));
        if (!p_.expected_sha256.empty() && d.published != p_.expected_sha256) {
            discard_ = true;
            throw Error(fmt::format(
                "checksum mismatch for {}: expected sha256 {} ({}), got {}; the download was removed",
                p_.request.url, p_.expected_sha256, checksum_source_text(p_), d.published));
        }
        sys::OutputFile& out = dec_ ? unpack_ : raw_;
        out.sync();
        d.file = out.path();
        d.size = out.size();
        d.stored = dec_ ? content_hash_.hex() : d.published;
        raw_.close();
        if (dec_) unpack_.close();
        return d;
    }

    // After a failure: lets what was received reach the file (unless the pipeline itself
    // failed), stops the pipeline's threads and closes the files (their content stays for
    // remove or resume).
    void abandon() {
        try {
            pipe_->drain();
        } catch (...) {
        }
        pipe_.reset();  // stops the threads before their files close
        try {
            if (raw_.is_open()) raw_.close();
            if (unpack_.is_open()) unpack_.close();
        } catch (const Error&) {
        }
    }

    bool discard() const { return discard_; }
    bool restarted() const { return restarted_; }
    std::uint64_t position() const { return position_; }
    // Bytes in .partial/NAME.part (after abandon(): what a next run can resume from).
    std::uint64_t kept() const { return raw_.size(); }
    std::uint64_t resumed_from() const { return resumed_from_; }
    std::optional<std::uint64_t> total() const { return total_; }

private:
    void decompress(std::span<const unsigned char> data) {
        if (!dec_) return;
        try {
            dec_->feed(data, unpacked_);
        } catch (Error& e) {
            if (e.sys_errno() == 0) discard_ = true;  // the data is bad, not the disk
            throw std::move(e).wrap(fmt::format("decompress {}", p_.request.url));
        }
    }

    // The server sent the whole file: forget what we had.
    void restart() {
        pipe_->drain();
        raw_.truncate(0);
        raw_hash_.reset();
        if (dec_) {
            dec_->reset();
            unpack_.truncate(0);
            content_hash_.reset();
        }
        position_ = 0;
        restarted_ = true;
    }

    const Store& store_;
    const Prechecks& p_;
    const PullEvents& ev_;
    std::optional<std::uint64_t> total_;
    std::unique_ptr<Decompressor> dec_;
    ByteSink unpacked_;
    sys::OutputFile raw_, unpack_;
    Sha256 raw_hash_, content_hash_;
    std::uint64_t position_ = 0;
    std::uint64_t resumed_from_ = 0;
    std::atomic<bool> discard_ = false;  // set by the worker too
    bool restarted_ = false;
    std::unique_ptr<BlockPipeline> pipe_;  // last: stopped before everything it uses goes
};

sys::DirLock lock_store(const Store& store) {
    return with_context(fmt::format("lock image store {}", store.dir().string()),
                        [&] { return sys::DirLock::acquire(store.partial_dir(), "getimage"); });
}

}  // namespace

std::uint64_t space_margin(std::uint64_t size) { return std::max<std::uint64_t>(16ull << 20, size / 100); }

std::string mebibytes(std::uint64_t bytes) {
    return fmt::format("{}M", (bytes + (1ull << 20) - 1) >> 20);
}

std::string checksum_source_text(const Prechecks& p) {
    switch (p.source) {
    case ChecksumSource::pinned: return "image.sha256";
    case ChecksumSource::sums_file: return fmt::format("SHA256SUMS {}", p.sums_url);
    case ChecksumSource::none: return "none";
    }
    return "none";
}

Prechecks precheck(const PullRequest& req) {
    Prechecks p;
    p.request = req;
    p.published_name = url_file_name(req.url);
    p.compression = compression_of(p.published_name);
    Store store(req.store, req.name);
    p.current = store.current();
    const VersionInfo* cur = p.current && p.current->info ? &*p.current->info : nullptr;
    if (cur) p.current_sha256 = cur->sha256;

    auto finish_up_to_date = [&](std::string why) {
        p.up_to_date = true;
        p.up_to_date_why = std::move(why);
        p.free_bytes = sys::free_space(req.store);
        return p;
    };

    if (!req.sha256.empty()) {
        p.expected_sha256 = text::ascii_lower(req.sha256);
        p.source = ChecksumSource::pinned;
        // Pinned and already stored: nothing to ask the network.
        if (cur && cur->published_sha256 == p.expected_sha256)
            return finish_up_to_date(
                fmt::format("sha256 {} matches image.sha256", short_hash(p.expected_sha256)));
    }

    // The image itself first, so that an unreachable image is reported by its own URL. Without
    // a pinned checksum, ask conditionally: "not modified" settles it when no SHA256SUMS exists.
    Validators if_changed;
    if (p.source == ChecksumSource::none && cur && cur->url == req.url) if_changed = cur->validators;
    p.remote = probe(req.url, if_changed, req.fetch);
    p.probed = true;

    if (p.source == ChecksumSource::none) {
        p.sums_url = sibling_url(req.url, "SHA256SUMS");
        auto sums = fetch_text(p.sums_url, kMaxSumsBytes, req.fetch);
        if (!sums) {
            p.no_checksum_why = fmt::format("no image.sha256 in the config and no SHA256SUMS at {}", p.sums_url);
        } else if (auto h = with_context(p.sums_url, [&] { return find_sha256(*sums, p.published_name); })) {
            p.expected_sha256 = *h;
            p.source = ChecksumSource::sums_file;
        } else {
            p.no_checksum_why = fmt::format("{} does not list {}", p.sums_url, p.published_name);
        }
    }

    if (p.source != ChecksumSource::none) {
        std::string from = p.source == ChecksumSource::pinned ? "image.sha256" : "SHA256SUMS";
        if (cur && cur->published_sha256 == p.expected_sha256)
            return finish_up_to_date(fmt::format("sha256 {} matches {}", short_hash(p.expected_sha256), from));
        if (p.current && !cur && p.compression == Compression::none &&
            p.current->path == store.current_path()) {
            // A file aplspawn did not record (copied in by hand, or an older aplspawn): its own
            // checksum decides.
            std::string local = hash_file(p.current->path);
            if (local == p.expected_sha256) {
                p.record_current = true;
                p.current_sha256 = local;
                return finish_up_to_date(fmt::format("sha256 {} matches {}", short_hash(local), from));
            }
        }
    } else if (cur && cur->url == req.url) {
        if (p.remote.not_modified) return finish_up_to_date("the server says it is not modified");
        if (!cur->validators.empty() && cur->validators == p.remote.validators)
            return finish_up_to_date("unchanged on the server since it was stored");
    }

    // To be downloaded: the size (a conditional probe may have come back without it).
    if (p.remote.not_modified) p.remote = probe(req.url, {}, req.fetch);

    std::uint64_t stale = 0;
    if (auto part = store.partial()) {
        bool same = part->info.url == req.url &&
                    part->info.compression == compression_name(p.compression) &&
                    part->info.size == p.remote.size &&
                    (part->info.validators.empty() ? !p.expected_sha256.empty()
                                                   : part->info.validators == p.remote.validators) &&
                    (!p.remote.size || part->size <= *p.remote.size);
        if (same) p.resume_from = part->size;
        else stale = part->size;
    }

    p.free_bytes = sys::free_space(req.store) + stale;  // a stale partial is removed first
    std::uint64_t size = p.remote.size.value_or(0);
    std::uint64_t remaining = size > p.resume_from ? size - p.resume_from : 0;
    p.needed_bytes = remaining + space_margin(size);
    check_space(store, remaining, size, p.free_bytes);
    return p;
}

PullResult pull(const Prechecks& p, const PullEvents& ev) {
    auto t0 = std::chrono::steady_clock::now();
    const PullRequest& req = p.request;
    Store store(req.store, req.name);
    sys::ensure_dir(store.dir());
    auto lock = lock_store(store);

    PullResult r;
    Download d(store, p, ev);
    DownloadOutcome outcome;
    Download::Done done;
    try {
        d.open();
        bool complete = p.remote.size && d.position() == *p.remote.size && d.position() > 0;
        if (!complete) {
            Validators guard = d.resumed_from() > 0 ? p.remote.validators : Validators{};
            outcome = download(req.url, d.position(), guard, d, req.fetch);
        }
        done = d.finish();
    } catch (Error& e) {
        d.abandon();
        int err = e.sys_errno();
        if (err == ENOSPC || err == EDQUOT) {
            store.remove_partial();
            throw Error(fmt::format("{}; the partial download was removed ({} free in {})", e.message(),
                                    mebibytes(sys::free_space(store.dir())), store.dir().string()),
                        Exit::failed, err);
        }
        if (d.discard()) {
            store.remove_partial();
            throw;
        }
        store.remove_unpack();
        if (d.kept() > 0)
            throw Error(fmt::format("{}; the partial download ({}) is kept and resumes on the next run",
                                    e.message(), mebibytes(d.kept())),
                        e.exit_code(), err);
        store.remove_partial();
        throw;
    }

    VersionInfo info;
    info.name = req.name;
    info.sha256 = done.stored;
    info.published_sha256 = done.published;
    info.checksum_source = checksum_source_text(p);
    info.url = req.url;
    info.compression = std::string(compression_name(p.compression));
    info.size = done.size;
    info.validators = outcome.remote.validators.empty() ? p.remote.validators : outcome.remote.validators;
    r.version = store.install(done.file, info);
    store.remove_partial();
    r.pruned = store.prune();

    r.size = d.position();
    r.received = outcome.received;
    r.resumed_from = d.resumed_from();
    r.restarted = d.restarted();
    r.published_sha256 = done.published;
    r.verified = !p.expected_sha256.empty();
    r.elapsed = std::chrono::steady_clock::now() - t0;
    return r;
}

Version record_current(const Prechecks& p) {
    Store store(p.request.store, p.request.name);
    auto lock = lock_store(store);
    if (!p.current || !is_sha256_hex(p.current_sha256))
        throw Error(fmt::format("record image {}: no verified file at {}", p.request.name,
                                store.current_path().string()));
    VersionInfo info;
    info.sha256 = p.current_sha256;
    info.published_sha256 = p.current_sha256;
    info.checksum_source = checksum_source_text(p);
    info.url = p.request.url;
    info.compression = "none";
    info.size = stored_size(p.current->path);
    info.validators = p.remote.validators;
    return store.install(p.current->path, info);
}

}  // namespace aplspawn::image
