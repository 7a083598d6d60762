// The result of one container's part of a fleet operation run in parallel: its step lines,
// printed in name order once done, and whether it succeeded.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/output.hpp"

#include <string>
#include <vector>

namespace aplspawn::fleet {

struct Outcome {
    std::string name;
    bool ok = true;
    std::vector<out::Line> lines;
};

// The outcome of a container whose work threw instead of returning one (fleet::run_ordered's
// `failed`): a FAIL line of its own, naming it.
inline Outcome failed_outcome(const std::string& name, const Error& e) {
    return {name, false, {{out::Kind::fail, name + ": " + e.message()}}};
}

}  // namespace aplspawn::fleet
