// Named network namespaces, kept the way `ip netns` keeps them: /run/netns/NAME is a bind mount
// of a namespace's nsfs file (so the namespace lives on with no process in it), and /run/netns
// itself is a shared mount, so that unmounting a name in one mount namespace unmounts its copies
// in the others (`ip netns add` makes it one the same way). `ip netns exec NAME ...` works on
// them. Knows nothing of containers.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/sys/fd.hpp"

#include <filesystem>
#include <string_view>

namespace aplspawn::sys {

inline constexpr std::string_view kNetnsDir = "/run/netns";

// /run/netns/NAME
std::filesystem::path netns_path(std::string_view name);

// Creates a new network namespace (only a loopback device, down) and names it. Throws Error
// naming the step; errno EEXIST when a file of that name already exists (nothing changed then).
// Safe to call from several threads at once.
void create_netns(std::string_view name);

// The name exists: /run/netns/NAME is there (a file, mounted or not).
bool netns_exists(std::string_view name);

// The namespace, open (O_RDONLY, close-on-exec), for setns() or IFLA_NET_NS_FD. Throws Error.
UniqueFd open_netns(std::string_view name);

// The same for a path (a name under /run/netns, /proc/PID/ns/net, ...), checked to be a network
// namespace (NS_GET_NSTYPE): an empty file left where a name was being made, or a directory, is
// refused ("...: not a network namespace", EINVAL). Throws Error naming the path.
UniqueFd open_netns_path(const std::filesystem::path& path);

// Unmounts the name (lazily: a process inside keeps the namespace alive, the name is gone) and
// removes its file. Change::unchanged when there was none.
Change remove_netns(std::string_view name);

}  // namespace aplspawn::sys
