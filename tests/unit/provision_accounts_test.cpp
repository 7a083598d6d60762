// Pure edits of /etc/passwd, /etc/group, /etc/shadow, /etc/gshadow text (fleet/provision_accounts).
#include "fleet/provision_accounts.hpp"

#include <catch2/catch.hpp>

using namespace aplspawn;
using namespace aplspawn::fleet::accounts;

namespace {

// As in Debian bookworm's default image (trimmed).
const std::string kPasswd = "root:x:0:0:root:/root:/bin/bash\n"
                            "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                            "systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n"
                            "sshd:x:101:65534::/run/sshd:/usr/sbin/nologin\n";
const std::string kGroup = "root:x:0:\nsudo:x:27:\nshadow:x:42:\nnogroup:x:65534:\n"
                           "systemd-journal:x:999:\n";

}  // namespace

TEST_CASE("names safe for the account files and sudoers", "[provision][unit]") {
    CHECK(is_valid_name("test"));
    CHECK(is_valid_name("_svc-1"));
    CHECK_FALSE(is_valid_name(""));
    CHECK_FALSE(is_valid_name("1abc"));
    CHECK_FALSE(is_valid_name("Test"));
    CHECK_FALSE(is_valid_name("a:b"));
    CHECK_FALSE(is_valid_name("a\nb"));
    CHECK_FALSE(is_valid_name("a b"));
    CHECK_FALSE(is_valid_name("a.b"));
    CHECK_FALSE(is_valid_name(std::string(33, 'a')));
}

TEST_CASE("passwd and group lookups skip malformed lines", "[provision][unit]") {
    auto root = find_user(kPasswd, "root");
    REQUIRE(root);
    CHECK(root->uid == 0);
    CHECK(root->home == "/root");
    CHECK(root->shell == "/bin/bash");
    CHECK_FALSE(find_user(kPasswd, "roo"));
    CHECK_FALSE(find_user("bad:x:notanumber:0::/:/bin/sh\n", "bad"));
    CHECK_FALSE(find_user("short:x:1\n", "short"));

    auto g = find_group("wheel:x:10:alice,bob\n", "wheel");
    REQUIRE(g);
    CHECK(g->gid == 10);
    CHECK(g->members == std::vector<std::string>{"alice", "bob"});
    CHECK(used_ids(kPasswd) == std::set<unsigned>{0, 1, 101, 998, 65534});
}

TEST_CASE("a new user and group get the same free id from 1000", "[provision][unit]") {
    auto plan = plan_account(kPasswd, kGroup, "test", "test");
    CHECK(plan.create_user);
    CHECK(plan.create_group);
    CHECK_FALSE(plan.add_to_group);
    CHECK(plan.uid == 1000);
    CHECK(plan.gid == 1000);
    CHECK(plan.home == "/home/test");
}

TEST_CASE("ids are chosen free in the image's own files", "[provision][unit]") {
    // uid 1000 taken, gid 1001 taken: the first number free in both is 1002.
    std::string passwd = kPasswd + "debian:x:1000:1000::/home/debian:/bin/bash\n";
    std::string group = kGroup + "debian:x:1000:\nother:x:1001:\n";
    auto plan = plan_account(passwd, group, "test", "test");
    CHECK(plan.uid == 1002);
    CHECK(plan.gid == 1002);

    // Existing group: its gid; the user takes the first free uid.
    auto in_sudo = plan_account(passwd, group, "test", "sudo");
    CHECK_FALSE(in_sudo.create_group);
    CHECK(in_sudo.gid == 27);
    CHECK(in_sudo.uid == 1001);
}

TEST_CASE("an existing user keeps its uid and home and joins the group", "[provision][unit]") {
    std::string passwd = kPasswd + "test:x:1500:1500::/srv/test:/bin/sh\n";
    std::string group = kGroup + "test:x:1500:\n";
    auto same = plan_account(passwd, group, "test", "test");
    CHECK_FALSE(same.create_user);
    CHECK_FALSE(same.create_group);
    CHECK_FALSE(same.add_to_group);
    CHECK(same.uid == 1500);
    CHECK(same.home == "/srv/test");

    auto other = plan_account(passwd, group, "test", "ops");
    CHECK(other.create_group);
    CHECK(other.add_to_group);
    CHECK(other.uid == 1500);
    CHECK(other.gid == 1000);
}

TEST_CASE("a system account without a home is refused", "[provision][unit]") {
    CHECK_THROWS_WITH(plan_account(kPasswd, kGroup, "nobody", "nogroup"),
                      Catch::Contains("no usable home directory (/nonexistent)"));
    CHECK_THROWS_WITH(plan_account(kPasswd, kGroup, "systemd-network", "x"),
                      Catch::Contains("no usable home directory (/)"));
}

TEST_CASE("a full id range is an error, not a wrap-around", "[provision][unit]") {
    std::set<unsigned> all;
    for (unsigned i = 1000; i <= 59999; ++i) all.insert(i);
    CHECK_FALSE(first_free_id(all, {}));
    CHECK(first_free_id({1000, 1001}, {1002}) == 1003u);
    std::string group;
    for (unsigned i = 1000; i <= 59999; ++i) group += "g" + std::to_string(i) + ":x:" + std::to_string(i) + ":\n";
    CHECK_THROWS_WITH(plan_account(kPasswd, group, "test", "test"), Catch::Contains("no free gid"));
}

TEST_CASE("lines are added and edited, the rest kept byte for byte", "[provision][unit]") {
    CHECK(append_line("a:1", "b:2") == "a:1\nb:2\n");
    CHECK(append_line("", "b:2") == "b:2\n");
    CHECK(append_line("a:1\n", "b:2") == "a:1\nb:2\n");

    std::string shadow = "root:*:19000:0:99999:7:::\n# comment\nuser:!:19000:0:99999:7:::\n";
    auto edited = set_field(shadow, "user", 1, "$y$hash");
    REQUIRE(edited);
    CHECK(*edited == "root:*:19000:0:99999:7:::\n# comment\nuser:$y$hash:19000:0:99999:7:::\n");
    CHECK_FALSE(set_field(shadow, "nobody", 1, "x"));
    // A line with too few fields is padded.
    CHECK(set_field("u:x\n", "u", 3, "9") == std::optional<std::string>("u:x::9\n"));
    // No final newline: kept as it was.
    CHECK(set_field("a:1:2", "a", 1, "z") == std::optional<std::string>("a:z:2"));
}

TEST_CASE("group members are added once", "[provision][unit]") {
    std::string group = "root:x:0:\nops:x:1001:alice\n";
    auto once = add_member(group, "ops", "test", 3);
    REQUIRE(once);
    CHECK(*once == "root:x:0:\nops:x:1001:alice,test\n");
    CHECK(add_member(*once, "ops", "test", 3) == once);
    CHECK(add_member("ops:x:1001:\n", "ops", "test", 3) == std::optional<std::string>("ops:x:1001:test\n"));
    CHECK_FALSE(add_member(group, "nosuch", "test", 3));
    // "tester" being a member does not make "test" one.
    CHECK(add_member("ops:x:1:tester\n", "ops", "test", 3) ==
          std::optional<std::string>("ops:x:1:tester,test\n"));
}

TEST_CASE("new lines look like useradd's", "[provision][unit]") {
    CHECK(passwd_line({"test", "x", 1000, 1000, "", "/home/test", "/bin/bash"}) ==
          "test:x:1000:1000::/home/test:/bin/bash");
    CHECK(group_line("test", 1000) == "test:x:1000:");
    CHECK(gshadow_line("test") == "test:!::");
    CHECK(shadow_line("test", "*", 20000) == "test:*:20000:0:99999:7:::");
    CHECK(days_since_epoch(0) == 0);
    CHECK(days_since_epoch(86400LL * 20000 + 5) == 20000);
}
