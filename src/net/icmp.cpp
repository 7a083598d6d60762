#include "aplspawn/net/icmp.hpp"

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fd.hpp"

#include <arpa/inet.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace aplspawn::net {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr std::uint8_t kEchoReply = 0;
constexpr std::uint8_t kEchoRequest = 8;
constexpr std::size_t kHeader = 8;

std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v & 0xff);
}

// A socket for echo requests: datagram when allowed, else raw.
struct EchoSocket {
    sys::UniqueFd fd;
    bool raw = false;
};

EchoSocket open_socket(Ipv4 to) {
    EchoSocket s;
    s.fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMP));
    if (!s.fd) {
        if (errno != EACCES && errno != EPERM && errno != EPROTONOSUPPORT)
            throw_errno("socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)");
        s.raw = true;
        s.fd.reset(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMP));
        if (!s.fd)
            throw_errno("socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) (no ICMP datagram sockets: "
                        "net.ipv4.ping_group_range; a raw socket needs CAP_NET_RAW)");
        // Only echo replies reach this socket (the filter names the types to drop).
        icmp_filter filter{};
        filter.data = ~(1u << kEchoReply);
        ::setsockopt(s.fd.get(), SOL_RAW, ICMP_FILTER, &filter, sizeof filter);
    }
    // connect(): replies from other addresses are not delivered to this socket.
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = to.network_order();
    if (::connect(s.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
        throw_errno(fmt::format("connect ICMP socket to {}", to.str()));
    return s;
}

std::uint16_t next_id() {
    static std::atomic<std::uint32_t> counter{0};
    return static_cast<std::uint16_t>((static_cast<std::uint32_t>(::getpid()) * 2654435761u) ^
                                      (counter.fetch_add(1) * 40503u));
}

}  // namespace

std::uint16_t internet_checksum(const std::uint8_t* data, std::size_t size) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i + 1 < size; i += 2) sum += get16(data + i);
    if (size % 2) sum += static_cast<std::uint32_t>(data[size - 1]) << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::vector<std::uint8_t> echo_request(std::uint16_t id, std::uint16_t sequence,
                                       const std::vector<std::uint8_t>& payload) {
    std::vector<std::uint8_t> m(kHeader + payload.size());
    m[0] = kEchoRequest;
    m[1] = 0;
    put16(&m[4], id);
    put16(&m[6], sequence);
    std::copy(payload.begin(), payload.end(), m.begin() + kHeader);
    put16(&m[2], internet_checksum(m.data(), m.size()));
    return m;
}

bool parse_echo_reply(const std::uint8_t* data, std::size_t size, bool with_ip_header,
                      EchoReply& reply) {
    if (with_ip_header) {
        if (size < 20 || (data[0] >> 4) != 4) return false;
        std::size_t ihl = static_cast<std::size_t>(data[0] & 0x0f) * 4;
        if (ihl < 20 || size < ihl) return false;
        data += ihl;
        size -= ihl;
    }
    if (size < kHeader || data[0] != kEchoReply || data[1] != 0) return false;
    if (internet_checksum(data, size) != 0) return false;
    reply.id = get16(data + 4);
    reply.sequence = get16(data + 6);
    return true;
}

std::string EchoResult::describe(milliseconds timeout) const {
    if (!error.empty()) return error;
    if (replied) return fmt::format("reply in {:.1f} ms", static_cast<double>(rtt.count()) / 1000.0);
    return fmt::format("no reply to {} echo request{} within {} ms", sent, sent == 1 ? "" : "s",
                       timeout.count());
}

EchoResult echo(Ipv4 to, milliseconds timeout, int attempts) {
    EchoResult result;
    EchoSocket s;
    try {
        s = open_socket(to);
        result.raw_socket = s.raw;
    } catch (const Error& e) {
        result.error = e.message();
        return result;
    }
    attempts = std::max(attempts, 1);
    const std::uint16_t id = next_id();
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    const auto spacing = timeout / attempts;
    std::vector<Clock::time_point> sent_at;
    const std::vector<std::uint8_t> payload{'a', 'p', 'l', 's', 'p', 'a', 'w', 'n'};
    while (true) {
        auto now = Clock::now();
        if (now >= deadline) break;
        // Time for the next request?
        if (static_cast<int>(sent_at.size()) < attempts &&
            now >= start + spacing * static_cast<long>(sent_at.size())) {
            auto seq = static_cast<std::uint16_t>(sent_at.size() + 1);
            auto msg = echo_request(id, seq, payload);
            if (::send(s.fd.get(), msg.data(), msg.size(), 0) < 0 && errno != EAGAIN &&
                errno != ENOBUFS && errno != EINTR) {
                // No route (a bridge that is down), unreachable after failed ARP: an answer too.
                result.error = Error::from_errno(fmt::format("send echo request to {}", to.str()), errno)
                                   .message();
                return result;
            }
            sent_at.push_back(Clock::now());
            result.sent = static_cast<int>(sent_at.size());
            continue;
        }
        auto next_send = static_cast<int>(sent_at.size()) < attempts
                             ? start + spacing * static_cast<long>(sent_at.size())
                             : deadline;
        auto wake = std::min(next_send, deadline);
        auto wait_ms = duration_cast<milliseconds>(wake - now).count() + 1;
        pollfd p{s.fd.get(), POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(wait_ms));
        if (n < 0) {
            if (errno == EINTR) continue;
            result.error = Error::from_errno("poll ICMP socket", errno).message();
            return result;
        }
        if (n == 0) continue;
        // Drain what arrived.
        while (true) {
            std::uint8_t buf[1500];
            ssize_t got = ::recv(s.fd.get(), buf, sizeof buf, 0);
            if (got < 0) break;  // EAGAIN, or an ICMP error queued for the socket (ignored)
            EchoReply reply;
            if (!parse_echo_reply(buf, static_cast<std::size_t>(got), s.raw, reply)) continue;
            // A datagram socket gets only replies to its own identifier (the kernel sets and
            // matches it); a raw socket sees every echo reply from `to`.
            if (s.raw && reply.id != id) continue;
            if (reply.sequence == 0 || reply.sequence > sent_at.size()) continue;
            result.replied = true;
            result.rtt = duration_cast<microseconds>(Clock::now() - sent_at[reply.sequence - 1]);
            return result;
        }
    }
    return result;
}

}  // namespace aplspawn::net
