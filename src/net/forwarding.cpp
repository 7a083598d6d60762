#include "aplspawn/net/forwarding.hpp"

#include "aplspawn/sys/fd.hpp"
#include "aplspawn/sys/fs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <string>

namespace aplspawn::net {

int ip_forward() {
    std::string text = sys::read_file(std::string(kIpForwardPath));
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text == "0") return 0;
    if (text == "1") return 1;
    throw Error(fmt::format("read {}: unexpected value \"{}\"", kIpForwardPath, text));
}

Change set_ip_forward(int value) {
    if (value != 0 && value != 1) throw Error(fmt::format("set {}: invalid value {}", kIpForwardPath, value));
    if (ip_forward() == value) return Change::unchanged;
    // A sysctl file: written in place with one write, not replaced.
    const std::string path(kIpForwardPath);
    sys::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) throw_errno(fmt::format("open {}", path));
    const char text[2] = {static_cast<char>('0' + value), '\n'};
    ssize_t n;
    do n = ::write(fd.get(), text, sizeof text);
    while (n < 0 && errno == EINTR);
    if (n < 0) throw_errno(fmt::format("write {} to {}", value, path));
    return Change::changed;
}

}  // namespace aplspawn::net
