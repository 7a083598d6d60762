// Settling what an interrupted run (aplspawn killed mid-spawn) left on the host, so that the next
// spawn or stop starts from a consistent state.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/outcome.hpp"
#include "aplspawn/fleet/state.hpp"

namespace aplspawn::fleet {

// Takes down what an interrupted run left of a container that is not properly running: stray
// systemd-nspawn processes no record knows, a record whose process is gone, a merged directory
// mounted with nothing running on it. Its data (the upper directory) stays. Unchanged (no lines)
// when there was nothing. dry_run: PLAN lines only.
Outcome settle(const StateDir& state, const ContainerView& view, bool dry_run);

}  // namespace aplspawn::fleet
