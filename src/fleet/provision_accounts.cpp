#include "fleet/provision_accounts.hpp"

#include "aplspawn/config.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

namespace aplspawn::fleet::accounts {
namespace {

// Calls f(line, begin, end) for every line of text (without its newline).
template <class F>
void for_each_line(std::string_view text, F&& f) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        size_t end = nl == std::string_view::npos ? text.size() : nl;
        f(text.substr(pos, end - pos), pos, end);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
}

std::optional<unsigned> parse_id(std::string_view s) {
    unsigned v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string_view first_field(std::string_view line) { return line.substr(0, line.find(':')); }

// Replaces the first line whose first field is name with replace(fields); nullopt if none.
template <class F>
std::optional<std::string> edit_line(std::string_view text, std::string_view name, F&& replace) {
    std::optional<std::string> out;
    for_each_line(text, [&](std::string_view line, size_t begin, size_t end) {
        if (out || line.find(':') == std::string_view::npos || first_field(line) != name) return;
        auto fields = split_fields(line);
        std::string updated = replace(std::move(fields));
        out = std::string(text.substr(0, begin)) + updated + std::string(text.substr(end));
    });
    return out;
}

}  // namespace

bool is_valid_name(std::string_view name) { return config::is_valid_user_name(name); }

std::vector<std::string> split_fields(std::string_view line) {
    std::vector<std::string> fields;
    while (true) {
        size_t colon = line.find(':');
        fields.emplace_back(line.substr(0, colon));
        if (colon == std::string_view::npos) break;
        line.remove_prefix(colon + 1);
    }
    return fields;
}

std::string join_fields(const std::vector<std::string>& fields) {
    std::string out;
    for (size_t i = 0; i < fields.size(); ++i) {
        if (i) out += ':';
        out += fields[i];
    }
    return out;
}

std::optional<PasswdEntry> find_user(std::string_view passwd, std::string_view name) {
    std::optional<PasswdEntry> found;
    for_each_line(passwd, [&](std::string_view line, size_t, size_t) {
        if (found || first_field(line) != name) return;
        auto f = split_fields(line);
        if (f.size() != 7) return;
        auto uid = parse_id(f[2]), gid = parse_id(f[3]);
        if (!uid || !gid) return;
        found = PasswdEntry{f[0], f[1], *uid, *gid, f[4], f[5], f[6]};
    });
    return found;
}

std::optional<GroupEntry> find_group(std::string_view group, std::string_view name) {
    std::optional<GroupEntry> found;
    for_each_line(group, [&](std::string_view line, size_t, size_t) {
        if (found || first_field(line) != name) return;
        auto f = split_fields(line);
        if (f.size() != 4) return;
        auto gid = parse_id(f[2]);
        if (!gid) return;
        GroupEntry e{f[0], f[1], *gid, {}};
        std::string_view m = f[3];
        while (!m.empty()) {
            size_t comma = m.find(',');
            if (auto member = m.substr(0, comma); !member.empty()) e.members.emplace_back(member);
            if (comma == std::string_view::npos) break;
            m.remove_prefix(comma + 1);
        }
        found = std::move(e);
    });
    return found;
}

std::optional<std::vector<std::string>> find_fields(std::string_view text, std::string_view name) {
    std::optional<std::vector<std::string>> found;
    for_each_line(text, [&](std::string_view line, size_t, size_t) {
        if (!found && line.find(':') != std::string_view::npos && first_field(line) == name)
            found = split_fields(line);
    });
    return found;
}

bool has_entry(std::string_view text, std::string_view name) {
    return find_fields(text, name).has_value();
}

std::set<unsigned> used_ids(std::string_view text) {
    std::set<unsigned> ids;
    for_each_line(text, [&](std::string_view line, size_t, size_t) {
        auto f = split_fields(line);
        if (f.size() >= 3)
            if (auto id = parse_id(f[2])) ids.insert(*id);
    });
    return ids;
}

std::optional<unsigned> first_free_id(const std::set<unsigned>& a, const std::set<unsigned>& b,
                                      unsigned first, unsigned last) {
    for (unsigned id = first; id <= last; ++id)
        if (!a.contains(id) && !b.contains(id)) return id;
    return std::nullopt;
}

std::string append_line(std::string_view text, std::string_view line) {
    std::string out(text);
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += line;
    out += '\n';
    return out;
}

std::optional<std::string> set_field(std::string_view text, std::string_view name, size_t index,
                                     std::string_view value) {
    return edit_line(text, name, [&](std::vector<std::string> f) {
        if (f.size() <= index) f.resize(index + 1);
        f[index] = value;
        return join_fields(f);
    });
}

std::optional<std::string> add_member(std::string_view text, std::string_view group,
                                      std::string_view user, size_t index) {
    return edit_line(text, group, [&](std::vector<std::string> f) {
        if (f.size() <= index) f.resize(index + 1);
        std::string_view m = f[index];
        bool member = false;
        while (!m.empty()) {
            size_t comma = m.find(',');
            if (m.substr(0, comma) == user) member = true;
            if (comma == std::string_view::npos) break;
            m.remove_prefix(comma + 1);
        }
        if (!member) f[index] += (f[index].empty() ? "" : ",") + std::string(user);
        return join_fields(f);
    });
}

std::string passwd_line(const PasswdEntry& e) {
    return fmt::format("{}:{}:{}:{}:{}:{}:{}", e.name, e.password, e.uid, e.gid, e.gecos, e.home,
                       e.shell);
}

std::string group_line(std::string_view name, unsigned gid) {
    return fmt::format("{}:x:{}:", name, gid);
}

std::string gshadow_line(std::string_view name) { return fmt::format("{}:!::", name); }

std::string shadow_line(std::string_view name, std::string_view password, long days) {
    return fmt::format("{}:{}:{}:0:99999:7:::", name, password, days);
}

AccountPlan plan_account(std::string_view passwd, std::string_view group, std::string_view user,
                         std::string_view group_name) {
    AccountPlan plan;
    const auto uids = used_ids(passwd);
    const auto gids = used_ids(group);
    const auto existing_user = find_user(passwd, user);
    const auto existing_group = find_group(group, group_name);

    if (existing_group) {
        plan.gid = existing_group->gid;
    } else {
        plan.create_group = true;
        // A new user takes the same number as its new group when both are free.
        auto id = existing_user ? first_free_id(gids, {}) : first_free_id(uids, gids);
        if (!id) id = first_free_id(gids, {});
        if (!id)
            throw Error(fmt::format("add group {}: no free gid between 1000 and 59999 in the "
                                    "image's /etc/group",
                                    group_name));
        plan.gid = *id;
    }

    if (existing_user) {
        plan.uid = existing_user->uid;
        plan.add_to_group = existing_user->gid != plan.gid;
        const std::string& home = existing_user->home;
        if (home.empty() || home.front() != '/' || home == "/" || home == "/nonexistent")
            throw Error(fmt::format("user {} exists in the image with no usable home directory "
                                    "({}): choose another cntVariables.userName",
                                    user, home.empty() ? "none" : home));
        plan.home = home;
    } else {
        plan.create_user = true;
        if (plan.create_group && !uids.contains(plan.gid))
            plan.uid = plan.gid;
        else if (auto id = first_free_id(uids, {}))
            plan.uid = *id;
        else
            throw Error(fmt::format("add user {}: no free uid between 1000 and 59999 in the "
                                    "image's /etc/passwd",
                                    user));
        plan.home = fmt::format("/home/{}", user);
    }
    return plan;
}

long days_since_epoch(long long unix_seconds) { return static_cast<long>(unix_seconds / 86400); }

}  // namespace aplspawn::fleet::accounts
