#include "aplspawn/output.hpp"

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

namespace aplspawn::out {
namespace {

Settings g_settings;
std::mutex g_mutex;

constexpr std::string_view kBullet = "\u2023 ";  // ‣

struct Tag {
    std::string_view label;
    std::string_view color;
};

Tag tag_of(Kind kind) {
    switch (kind) {
    case Kind::ok: return {"[ OK ] ", "\033[0;1;92m"};
    case Kind::fail: return {"[ FAIL ] ", "\033[0;1;31m"};
    case Kind::info: return {"[ INFO ] ", "\033[1;33m"};
    case Kind::plan: return {"[ PLAN ] ", "\033[0;1;36m"};
    case Kind::debug: return {"", "\033[0;2m"};
    }
    return {"", ""};
}

bool visible(Kind kind) {
    switch (g_settings.verbosity) {
    case Verbosity::quiet: return kind == Kind::fail || kind == Kind::plan;
    case Verbosity::normal: return kind != Kind::debug;
    case Verbosity::verbose: return true;
    }
    return true;
}

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(fd, s.data(), s.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // stderr gone: nothing sensible left to do
        }
        s.remove_prefix(static_cast<size_t>(n));
    }
}

}  // namespace

void configure(const Settings& settings) { g_settings = settings; }
const Settings& settings() { return g_settings; }

bool is_terminal(int fd) { return ::isatty(fd) == 1; }

bool color_wanted(int fd) {
    const char* no_color = std::getenv("NO_COLOR");
    if (no_color && *no_color) return false;
    const char* term = std::getenv("TERM");
    if (term && std::strcmp(term, "dumb") == 0) return false;
    return is_terminal(fd);
}

std::string format(const Line& line, bool color) {
    Tag tag = tag_of(line.kind);
    std::string s(kBullet);
    if (color) {
        if (!tag.label.empty()) {
            s += tag.color;
            s += tag.label.substr(0, tag.label.size() - 1);
            s += "\033[0m ";
            s += line.text;
        } else {
            s += tag.color;
            s += line.text;
            s += "\033[0m";
        }
    } else {
        s += tag.label;
        s += line.text;
    }
    s += '\n';
    return s;
}

void print(const Line& line) {
    if (!visible(line.kind)) return;
    std::string s = format(line, g_settings.color);
    std::lock_guard lock(g_mutex);
    write_all(STDERR_FILENO, s);
}

void print(const std::vector<Line>& lines) {
    std::string all;
    for (const Line& l : lines)
        if (visible(l.kind)) all += format(l, g_settings.color);
    std::lock_guard lock(g_mutex);
    write_all(STDERR_FILENO, all);
}

void separator() {
    if (g_settings.verbosity == Verbosity::quiet) return;
    std::string s(kBullet);
    s += g_settings.color ? "\033[0;1;34m***\033[0m\n" : "***\n";
    std::lock_guard lock(g_mutex);
    write_all(STDERR_FILENO, s);
}

}  // namespace aplspawn::out
