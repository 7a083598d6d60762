// The fleet's user: its group and account in the image's own /etc/group, /etc/gshadow,
// /etc/passwd and /etc/shadow (edited here, never with the host's useradd), passwords, a home
// directory (from /etc/skel when new) and the fleet's key in ~/.ssh/authorized_keys.
#include "fleet/provision_accounts.hpp"
#include "fleet/provision_password.hpp"
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

#include <ctime>

namespace aplspawn::fleet::detail {
namespace {

constexpr int kSkelDepth = 8;

// Copies the directories and regular files of /etc/skel/REL into home/REL, owned by the user.
void copy_skel(Step& s, const std::string& home, const sys::Owner& owner, const std::string& rel,
               int depth) {
    if (depth > kSkelDepth) return;
    const std::string from = "/etc/skel" + rel;
    for (const auto& name : s.root.list_dir(from)) {
        const std::string src = from + "/" + name, dst = home + rel + "/" + name;
        auto st = s.root.symlink_status(src);
        if (!st) continue;
        const mode_t mode = st->st_mode & 0777;
        if (S_ISDIR(st->st_mode)) {
            s.root.ensure_dir(dst, {mode, owner});
            copy_skel(s, home, owner, rel + "/" + name, depth + 1);
        } else if (S_ISREG(st->st_mode)) {
            if (auto content = s.root.read_file(src)) s.root.write_file(dst, *content, {mode, owner});
        }
    }
}

struct Databases {
    std::string passwd, group;
    std::optional<std::string> shadow, gshadow;
};

// Sets user's password to a hash of plain unless the current hash already matches it.
void set_password(Databases& db, std::string_view user, const std::string& plain, long days) {
    if (plain.empty()) return;
    auto entry = accounts::find_user(db.passwd, user);
    if (!entry)
        throw Error(fmt::format("set password of {}: no such user in /etc/passwd", user));
    if (entry->password != "x") db.passwd = *accounts::set_field(db.passwd, user, 1, "x");
    std::string shadow = db.shadow.value_or("");
    if (auto fields = accounts::find_fields(shadow, user)) {
        if (fields->size() > 1 && password::matches(plain, (*fields)[1])) return;
        shadow = *accounts::set_field(shadow, user, 1, password::hash(plain));
        shadow = *accounts::set_field(shadow, user, 2, std::to_string(days));
    } else {
        shadow = accounts::append_line(shadow, accounts::shadow_line(user, password::hash(plain), days));
    }
    db.shadow = std::move(shadow);
}

}  // namespace

void provision_user(Step& s) {
    const auto& user = s.spec.user;
    const auto& group_name = s.spec.group;
    const auto& root = s.root;

    Databases db;
    auto passwd = root.read_file("/etc/passwd");
    if (!passwd) throw Error("add user: the image has no /etc/passwd");
    db.passwd = *passwd;
    db.group = root.read_file("/etc/group").value_or("");
    db.shadow = root.read_file("/etc/shadow");
    db.gshadow = root.read_file("/etc/gshadow");
    const Databases before = db;

    const auto plan = with_context(fmt::format("add user {}", user), [&] {
        return accounts::plan_account(db.passwd, db.group, user, group_name);
    });
    const long days = accounts::days_since_epoch(static_cast<long long>(std::time(nullptr)));

    if (plan.create_group) {
        db.group = accounts::append_line(db.group, accounts::group_line(group_name, plan.gid));
        if (db.gshadow && !accounts::has_entry(*db.gshadow, group_name))
            db.gshadow = accounts::append_line(*db.gshadow, accounts::gshadow_line(group_name));
    }
    if (plan.add_to_group) {
        db.group = *accounts::add_member(db.group, group_name, user, 3);
        if (db.gshadow && accounts::has_entry(*db.gshadow, group_name))
            db.gshadow = *accounts::add_member(*db.gshadow, group_name, user, 3);
    }
    if (plan.create_user) {
        const std::string shell = root.is_executable("/bin/bash") ? "/bin/bash" : "/bin/sh";
        db.passwd = accounts::append_line(
            db.passwd, accounts::passwd_line({user, "x", plan.uid, plan.gid, "", plan.home, shell}));
        // "*": no password can match, but (unlike a locked "!") sshd still accepts the key.
        if (!accounts::has_entry(db.shadow.value_or(""), user))
            db.shadow = accounts::append_line(db.shadow.value_or(""),
                                              accounts::shadow_line(user, "*", days));
    }
    set_password(db, user, s.spec.user_password, days);
    set_password(db, "root", s.spec.root_password, days);

    // Groups first, so /etc/passwd never names a gid that does not exist yet.
    s.note(write_keeping_attrs(root, "/etc/group", db.group, {0644, {}}), "wrote /etc/group");
    if (db.gshadow && db.gshadow != before.gshadow)
        s.note(write_keeping_attrs(root, "/etc/gshadow", *db.gshadow, {0640, {}}),
               "wrote /etc/gshadow");
    s.note(write_keeping_attrs(root, "/etc/passwd", db.passwd, {0644, {}}), "wrote /etc/passwd");
    if (db.shadow && db.shadow != before.shadow) {
        // A new /etc/shadow: root:shadow 0640 as Debian has it (root-only without that group).
        auto shadow_group = accounts::find_group(db.group, "shadow");
        sys::FileAttrs attrs = shadow_group ? sys::FileAttrs{0640, {0, shadow_group->gid}}
                                            : sys::FileAttrs{0600, {}};
        s.note(write_keeping_attrs(root, "/etc/shadow", *db.shadow, attrs), "wrote /etc/shadow");
    }

    const sys::Owner owner{plan.uid, plan.gid};
    const std::string& home = plan.home;
    if (root.ensure_dir(home, {0700, owner}) == Change::changed) {
        s.note(Change::changed, fmt::format("created {}", home));
        copy_skel(s, home, owner, "", 0);
    } else if (auto st = root.status(home); st && (st->st_uid != owner.uid || st->st_gid != owner.gid)) {
        s.note(root.set_attrs(home, {static_cast<mode_t>(st->st_mode & 07777), owner}),
               fmt::format("chowned {}", home));
    }
    const std::string ssh_dir = home + "/.ssh";
    s.note(root.ensure_dir(ssh_dir, {0700, owner}), fmt::format("created {}", ssh_dir));
    s.note(root.set_attrs(ssh_dir, {0700, owner}), fmt::format("set owner and mode of {}", ssh_dir));
    const std::string keys = ssh_dir + "/authorized_keys";
    // Keys already there are kept only from a regular file: a symlink in the image (to
    // /etc/shadow, say) is replaced, and what it points at never lands in a file the user owns.
    std::optional<std::string> existing;
    if (auto st = root.symlink_status(keys); st && S_ISREG(st->st_mode)) existing = root.read_file(keys);
    s.note(root.write_file(keys, text::authorized_keys_with(existing.value_or(""), s.spec.authorized_key),
                           {0600, owner}),
           fmt::format("wrote {}", keys));
}

}  // namespace aplspawn::fleet::detail
