// One health check's result, as status prints it ("‣ [ OK ] Checking if bridge nspawnd0 exists")
// and as --json reports it ({"container", "check", "ok", "detail"}).
#pragma once

#include <string>
#include <vector>

namespace aplspawn::health {

struct CheckResult {
    std::string container;  // "" for host-level checks (network, directories, image)
    std::string check;      // stable id for --json and scripts: "bridge.exists", "ssh", ...
    std::string title;      // the original's line: "Checking if bridge nspawnd0 exists"
    bool ok = false;
    std::string detail;     // why it failed (or extra facts when it passed); may be empty
};

using Report = std::vector<CheckResult>;

}  // namespace aplspawn::health
