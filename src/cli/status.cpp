// status: the original's health checks, in its order, one line each on stderr; the host's
// first, then every container (checked all at once, printed in name order). --json: one object
// per check on stdout (docs/status.md). Exit 0 only when every check passed, so
// `aplspawn -o status && ...` gates a CI job.
#include "aplspawn/health/status.hpp"
#include "aplspawn/output.hpp"
#include "cli/operation.hpp"

#include <iostream>

namespace aplspawn::cli {

Exit run_status(const Context& ctx) {
    health::StatusObserver print;
    print.host = [](const health::Report& r) { out::print(health::lines(r)); };
    print.container = [](const health::ContainerReport& r) { out::print(health::lines(r)); };
    health::StatusReport report = health::run_status(ctx.config, {}, print);
    if (ctx.options.json) {
        std::cout << health::to_json(report).dump(2) << '\n';
        std::cout.flush();
        if (!std::cout) throw Error("status: write to stdout failed");
    }
    return report.ok() ? Exit::ok : Exit::failed;
}

}  // namespace aplspawn::cli
