// enable: on a systemd host, install and enable the unit that brings this config's fleet up at
// every boot, after the network (netup, then spawn; stop at shutdown): fleet/boot_unit.hpp,
// docs/reliability.md. Without systemd as init: exit 1, nothing written.
#include "aplspawn/fleet/boot_unit.hpp"
#include "cli/operation.hpp"

namespace aplspawn::cli {

Exit run_enable(const Context& ctx) {
    fleet::enable_at_boot(ctx.config, ctx.options.dry_run);
    return Exit::ok;
}

}  // namespace aplspawn::cli
