// Where the configuration file is, and how paths inside it resolve.
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>

namespace aplspawn::config {
namespace {

fs::path home_of(std::string_view user) {
    if (user.empty()) {
        if (const char* home = std::getenv("HOME"); home && *home) return home;
        if (const passwd* pw = ::getpwuid(::getuid())) return pw->pw_dir;
        return "/";
    }
    if (const passwd* pw = ::getpwnam(std::string(user).c_str())) return pw->pw_dir;
    return {};
}

}  // namespace

fs::path resolve_path(std::string_view text, const fs::path& base) {
    fs::path p;
    if (!text.empty() && text[0] == '~') {
        size_t slash = text.find('/');
        std::string_view user = text.substr(1, slash == std::string_view::npos ? text.npos : slash - 1);
        fs::path home = home_of(user);
        if (home.empty()) {
            p = fs::path(text);  // "~nosuchuser/x": a literal relative path, as the shell would
        } else {
            p = home;
            if (slash != std::string_view::npos) p /= text.substr(slash + 1);
        }
    } else {
        p = fs::path(text);
    }
    if (p.is_relative()) p = base / p;
    p = p.lexically_normal();
    // "dir/" normalises to "dir/": drop the empty trailing element so names compare equal.
    if (p.has_relative_path() && p.filename().empty()) p = p.parent_path();
    return p;
}

fs::path locate(const std::optional<fs::path>& explicit_file) {
    if (explicit_file) {
        if (!fs::exists(*explicit_file))
            throw Error::usage(fmt::format("config file {} does not exist", explicit_file->string()));
        return fs::absolute(*explicit_file);
    }
    if (const char* env = std::getenv("APLSPAWN_CONFIG"); env && *env) {
        if (!fs::exists(env))
            throw Error::usage(
                fmt::format("config file {} (from $APLSPAWN_CONFIG) does not exist", env));
        return fs::absolute(env);
    }
    for (const char* candidate :
         {"aplspawn.yaml", "config/aplspawn.yaml", "/etc/aplspawn/aplspawn.yaml"})
        if (fs::exists(candidate)) return fs::absolute(candidate);
    throw Error::usage(
        "no config file: give -c FILE or $APLSPAWN_CONFIG, or create ./aplspawn.yaml, "
        "./config/aplspawn.yaml or /etc/aplspawn/aplspawn.yaml");
}

}  // namespace aplspawn::config
