// netup: not built yet (see the open issues). Says so in one line and exits 1.
#include "cli/operation.hpp"

namespace aplspawn::cli {

Exit run_netup(const Context&) { throw Error("aplspawn netup: this operation is not built yet"); }

}  // namespace aplspawn::cli
