// The fleet's own known_hosts (state/known_hosts): "IP KEYTYPE BASE64" lines, one per host key
// of each container, written at spawn from the keys provisioning generated, before the first SSH
// connection. Updating a container replaces its IP's lines and keeps everyone else's.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::fleet {

namespace fs = std::filesystem;

// known_hosts text with every line for `ip` replaced by `keys` ("TYPE BASE64 [comment]": the
// comment is dropped). Lines of other hosts, and comments, are kept in order.
std::string known_hosts_with(std::string_view current, const std::string& ip,
                             const std::vector<std::string>& keys);
// known_hosts text without the lines for `ip`.
std::string known_hosts_without(std::string_view current, const std::string& ip);
// The keys ("TYPE BASE64") listed for ip.
std::vector<std::string> known_hosts_keys(std::string_view current, const std::string& ip);

// The file, updated atomically under a lock shared by the threads of one process (the fleet lock
// keeps other processes out).
class KnownHostsFile {
public:
    explicit KnownHostsFile(fs::path path) : path_(std::move(path)) {}
    const fs::path& path() const { return path_; }
    // Replaces ip's lines; returns false when they already were exactly these keys.
    bool set(const std::string& ip, const std::vector<std::string>& keys);
    bool remove(const std::string& ip);
    std::vector<std::string> keys(const std::string& ip) const;

private:
    fs::path path_;
    mutable std::mutex mutex_;
};

}  // namespace aplspawn::fleet
