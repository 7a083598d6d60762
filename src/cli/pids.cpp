// pids: not built yet (see the open issues). Says so in one line and exits 1.
#include "cli/operation.hpp"

namespace aplspawn::cli {

Exit run_pids(const Context&) { throw Error("aplspawn pids: this operation is not built yet"); }

}  // namespace aplspawn::cli
