// The fleet key: cntCommon.sshPrivateKeyPath and cntVariables.sshPublicKeyPath. spawn creates an
// ed25519 pair when neither file exists; exactly one missing is an Error naming the key.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"

#include <string>

namespace aplspawn::fleet {

// What ensure_fleet_key would do: "" when both exist, a plan line when it would generate the
// pair; throws the same Error as ensure_fleet_key when exactly one is missing.
std::string plan_fleet_key(const config::Config& c);

// Generates the pair (ssh-keygen -q -t ed25519 -N "" -C aplspawn-fleet) when neither file exists;
// unchanged when both do.
Change ensure_fleet_key(const config::Config& c);

// The public key as one authorized_keys line ("TYPE BASE64 COMMENT"), checked to look like one.
std::string read_public_key(const config::Config& c);

}  // namespace aplspawn::fleet
