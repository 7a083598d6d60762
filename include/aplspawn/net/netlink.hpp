// An rtnetlink socket (libmnl), owned: closed when it leaves scope. A socket stays bound to the
// network namespace it was created in, so open_in_netns_of() gives a socket that talks to a
// container's namespace while this process stays where it is.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/ipv4.hpp"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

struct mnl_socket;
struct nlmsghdr;
struct nlattr;

namespace aplspawn::net {

// One rtnetlink request under construction: header, then the family header (ifinfomsg,
// ifaddrmsg, rtmsg), then attributes.
class Message {
public:
    Message(std::uint16_t type, std::uint16_t flags);

    // The family header, zeroed; call once, before any attribute.
    template <class T>
    T& family_header() {
        return *static_cast<T*>(put_extra(sizeof(T)));
    }
    void put_str(std::uint16_t type, std::string_view value);
    void put_u32(std::uint16_t type, std::uint32_t value);
    void put_ipv4(std::uint16_t type, Ipv4 address);  // network byte order, as the kernel wants
    void put_bytes(std::uint16_t type, const void* data, std::size_t size);
    nlattr* nest_start(std::uint16_t type);
    void nest_end(nlattr* nest);
    // A zeroed struct at the current end, inside a nest (VETH_INFO_PEER starts with an ifinfomsg).
    template <class T>
    T& nested_header() {
        return *static_cast<T*>(put_extra(sizeof(T)));
    }

    nlmsghdr* header() { return nlh_; }

private:
    void* put_extra(std::size_t size);
    std::vector<char> buf_;
    nlmsghdr* nlh_;
};

using OnMessage = std::function<void(const nlmsghdr*)>;

class Netlink {
public:
    // A NETLINK_ROUTE socket in the calling thread's network namespace.
    static Netlink open();
    // A NETLINK_ROUTE socket in the network namespace of process pid (/proc/PID/ns/net), made by
    // a short-lived thread that enters that namespace; the caller's namespace is not changed.
    static Netlink open_in_netns_of(pid_t pid);
    // The same for the namespace a file names (/run/netns/NAME, /proc/PID/ns/net).
    static Netlink open_in_netns(const std::string& ns_path);

    Netlink(Netlink&& o) noexcept;
    Netlink& operator=(Netlink&& o) noexcept;
    Netlink(const Netlink&) = delete;
    Netlink& operator=(const Netlink&) = delete;
    ~Netlink();

    // Sends msg with NLM_F_ACK and reads until the kernel's acknowledgement. Every reply message
    // before it goes to on_message (if given). Returns 0, or the negative errno the kernel
    // answered, so callers decide whether -EEXIST or -ENODEV mean "already so". Failures of the
    // socket itself throw Error.
    int request(Message& msg, const OnMessage& on_message = {});

    // Sends msg as a dump (NLM_F_DUMP) and calls on_message for each answer. A kernel error
    // throws Error "CONTEXT: strerror".
    void dump(Message& msg, const OnMessage& on_message, std::string_view context);

private:
    explicit Netlink(mnl_socket* sock);
    int exchange(Message& msg, const OnMessage& on_message, std::uint16_t flags);
    mnl_socket* sock_ = nullptr;
    unsigned portid_ = 0;
    unsigned seq_ = 0;
};

}  // namespace aplspawn::net
