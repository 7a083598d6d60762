// The way back, part one: stop a container gracefully (nspawn's SIGTERM becomes SIGRTMIN+3 for a
// booted systemd; the startup script gets SIGTERM in script mode), wait up to the grace time, then
// kill; unmount its merged directory; drop its record. Its upper directory stays: the next spawn
// brings it back with its data. Also stops what an interrupted run left unrecorded.
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/fleet/observe.hpp"
#include "aplspawn/fleet/outcome.hpp"
#include "aplspawn/fleet/state.hpp"

#include <chrono>

namespace aplspawn::fleet {

// Stops one container (never throws: a failure is a FAIL line). "already so" when nothing of it
// was running or mounted.
Outcome stop_container(const StateDir& state, const ContainerView& view, std::chrono::seconds grace);

// What stop_container would do, as PLAN lines.
Outcome plan_stop(const ContainerView& view);

}  // namespace aplspawn::fleet
