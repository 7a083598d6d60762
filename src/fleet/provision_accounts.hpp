// Pure text transforms of the account databases inside a container: /etc/passwd, /etc/group,
// /etc/shadow, /etc/gshadow. Each function takes a file's text and returns the new text; lines
// it does not touch are kept byte for byte. No I/O (see provision_user.cpp for that).
#pragma once

#include "aplspawn/error.hpp"

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace aplspawn::fleet::accounts {

struct PasswdEntry {
    std::string name;
    std::string password;  // "x": see /etc/shadow
    unsigned uid = 0;
    unsigned gid = 0;
    std::string gecos;
    std::string home;
    std::string shell;
};

struct GroupEntry {
    std::string name;
    std::string password;
    unsigned gid = 0;
    std::vector<std::string> members;
};

// A user or group name safe to write into these files and sudoers: 1-32 bytes of lower-case
// letters, digits, '_' and '-', not starting with a digit or '-' (the config's own rule).
bool is_valid_name(std::string_view name);

// Fields of one colon-separated line (no trailing newline).
std::vector<std::string> split_fields(std::string_view line);
std::string join_fields(const std::vector<std::string>& fields);

// Lookups by the first field; malformed lines (wrong field count, non-numeric ids) are skipped.
std::optional<PasswdEntry> find_user(std::string_view passwd, std::string_view name);
std::optional<GroupEntry> find_group(std::string_view group, std::string_view name);
// Whether a line whose first field is name exists (any of the four files).
bool has_entry(std::string_view text, std::string_view name);
// The fields of the first line whose first field is name.
std::optional<std::vector<std::string>> find_fields(std::string_view text, std::string_view name);

// The numbers in the third field of every line (uids of passwd, gids of group).
std::set<unsigned> used_ids(std::string_view text);

// Smallest id in [first, last] in neither set; nullopt when the range is full.
std::optional<unsigned> first_free_id(const std::set<unsigned>& a, const std::set<unsigned>& b,
                                      unsigned first = 1000, unsigned last = 59999);

// text with line appended (a missing final newline of text is added first).
std::string append_line(std::string_view text, std::string_view line);

// Sets field `index` (0-based) of the line whose first field is name; nullopt when there is no
// such line. A line with fewer fields is padded with empty ones.
std::optional<std::string> set_field(std::string_view text, std::string_view name, size_t index,
                                     std::string_view value);

// Adds user to the comma-separated member list in field `index` of group's line (3 in
// /etc/group and /etc/gshadow); the text unchanged when already a member; nullopt when there is
// no such group.
std::optional<std::string> add_member(std::string_view text, std::string_view group,
                                      std::string_view user, size_t index);

std::string passwd_line(const PasswdEntry& e);
std::string group_line(std::string_view name, unsigned gid);
std::string gshadow_line(std::string_view name);
// "name:PASSWORD:DAYS:0:99999:7:::" as useradd writes it; password "*" = no password login.
std::string shadow_line(std::string_view name, std::string_view password, long days);

// What must happen so that `user` exists in `group_name` (both created when missing).
struct AccountPlan {
    unsigned uid = 0;
    unsigned gid = 0;             // the group's gid
    bool create_group = false;
    bool create_user = false;
    bool add_to_group = false;    // an existing user whose primary group is another one
    std::string home;             // the existing user's home, else /home/USER
};

// Decides ids from the image's own files: a new user and a new group get the same number when
// it is free in both (the user-private-group convention), else the first free ones from 1000.
// Throws Error when no id is free, or when an existing user has no usable home directory.
AccountPlan plan_account(std::string_view passwd, std::string_view group, std::string_view user,
                         std::string_view group_name);

// Days since 1970-01-01 (the shadow file's unit) of a unix time.
long days_since_epoch(long long unix_seconds);

}  // namespace aplspawn::fleet::accounts
