// Pure text of the files provisioning writes (fleet/provision_text) and password hashes.
#include "fleet/provision_password.hpp"
#include "fleet/provision_text.hpp"

#include <catch2/catch.hpp>

#include <set>

using namespace aplspawn;
using namespace aplspawn::fleet;

namespace {
Ipv4 ip(const char* s) { return *Ipv4::parse(s); }
const std::string kKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9QGRlV10jLKYGxup8HHE88TEJqVAqgO/lEwcYs8eSD";
}  // namespace

TEST_CASE("hosts: the name on its IP and 127.0.1.1, after localhost", "[provision][unit]") {
    const std::string debian = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
                               "ff02::1\t\tip6-allnodes\n";
    std::string once = text::hosts_with(debian, "aplspawn10", ip("10.10.12.10"));
    CHECK(once == "127.0.0.1\tlocalhost\n10.10.12.10\taplspawn10\n127.0.1.1\taplspawn10\n"
                  "::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\n");
    // Idempotent: the same text again.
    CHECK(text::hosts_with(once, "aplspawn10", ip("10.10.12.10")) == once);
}

TEST_CASE("hosts: an image's 127.0.1.1 line and a stale address are replaced in place", "[provision][unit]") {
    const std::string hosts = "# static table\n127.0.0.1 localhost\n127.0.1.1 debian\n"
                              "10.0.0.9 aplspawn10\n192.168.1.1 router # keep\n";
    std::string r = text::hosts_with(hosts, "aplspawn10", ip("10.10.12.10"));
    CHECK(r == "# static table\n127.0.0.1 localhost\n10.10.12.10\taplspawn10\n127.0.1.1\taplspawn10\n"
               "192.168.1.1 router # keep\n");
    CHECK(text::hosts_with("", "n", ip("10.0.0.2")) == "10.0.0.2\tn\n127.0.1.1\tn\n");
}

TEST_CASE("machine-id: only 32 lower-case hex digits count", "[provision][unit]") {
    CHECK_FALSE(text::is_valid_machine_id(""));
    CHECK_FALSE(text::is_valid_machine_id("uninitialized\n"));
    CHECK_FALSE(text::is_valid_machine_id(std::string(32, '0')));
    CHECK_FALSE(text::is_valid_machine_id("0123456789ABCDEF0123456789abcdef"));
    CHECK(text::is_valid_machine_id("0123456789abcdef0123456789abcdef\n"));
    std::set<std::string> ids;
    for (int i = 0; i < 50; ++i) {
        auto id = text::new_machine_id();
        CHECK(text::is_valid_machine_id(id));
        CHECK(id[12] == '4');  // UUID version 4
        ids.insert(id);
    }
    CHECK(ids.size() == 50);
}

TEST_CASE("sudoers: the drop-in and the includedir check", "[provision][unit]") {
    CHECK(text::sudoers_dropin("test").ends_with("\ntest ALL=(ALL:ALL) NOPASSWD: ALL\n"));
    CHECK(text::sudoers_dropin_name("test") == "aplspawn-test");
    CHECK(text::sudoers_dropin_name("a.b") == "aplspawn-a_b");  // sudo skips names with '.'
    CHECK(text::sudoers_includes_dropins("root ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"));
    CHECK(text::sudoers_includes_dropins("#includedir /etc/sudoers.d\n"));
    CHECK_FALSE(text::sudoers_includes_dropins("# includedir /etc/sudoers.d\n"));
    CHECK_FALSE(text::sudoers_includes_dropins("#includedir /etc/other\n"));
    CHECK_FALSE(text::sudoers_includes_dropins(""));
}

TEST_CASE("authorized_keys: each key once, compared by type and key", "[provision][unit]") {
    CHECK(text::public_key_id(kKey + " user@host") == kKey);
    CHECK(text::public_key_id("from=\"10.0.0.1\" " + kKey) == kKey);
    CHECK_FALSE(text::public_key_id("# " + kKey));
    CHECK_FALSE(text::public_key_id("not a key"));
    CHECK_FALSE(text::public_key_id(""));

    std::string once = text::authorized_keys_with("", kKey + " me@laptop\n");
    CHECK(once == kKey + " me@laptop\n");
    CHECK(text::authorized_keys_with(once, kKey + " me@laptop\n") == once);
    CHECK(text::authorized_keys_with(once, kKey + " renamed-comment") == once);
    // Other lines are kept; a missing final newline is added before the new key.
    CHECK(text::authorized_keys_with("# mine\nssh-rsa AAAAB3NzaC1yc2EAAAADAQAB x", kKey) ==
          "# mine\nssh-rsa AAAAB3NzaC1yc2EAAAADAQAB x\n" + kKey + "\n");
}

TEST_CASE("resolv.conf: nameservers and systemd-resolved's stub", "[provision][unit]") {
    CHECK(text::resolv_conf_for(ip("1.1.1.1")).ends_with("\nnameserver 1.1.1.1\n"));
    const std::string stub = "# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
    CHECK(text::is_resolved_stub(stub));
    CHECK(text::nameservers(stub) == std::vector<std::string>{"127.0.0.53"});
    CHECK_FALSE(text::is_resolved_stub("nameserver 10.0.0.1\nnameserver 8.8.8.8 # second\n"));
    CHECK(text::nameservers("nameserver 10.0.0.1\n ; nameserver 9.9.9.9\nnameserver 8.8.8.8 # x\n") ==
          std::vector<std::string>{"10.0.0.1", "8.8.8.8"});
}

TEST_CASE("networkd files: host0 with gateway and DNS, another network's interface without",
          "[provision][unit]") {
    auto f = text::networkd_interface("host0", ip("10.10.12.10"), 26, ip("10.10.12.1"), std::nullopt);
    CHECK(f.find("[Match]\nName=host0\n") != std::string::npos);
    CHECK(f.find("Address=10.10.12.10/26\nGateway=10.10.12.1\n") != std::string::npos);
    CHECK(f.find("DNS=") == std::string::npos);
    CHECK(f.find("DHCP=no") != std::string::npos);
    CHECK(f.find("KeepConfiguration=static\n") != std::string::npos);
    auto d = text::networkd_interface("host0", ip("10.10.12.10"), 26, ip("10.10.12.1"), ip("9.9.9.9"));
    CHECK(d.find("DNS=9.9.9.9\n") != std::string::npos);
    auto b = text::networkd_interface("backend", ip("10.20.0.30"), 24, std::nullopt, std::nullopt);
    CHECK(b.find("[Match]\nName=backend\n") != std::string::npos);
    CHECK(b.find("Address=10.20.0.30/24\n") != std::string::npos);
    CHECK(b.find("Gateway=") == std::string::npos);
    CHECK(b.find("KeepConfiguration=static\n") != std::string::npos);
    CHECK(text::networkd_file("backend") == "10-aplspawn-backend.network");
    CHECK(text::is_networkd_file("10-aplspawn-host0.network"));
    CHECK_FALSE(text::is_networkd_file("10-aplspawn-.network"));
    CHECK_FALSE(text::is_networkd_file("80-container-host0.network"));
}

TEST_CASE("the provisioning record round-trips", "[provision][unit]") {
    text::Record r{"aplspawn10", "0123456789abcdef0123456789abcdef", {kKey, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB"},
                   {"console-getty.service"}, {"systemd-getty-generator"}};
    CHECK(text::parse_record(text::format_record(r)) == r);
    CHECK(text::format_record(r).find("\nmasked-generator systemd-getty-generator\n") != std::string::npos);
    // A record written before generators were masked reads back with none.
    CHECK(text::parse_record("hostname x\nmasked console-getty.service\n").masked_generators.empty());
    CHECK(text::parse_record("") == text::Record{});
    CHECK(text::parse_record("garbage\nhostname x\n").hostname == "x");
}

TEST_CASE("passwords: yescrypt with a random salt, verified against any hash", "[provision][unit]") {
    auto h1 = password::hash("s3cret pass");
    auto h2 = password::hash("s3cret pass");
    CHECK(h1.starts_with("$y$"));
    CHECK(h1 != h2);  // salted
    CHECK(h1.find("s3cret") == std::string::npos);
    CHECK(password::matches("s3cret pass", h1));
    CHECK(password::matches("s3cret pass", h2));
    CHECK_FALSE(password::matches("s3cret pas", h1));
    CHECK_FALSE(password::matches("s3cret pass", "*"));
    CHECK_FALSE(password::matches("s3cret pass", "!"));
    CHECK_FALSE(password::matches("", ""));
    // A SHA-512 hash made by `openssl passwd -6 -salt abcdefgh test` is recognised too.
    const char* sha512 = "$6$abcdefgh$3rj1vTLX64btReFsM4MQ22otcD40l7vbtw7qCyr0dxc4kxNmgx53xVM8gWiLYbCqTHTbXFaVFU7ZT28pnvdyu0";
    CHECK(password::matches("test", sha512));
    CHECK_FALSE(password::matches("tesT", sha512));
}

TEST_CASE("hosts_without: a snapshot's /etc/hosts loses the container's lines and the fleet block",
          "[provision][unit]") {
    const std::string debian = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n";
    std::string mine = text::hosts_with(debian, "golden10", ip("10.10.12.10"));
    mine += "192.168.7.7 mirror.local\n";  // a line the playbook added stays
    mine = text::hosts_with(mine, "golden10", ip("10.10.12.10"),
                            {{"golden10", ip("10.10.12.10")}, {"web11", ip("10.10.12.11")}});
    REQUIRE(mine.find("web11") != std::string::npos);
    std::string out = text::hosts_without(mine, "golden10", ip("10.10.12.10"));
    CHECK(out == "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
                 "192.168.7.7 mirror.local\n");
    // A container made from the snapshot gets its own lines back, as from any image.
    CHECK(text::hosts_with(out, "gold30", ip("10.10.12.30")).find("10.10.12.30\tgold30\n") !=
          std::string::npos);
}
