// The result of one container's part of a fleet operation run in parallel: its step lines,
// printed in name order once done, and whether it succeeded.
#pragma once

#include "aplspawn/output.hpp"

#include <string>
#include <vector>

namespace aplspawn::fleet {

struct Outcome {
    std::string name;
    bool ok = true;
    std::vector<out::Line> lines;
};

}  // namespace aplspawn::fleet
