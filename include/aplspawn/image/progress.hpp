// A download's progress on stderr. On a terminal: one line redrawn in place (at most ten times a
// second) with percentage, bar, bytes, rate and ETA. Otherwise (a log, CI): a line at every 10%
// (every 100 MiB when the size is unknown). Quiet (-q): nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace aplspawn::image {

class Progress {
public:
    using Clock = std::chrono::steady_clock;
    enum class Mode { bar, lines, off };

    struct Sinks {
        std::function<void(std::string_view)> raw;   // bar mode: text as is ("\r...")
        std::function<void(std::string_view)> line;  // lines mode: one finished line
    };

    // label names the download in lines mode ("Downloading debian-bookworm-latest.img").
    // Default sinks: stderr for the bar, out::info for lines.
    Progress(std::string label, Mode mode, Sinks sinks = {});
    ~Progress();

    // The transfer starts (again) at offset (resumed bytes do not count towards the rate).
    void start(std::uint64_t offset, std::optional<std::uint64_t> total, Clock::time_point now = Clock::now());
    void update(std::uint64_t position, std::optional<std::uint64_t> total,
                Clock::time_point now = Clock::now());
    // Erases the bar (to print a line under it); the next update draws it again.
    void clear();
    // Erases the bar for good.
    void finish();

    // Bytes per second over the last few seconds; 0 until there is a measurement.
    double rate() const { return rate_; }

private:
    void draw(std::uint64_t position, std::optional<std::uint64_t> total, Clock::time_point now);

    std::string label_;
    Mode mode_;
    Sinks sinks_;
    std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;
    Clock::time_point last_draw_{};
    bool drawn_ = false;
    int next_step_ = 1;  // lines mode: the next 10% step (or 100 MiB step) to report
    double rate_ = 0;
};

// "812 B", "1.5 KiB", "512.0 MiB", "1.25 GiB"
std::string format_bytes(std::uint64_t bytes);
// "0:07", "12:30", "1:02:03"
std::string format_duration(std::chrono::seconds s);
// The text of the bar line (without "\r"): " 45% [#########           ] 230.4 MiB / 512.0 MiB
// 105.2 MiB/s  ETA 0:03"; rate 0: no rate or ETA yet.
std::string progress_bar(std::uint64_t position, std::optional<std::uint64_t> total, double rate);

}  // namespace aplspawn::image
