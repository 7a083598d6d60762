// The download progress display: sizes and durations, the bar, a line every 10% when stderr is
// not a terminal, nothing when quiet.
#include "aplspawn/image/progress.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace aplspawn::image;
using namespace std::chrono_literals;

TEST_CASE("sizes and durations read like a download tool's", "[image]") {
    CHECK(format_bytes(0) == "0 B");
    CHECK(format_bytes(1023) == "1023 B");
    CHECK(format_bytes(1536) == "1.5 KiB");
    CHECK(format_bytes(512ull << 20) == "512.0 MiB");
    CHECK(format_bytes(5ull << 20) == "5.00 MiB");
    CHECK(format_bytes((5ull << 30) / 4) == "1.25 GiB");
    CHECK(format_duration(7s) == "0:07");
    CHECK(format_duration(750s) == "12:30");
    CHECK(format_duration(3723s) == "1:02:03");
}

TEST_CASE("the bar shows percent, bytes, rate and ETA", "[image]") {
    std::string bar = progress_bar(50ull << 20, 100ull << 20, 10.0 * (1 << 20));
    CHECK(bar.starts_with(" 50% [##########          ]"));
    CHECK(bar.find("50.0 MiB / 100.0 MiB") != std::string::npos);
    CHECK(bar.find("10.0 MiB/s") != std::string::npos);
    CHECK(bar.find("ETA 0:05") != std::string::npos);
    CHECK(progress_bar(0, 100, 0).find("ETA") == std::string::npos);  // no rate yet: no ETA
    CHECK(progress_bar(3ull << 20, std::nullopt, 1 << 20) == "3.00 MiB  1.00 MiB/s");
    CHECK(bar.size() < 80);
}

TEST_CASE("without a terminal: one line per 10% step, resumed steps skipped", "[image]") {
    std::vector<std::string> lines;
    Progress p("Downloading x.img", Progress::Mode::lines,
               {[](std::string_view) { FAIL("no bar without a terminal"); },
                [&](std::string_view l) { lines.emplace_back(l); }});
    auto t = Progress::Clock::time_point{};
    const std::uint64_t total = 1000;
    p.start(350, total, t);  // resumed at 35%
    for (std::uint64_t pos = 360; pos <= total; pos += 10) p.update(pos, total, t += 10ms);
    REQUIRE(lines.size() == 7);  // 40% .. 100%
    CHECK(lines.front().starts_with("Downloading x.img: 40% (400 B of 1000 B"));
    CHECK(lines.back().starts_with("Downloading x.img: 100% (1000 B of 1000 B"));
    CHECK(lines.back().find("B/s") != std::string::npos);  // the rate, once measured
}

TEST_CASE("without a size: a line every 100 MiB", "[image]") {
    std::vector<std::string> lines;
    Progress p("Downloading x.img", Progress::Mode::lines, {{}, [&](std::string_view l) { lines.emplace_back(l); }});
    auto t = Progress::Clock::time_point{};
    p.start(0, std::nullopt, t);
    for (std::uint64_t pos = 0; pos <= (350ull << 20); pos += 1 << 20) p.update(pos, std::nullopt, t += 1ms);
    CHECK(lines.size() == 3);
}

TEST_CASE("on a terminal: the bar is redrawn in place at most ten times a second", "[image]") {
    std::string raw;
    int draws = 0;
    {
        Progress p("x", Progress::Mode::bar, {[&](std::string_view s) { raw += s; ++draws; }, {}});
        auto t = Progress::Clock::time_point{};
        p.start(0, 1000, t);
        for (int i = 1; i <= 1000; ++i) p.update(static_cast<std::uint64_t>(i), 1000, t += 1ms);  // 1 s
        CHECK(draws <= 13);  // start, ~10 redraws, the final 100%
        CHECK(raw.find("100% [####################]") != std::string::npos);
        p.clear();
        CHECK(raw.ends_with("\r\033[K"));
    }
    CHECK(raw.find("\r") == 0);
}

TEST_CASE("quiet: no progress at all", "[image]") {
    Progress p("x", Progress::Mode::off,
               {[](std::string_view) { FAIL("drawn"); }, [](std::string_view) { FAIL("printed"); }});
    p.start(0, 100);
    for (std::uint64_t i = 0; i <= 100; ++i) p.update(i, 100);
    p.finish();
}
