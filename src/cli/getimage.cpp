// getimage: not built yet (see the open issues). Says so in one line and exits 1.
#include "cli/operation.hpp"

namespace aplspawn::cli {

Exit run_getimage(const Context&) { throw Error("aplspawn getimage: this operation is not built yet"); }

}  // namespace aplspawn::cli
