// disable: undo `enable` — disable and remove exactly the unit aplspawn wrote for this config
// (fleet/boot_unit.hpp). The running fleet is left as it is.
#include "aplspawn/fleet/boot_unit.hpp"
#include "cli/operation.hpp"

namespace aplspawn::cli {

Exit run_disable(const Context& ctx) {
    fleet::disable_at_boot(ctx.config, ctx.options.dry_run);
    return Exit::ok;
}

}  // namespace aplspawn::cli
