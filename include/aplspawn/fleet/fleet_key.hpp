// The fleet's key pairs: each group's cntCommon.sshPrivateKeyPath and cntVariables.sshPublicKeyPath
// (one pair for the whole fleet unless groups set their own). spawn creates an ed25519 pair when
// neither file exists; exactly one missing is an Error naming the key.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace aplspawn::fleet {

struct KeyPair {
    std::filesystem::path private_key, public_key;
    const config::Group* group = nullptr;  // the first group that uses it (names the keys)
};

// The distinct pairs of the fleet's groups, in group order.
std::vector<KeyPair> key_pairs(const config::Config& c);

// What ensure_fleet_key would do: "" when both exist, a plan line when it would generate the
// pair; throws the same Error as ensure_fleet_key when exactly one is missing.
std::string plan_fleet_key(const config::Config& c, const KeyPair& pair);

// Generates the pair (ssh-keygen -q -t ed25519 -N "" -C aplspawn-fleet) when neither file exists;
// unchanged when both do.
Change ensure_fleet_key(const config::Config& c, const KeyPair& pair);

// A group's public key as one authorized_keys line ("TYPE BASE64 COMMENT"), checked to look like
// one.
std::string read_public_key(const config::Config& c, const config::Group& g);

}  // namespace aplspawn::fleet
