// `aplspawn status`: every check of the fleet, in the original's order. Host checks first
// (network_checks, then storage_checks), then every container at once (bounded by `workers`),
// each container's report handed over in name order as soon as it and those before it are done.
// The fleet is healthy when every check passed.
//
// --json shape (docs/status.md): an array with one object per check, in the printed order:
//   {"container": null | "NAME", "group": null | "GROUP", "check": "ID", "ok": true | false,
//    "title": "...", "detail": "..."}
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/health/check.hpp"
#include "aplspawn/health/container.hpp"
#include "aplspawn/output.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace aplspawn::health {

// Containers checked at once by default: 8 per CPU, at most 64. A check is mostly one SSH login,
// CPU on both ends, so more at once only makes each login slower: with 64 at once on 2 loaded
// CPUs, logins of a fleet of 100 passed the 10 s SSH timeout and status failed, while the same
// logins 16 at once took as long in all (docs/benchmarks.md, Scale).
std::size_t default_status_workers();

struct StatusOptions {
    ContainerCheckOptions container;
    std::size_t workers = default_status_workers();  // containers checked at once
};

struct StatusReport {
    Report host;
    std::vector<ContainerReport> containers;
    bool ok() const;
};

// Called on the calling thread: `host` once, then `container` once per container in name order.
struct StatusObserver {
    std::function<void(const Report&)> host;
    std::function<void(const ContainerReport&)> container;
};

// `containers`: the ones to check (all of the config, or the targeted ones), in fleet order.
StatusReport run_status(const config::Config& c,
                        const std::vector<const config::Container*>& containers,
                        const StatusOptions& options, const StatusObserver& observer = {});

// Why containers cannot be reached over the bridge ("bridge nspawnd0 is down"), from the host
// checks; "" when the bridge exists and is up.
std::string network_problem(const config::Config& c, const Report& host);

// The step lines: "‣ [ OK ] title" (with -v, the detail below it), "‣ [ FAIL ] title: detail";
// a container's report starts with its INFO header.
std::vector<out::Line> lines(const Report& report);
std::vector<out::Line> lines(const ContainerReport& report);

// The --json array.
nlohmann::ordered_json to_json(const StatusReport& report);

// --summary: one line per container, "‣ [ OK ] web10 (web, 10.10.12.10)" or
// "‣ [ FAIL ] db30 (db, 10.10.12.30): ping, ssh failed: why", and the totals line.
out::Line summary_line(const ContainerReport& report);
std::vector<out::Line> summary_totals(const StatusReport& report);

}  // namespace aplspawn::health
