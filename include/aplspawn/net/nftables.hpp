// libnftables, owned: one nft context per object, freed when it leaves scope. Every run() is one
// buffer of nft commands, which nft applies as one atomic transaction: all or nothing.
#pragma once

#include <string>
#include <string_view>

struct nft_ctx;

namespace aplspawn::net {

class Nftables {
public:
    Nftables();  // throws Error when libnftables cannot make a context
    Nftables(Nftables&& o) noexcept;
    Nftables& operator=(Nftables&& o) noexcept;
    Nftables(const Nftables&) = delete;
    Nftables& operator=(const Nftables&) = delete;
    ~Nftables();

    struct Result {
        int rc = 0;
        std::string out;    // what nft printed (a listing)
        std::string error;  // nft's error text, empty on success
        bool ok() const { return rc == 0; }
        // The first line of the error: "Error: Could not process rule: No such file or directory".
        std::string first_error_line() const;
    };

    // Runs a buffer of commands as one transaction; output as `nft` prints it.
    Result run(std::string_view commands);
    // The same, output in nft's JSON format (`nft -j`).
    Result run_json(std::string_view commands);
    // run() that throws Error "CONTEXT: FIRST ERROR LINE" on failure.
    std::string run_checked(std::string_view commands, std::string_view context);

private:
    Result run_with_flags(std::string_view commands, unsigned flags);
    nft_ctx* ctx_ = nullptr;
    unsigned base_flags_ = 0;
};

}  // namespace aplspawn::net
