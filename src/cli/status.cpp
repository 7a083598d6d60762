// status: the original's health checks, in its order, one line each on stderr; the host's
// first, then every container (or the targeted ones; checked all at once, printed in fleet
// order). --summary: one line per container and the totals. --json: one object per check on
// stdout (docs/status.md). Exit 0 only when every check passed, so
// `aplspawn -o status && ...` gates a CI job.
#include "aplspawn/fleet/targets.hpp"
#include "aplspawn/health/status.hpp"
#include "aplspawn/output.hpp"
#include "cli/operation.hpp"

#include <iostream>

namespace aplspawn::cli {

Exit run_status(const Context& ctx) {
    const config::Config& c = ctx.config;
    const auto selection = fleet::select_targets(c, fleet::StateDir(c), ctx.options.targets);
    const bool summary = ctx.options.summary;
    health::StatusObserver print;
    // --summary: the host's failed checks only, then a line per container and the totals.
    print.host = [&](const health::Report& r) {
        for (const auto& l : health::lines(r))
            if (!summary || l.kind == out::Kind::fail) out::print(l);
    };
    print.container = [&](const health::ContainerReport& r) {
        if (summary)
            out::print(health::summary_line(r));
        else
            out::print(health::lines(r));
    };
    health::StatusReport report = health::run_status(c, selection.of(c), {}, print);
    if (summary) out::print(health::summary_totals(report));
    if (ctx.options.json) {
        std::cout << health::to_json(report).dump(2) << '\n';
        std::cout.flush();
        if (!std::cout) throw Error("status: write to stdout failed");
    }
    return report.ok() ? Exit::ok : Exit::failed;
}

}  // namespace aplspawn::cli
