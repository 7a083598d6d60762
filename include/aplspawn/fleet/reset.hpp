// reset: a container back to its image's state, keeping what makes it the same host to others:
// its SSH host keys (so the fleet's known_hosts stays valid), its machine-id and aplspawn's
// provisioning record (so provisioning keeps both). The container is stopped, its upper and work
// directories are emptied, those files are put back into the empty upper directory; spawn then
// provisions and boots it as any container (cli/reset.cpp).
#pragma once

#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/outcome.hpp"
#include "aplspawn/fleet/state.hpp"

#include <chrono>
#include <filesystem>

namespace aplspawn::fleet {

// The files kept across a reset, as container paths.
const std::vector<std::string>& reset_kept_files();

// Stops the container (grace as for stop), empties its data but the kept files. `lower`: its
// image's mounted lower layer (directories made in the new upper take the image's attributes).
// Never throws: a failure is a FAIL line.
Outcome reset_data(const StateDir& state, const ContainerView& view,
                   const std::filesystem::path& lower, std::chrono::seconds grace);

}  // namespace aplspawn::fleet
