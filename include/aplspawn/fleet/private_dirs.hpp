// The directories that hold the containers' data, kept to root alone (0700), as systemd keeps
// /var/lib/machines. Inside them every file has the container's own uids and modes: uid 1000 is
// the fleet user in every container and often a person on the host, who could otherwise read a
// container's home, keys and /etc/shadow through them. Those directories:
//   path.imageUpperPath    the containers' upper layers (their own files)
//   path.imageWorkPath     overlayfs's work directories
//   path.imageLowerLayer   where the image is mounted
//   path.stateDirectory    records, logs, known_hosts, net.json
//   cntCommon.homePath     the merged roots (each container's whole tree while it runs), of
//                          every group (groups.NAME.homePath)
// The directories inside them (upper/NAME, the merged roots) keep their 0755: they are the
// containers' own "/".
#pragma once

#include "aplspawn/config.hpp"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::fleet {

struct PrivateDir {
    std::string key;  // the config key that names it: "path.imageUpperPath"
    std::filesystem::path path;
};

// The directories above, in that order, each group's homePath last (duplicates dropped).
std::vector<PrivateDir> private_dirs(const config::Config& c);

struct Tightened {
    PrivateDir dir;
    mode_t was = 0;  // its mode before
};

// Creates each missing one 0700 and takes group and other permissions off each existing one.
// Returns the ones it had to tighten.
std::vector<Tightened> ensure_private_dirs(const config::Config& c);

// "Restricted path.imageUpperPath /x to 0700 (it was 0755: host users could read the
// containers' files through it)"
std::string describe(const Tightened& t);

}  // namespace aplspawn::fleet
