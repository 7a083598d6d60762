#include "aplspawn/image/progress.hpp"

#include "aplspawn/output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>

namespace aplspawn::image {
namespace {

constexpr auto kRedraw = std::chrono::milliseconds(100);
constexpr auto kWindow = std::chrono::seconds(3);
constexpr std::uint64_t kUnknownStep = 100ull << 20;
constexpr int kBarWidth = 20;

void write_stderr(std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return;
        }
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

std::string format_bytes(std::uint64_t bytes) {
    if (bytes < 1024) return fmt::format("{} B", bytes);
    static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(bytes) / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        ++u;
    }
    if (u >= 1 && v < 10) return fmt::format("{:.2f} {}", v, kUnits[u]);
    return fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string format_duration(std::chrono::seconds s) {
    long long t = std::max<long long>(0, s.count());
    if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
    return fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string progress_bar(std::uint64_t position, std::optional<std::uint64_t> total, double rate) {
    std::string s;
    if (total && *total > 0) {
        std::uint64_t p = std::min(position, *total);
        double frac = static_cast<double>(p) / static_cast<double>(*total);
        int filled = static_cast<int>(frac * kBarWidth);
        s = fmt::format("{:3}% [{}{}] {} / {}", static_cast<int>(frac * 100), std::string(filled, '#'),
                        std::string(kBarWidth - filled, ' '), format_bytes(p), format_bytes(*total));
        if (rate > 0) {
            auto eta = std::chrono::seconds(
                static_cast<long long>(std::ceil(static_cast<double>(*total - p) / rate)));
            s += fmt::format("  {}/s  ETA {}", format_bytes(static_cast<std::uint64_t>(rate)),
                             format_duration(eta));
        }
    } else {
        s = fmt::format("{}", format_bytes(position));
        if (rate > 0) s += fmt::format("  {}/s", format_bytes(static_cast<std::uint64_t>(rate)));
    }
    return s;
}

Progress::Progress(std::string label, Mode mode, Sinks sinks)
    : label_(std::move(label)), mode_(mode), sinks_(std::move(sinks)) {
    if (!sinks_.raw) sinks_.raw = write_stderr;
    if (!sinks_.line) sinks_.line = [](std::string_view l) { out::info(l); };
}

Progress::~Progress() {
    try {
        finish();
    } catch (...) {
    }
}

void Progress::start(std::uint64_t offset, std::optional<std::uint64_t> total, Clock::time_point now) {
    samples_.clear();
    samples_.emplace_back(now, offset);
    rate_ = 0;
    if (mode_ == Mode::lines) {
        // Report the steps still ahead of the resumed offset only.
        if (total && *total > 0)
            next_step_ = static_cast<int>(offset * 10 / *total) + 1;
        else
            next_step_ = static_cast<int>(offset / kUnknownStep) + 1;
    }
    if (mode_ == Mode::bar) draw(offset, total, now);
}

void Progress::update(std::uint64_t position, std::optional<std::uint64_t> total, Clock::time_point now) {
    if (mode_ == Mode::off) return;
    // The rate over the last few seconds: a sample every 100 ms, the oldest dropped.
    if (samples_.empty() || now - samples_.back().first >= kRedraw) samples_.emplace_back(now, position);
    while (samples_.size() > 2 && now - samples_.front().first > kWindow) samples_.pop_front();
    auto span = std::chrono::duration<double>(now - samples_.front().first).count();
    if (span >= 0.2 && position >= samples_.front().second)
        rate_ = static_cast<double>(position - samples_.front().second) / span;

    if (mode_ == Mode::bar) {
        bool done = total && position >= *total;
        if (!drawn_ || done || now - last_draw_ >= kRedraw) draw(position, total, now);
        return;
    }
    // Lines: each 10% step crossed (or each 100 MiB without a size).
    if (total && *total > 0) {
        int step = static_cast<int>(std::min(position, *total) * 10 / *total);
        if (step >= next_step_) {
            next_step_ = step + 1;
            std::string line = fmt::format("{}: {}% ({} of {}", label_, step * 10,
                                           format_bytes(std::min(position, *total)), format_bytes(*total));
            if (rate_ > 0) line += fmt::format(", {}/s", format_bytes(static_cast<std::uint64_t>(rate_)));
            sinks_.line(line + ")");
        }
    } else {
        int step = static_cast<int>(position / kUnknownStep);
        if (step >= next_step_) {
            next_step_ = step + 1;
            std::string line = fmt::format("{}: {}", label_, format_bytes(position));
            if (rate_ > 0) line += fmt::format(" ({}/s)", format_bytes(static_cast<std::uint64_t>(rate_)));
            sinks_.line(line);
        }
    }
}

void Progress::draw(std::uint64_t position, std::optional<std::uint64_t> total, Clock::time_point now) {
    sinks_.raw("\r" + progress_bar(position, total, rate_) + "\033[K");
    drawn_ = true;
    last_draw_ = now;
}

void Progress::clear() {
    if (mode_ == Mode::bar && drawn_) {
        sinks_.raw("\r\033[K");
        drawn_ = false;
    }
}

void Progress::finish() { clear(); }

}  // namespace aplspawn::image
