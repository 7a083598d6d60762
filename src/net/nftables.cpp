#include "aplspawn/net/nftables.hpp"

#include "aplspawn/error.hpp"

#include <nftables/libnftables.h>

#include <fmt/format.h>

#include <utility>

namespace aplspawn::net {

Nftables::Nftables() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
    if (!ctx_) throw Error("libnftables: cannot create a context");
    if (nft_ctx_buffer_output(ctx_) != 0 || nft_ctx_buffer_error(ctx_) != 0) {
        nft_ctx_free(ctx_);
        throw Error("libnftables: cannot buffer output");
    }
    base_flags_ = nft_ctx_output_get_flags(ctx_);
}

Nftables::Nftables(Nftables&& o) noexcept
    : ctx_(std::exchange(o.ctx_, nullptr)), base_flags_(o.base_flags_) {}

Nftables& Nftables::operator=(Nftables&& o) noexcept {
    if (this != &o) {
        if (ctx_) nft_ctx_free(ctx_);
        ctx_ = std::exchange(o.ctx_, nullptr);
        base_flags_ = o.base_flags_;
    }
    return *this;
}

Nftables::~Nftables() {
    if (ctx_) nft_ctx_free(ctx_);
}

std::string Nftables::Result::first_error_line() const {
    std::string_view e = error;
    while (!e.empty() && (e.front() == '\n' || e.front() == ' ')) e.remove_prefix(1);
    e = e.substr(0, e.find('\n'));
    if (e.empty()) return fmt::format("nft failed (return code {})", rc);
    return std::string(e);
}

Nftables::Result Nftables::run_with_flags(std::string_view commands, unsigned flags) {
    nft_ctx_output_set_flags(ctx_, flags);
    std::string buf(commands);
    Result r;
    r.rc = nft_run_cmd_from_buffer(ctx_, buf.c_str());
    // Each get_*_buffer() hands back what was printed since the last call and rewinds.
    if (const char* out = nft_ctx_get_output_buffer(ctx_)) r.out = out;
    if (const char* err = nft_ctx_get_error_buffer(ctx_)) r.error = err;
    if (r.rc == 0) r.error.clear();
    return r;
}

Nftables::Result Nftables::run(std::string_view commands) { return run_with_flags(commands, base_flags_); }

Nftables::Result Nftables::run_json(std::string_view commands) {
    return run_with_flags(commands, base_flags_ | NFT_CTX_OUTPUT_JSON);
}

std::string Nftables::run_checked(std::string_view commands, std::string_view context) {
    Result r = run(commands);
    if (!r.ok()) throw Error(fmt::format("{}: {}", context, r.first_error_line()));
    return r.out;
}

}  // namespace aplspawn::net
