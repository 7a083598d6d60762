#include "aplspawn/net/netlink.hpp"

#include "aplspawn/sys/fd.hpp"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <exception>
#include <thread>
#include <utility>

namespace aplspawn::net {
namespace {

// A dump answer is at most ~32 KiB per datagram (the kernel caps its skbs there).
constexpr std::size_t kReceiveSize = 65536;

mnl_socket* open_bound_socket(int& err) {
    mnl_socket* sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (!sock) {
        err = errno;
        return nullptr;
    }
    if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
        err = errno;
        mnl_socket_close(sock);
        return nullptr;
    }
    err = 0;
    return sock;
}

struct Batch {
    std::vector<const nlmsghdr*> messages;
};

// Called by libmnl (C code: must not throw) for every data message of the answer.
int collect(const nlmsghdr* nlh, void* data) {
    try {
        static_cast<Batch*>(data)->messages.push_back(nlh);
        return MNL_CB_OK;
    } catch (...) {
        errno = ENOMEM;
        return MNL_CB_ERROR;
    }
}

}  // namespace

Message::Message(std::uint16_t type, std::uint16_t flags) : buf_(MNL_SOCKET_BUFFER_SIZE) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
}

void* Message::put_extra(std::size_t size) { return mnl_nlmsg_put_extra_header(nlh_, size); }

void Message::put_str(std::uint16_t type, std::string_view value) {
    // A NUL-terminated string attribute, as the kernel expects for names.
    std::string s(value);
    mnl_attr_put_strz(nlh_, type, s.c_str());
}

void Message::put_u32(std::uint16_t type, std::uint32_t value) { mnl_attr_put_u32(nlh_, type, value); }

void Message::put_bytes(std::uint16_t type, const void* data, std::size_t size) {
    mnl_attr_put(nlh_, type, size, data);
}

void Message::put_ipv4(std::uint16_t type, Ipv4 address) {
    std::uint32_t be = address.network_order();
    mnl_attr_put(nlh_, type, sizeof be, &be);
}

nlattr* Message::nest_start(std::uint16_t type) { return mnl_attr_nest_start(nlh_, type); }

void Message::nest_end(nlattr* nest) { mnl_attr_nest_end(nlh_, nest); }

Netlink::Netlink(mnl_socket* sock) : sock_(sock), portid_(mnl_socket_get_portid(sock)) {}

Netlink::Netlink(Netlink&& o) noexcept
    : sock_(std::exchange(o.sock_, nullptr)), portid_(o.portid_), seq_(o.seq_) {}

Netlink& Netlink::operator=(Netlink&& o) noexcept {
    if (this != &o) {
        if (sock_) mnl_socket_close(sock_);
        sock_ = std::exchange(o.sock_, nullptr);
        portid_ = o.portid_;
        seq_ = o.seq_;
    }
    return *this;
}

Netlink::~Netlink() {
    if (sock_) mnl_socket_close(sock_);
}

Netlink Netlink::open() {
    int err = 0;
    mnl_socket* sock = open_bound_socket(err);
    if (!sock) throw_errno("open rtnetlink socket", err);
    return Netlink(sock);
}

Netlink Netlink::open_in_netns_of(pid_t pid) { return open_in_netns(fmt::format("/proc/{}/ns/net", pid)); }

Netlink Netlink::open_in_netns(const std::string& ns_path) {
    sys::UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) throw_errno(fmt::format("open network namespace {}", ns_path));
    // setns() changes only the calling thread's network namespace: do it in a thread of our
    // own that ends right after creating the socket, which stays bound to that namespace.
    mnl_socket* sock = nullptr;
    int err = 0;
    const char* step = "";
    std::thread worker([&] {
        if (::setns(ns.get(), CLONE_NEWNET) < 0) {
            err = errno;
            step = "enter network namespace";
            return;
        }
        sock = open_bound_socket(err);
        if (!sock) step = "open rtnetlink socket in network namespace";
    });
    worker.join();
    if (!sock) throw_errno(fmt::format("{} {}", step, ns_path), err);
    return Netlink(sock);
}

int Netlink::request(Message& msg, const OnMessage& on_message) {
    return exchange(msg, on_message, NLM_F_ACK);
}

void Netlink::dump(Message& msg, const OnMessage& on_message, std::string_view context) {
    // A dump ends with NLMSG_DONE (or an error), never with an acknowledgement.
    int rc = exchange(msg, on_message, NLM_F_DUMP);
    if (rc < 0) throw_errno(context, -rc);
}

int Netlink::exchange(Message& msg, const OnMessage& on_message, std::uint16_t flags) {
    nlmsghdr* nlh = msg.header();
    nlh->nlmsg_flags = static_cast<std::uint16_t>(nlh->nlmsg_flags | NLM_F_REQUEST | flags);
    const unsigned seq = nlh->nlmsg_seq = ++seq_;
    if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) throw_errno("rtnetlink send");

    std::vector<char> buf(kReceiveSize);
    std::exception_ptr failure;
    while (true) {
        ssize_t n = mnl_socket_recvfrom(sock_, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("rtnetlink receive");
        }
        Batch batch;
        int rc = mnl_cb_run(buf.data(), static_cast<std::size_t>(n), seq, portid_, collect, &batch);
        int err = errno;
        // Hand the messages over outside libmnl (C code), keeping only the first failure and
        // reading on to the end of the answer so the socket stays in step.
        if (on_message && !failure) {
            try {
                for (const nlmsghdr* m : batch.messages) on_message(m);
            } catch (...) {
                failure = std::current_exception();
            }
        }
        if (rc == MNL_CB_OK) continue;
        if (failure) std::rethrow_exception(failure);
        return rc == MNL_CB_STOP ? 0 : -err;
    }
}

}  // namespace aplspawn::net
