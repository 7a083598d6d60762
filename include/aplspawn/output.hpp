// Step lines on stderr, in the original aplspawn's look:
//   ‣ [ OK ] Configuring bridge nspawnd0
//   ‣ [ FAIL ] Checking ping to 10.10.12.10: no reply within 1 s
//   ‣ [ INFO ] URL: file:///var/cache/aplspawn/repo/debian-bookworm-latest.img
// Colour only when stderr is a terminal and NO_COLOR is unset. Data (names, pids, inventory,
// --json) never goes through here: operations write it to stdout themselves.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::out {

enum class Verbosity { quiet, normal, verbose };

// ok, fail, info: the original's three tags. plan: what --dry-run would do. debug: -v only.
enum class Kind { ok, fail, info, plan, debug };

struct Settings {
    Verbosity verbosity = Verbosity::normal;
    bool color = false;
};

void configure(const Settings& settings);
const Settings& settings();

// True when fd is a terminal and colour is not switched off (NO_COLOR set, TERM=dumb).
bool color_wanted(int fd);
bool is_terminal(int fd);

// One finished line, as printed. Parallel work collects Lines and prints them in order.
struct Line {
    Kind kind;
    std::string text;
};

// Formats a line without printing it (no colour): "‣ [ OK ] text".
std::string format(const Line& line, bool color = false);

// Prints one line to stderr (thread-safe, one write per line). Quiet mode keeps only FAIL and
// PLAN lines; debug lines appear only with -v.
void print(const Line& line);
void print(const std::vector<Line>& lines);

inline void ok(std::string_view text) { print({Kind::ok, std::string(text)}); }
inline void fail(std::string_view text) { print({Kind::fail, std::string(text)}); }
inline void info(std::string_view text) { print({Kind::info, std::string(text)}); }
inline void plan(std::string_view text) { print({Kind::plan, std::string(text)}); }
inline void debug(std::string_view text) { print({Kind::debug, std::string(text)}); }

// The original's separator line between containers: "‣ ***".
void separator();

// The suffix idempotent steps append when nothing had to change.
inline constexpr std::string_view already_so = " (already so)";

}  // namespace aplspawn::out
