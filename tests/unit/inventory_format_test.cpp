// The inventory model and its renderings, without Ansible (tests/integration/
// inventory_ansible_test.cpp reads every format back with Ansible itself).
#include "aplspawn/fleet/provision.hpp"
#include "aplspawn/inventory/format.hpp"
#include "aplspawn/inventory/inventory.hpp"
#include "aplspawn/sys/fs.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

using namespace aplspawn;
namespace fs = std::filesystem;

namespace {

struct Scratch {
    fs::path dir;
    Scratch() {
        std::string t = (fs::temp_directory_path() / "aplinv.XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()));
        dir = t;
    }
    ~Scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

config::Config fleet_config(const fs::path& dir, int amount = 2) {
    return config::parse(fmt::format(R"(
bridge: {{name: b0, address: 10.0.0.1, netPrefix: 24}}
path: {{workingDirectory: {0}/work}}
image: {{url: "file:///srv/debian-bookworm-latest.img"}}
cntVariables: {{userName: deploy, sshPublicKeyPath: keys/fleet.pub}}
cntCommon:
  amount: {1}
  sshPrivateKeyPath: keys/fleet
  ipRange: [10.0.0.10, 10.0.0.20]
  homePath: {0}/machines
)",
                                     dir.string(), amount),
                         dir / "fleet.yaml");
}

void make_executable(const fs::path& p, mode_t mode = 0755) {
    fs::create_directories(p.parent_path());
    sys::write_file_atomic(p, "#!/bin/sh\n", mode);
}

}  // namespace

TEST_CASE("shell_quote quotes exactly like Python's shlex.quote", "[inventory]") {
    CHECK(inventory::shell_quote("/var/lib/aplspawn/fleet_key") == "/var/lib/aplspawn/fleet_key");
    CHECK(inventory::shell_quote("a=b,c:d@e%f+g") == "a=b,c:d@e%f+g");
    CHECK(inventory::shell_quote("") == "''");
    CHECK(inventory::shell_quote("-o A=1 -o B=2") == "'-o A=1 -o B=2'");
    CHECK(inventory::shell_quote("it's") == "'it'\"'\"'s'");
    CHECK(inventory::shell_quote("a#b") == "'a#b'");  // shlex treats # as a comment
    CHECK(inventory::shell_quote("$HOME") == "'$HOME'");
}

TEST_CASE("ssh_common_args: fleet known_hosts, strict checking, quoted for ssh and shlex",
          "[inventory]") {
    CHECK(inventory::ssh_common_args("/var/lib/aplspawn/state/known_hosts") ==
          "-o UserKnownHostsFile=/var/lib/aplspawn/state/known_hosts "
          "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes");
    // ssh splits option values at blanks and expands %-tokens: quoted and %% for ssh, then
    // single-quoted for Ansible's shlex split.
    CHECK(inventory::ssh_common_args("/a b/%h/known_hosts") ==
          "-o UserKnownHostsFile='\"/a b/%%h/known_hosts\"' "
          "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes");
}

TEST_CASE("inventory from config: one host per container, absolute key, fleet known_hosts",
          "[inventory]") {
    Scratch s;
    auto c = fleet_config(s.dir, 3);
    auto inv = inventory::from_config(c);
    CHECK(inv.group == "aplspawned");
    REQUIRE(inv.hosts.size() == 3);
    CHECK(inv.hosts[0].name == "aplspawn10");
    CHECK(inv.hosts[2].name == "aplspawn12");
    CHECK(inv.hosts[2].address == "10.0.0.12");
    CHECK(inv.hosts[0].user == "deploy");
    // relative key paths resolve against the config file's directory
    CHECK(inv.hosts[0].private_key == (s.dir / "keys/fleet").string());
    CHECK(inv.hosts[0].ssh_common_args ==
          inventory::ssh_common_args(s.dir / "work/state/known_hosts"));
    // nothing mounted, no image: the interpreter is unknown and left out
    CHECK(inv.hosts[0].python_interpreter.empty());
    for (const auto& [k, v] : inv.hosts[0].vars()) CHECK(k != "ansible_python_interpreter");
    CHECK(inv.find("aplspawn11") == &inv.hosts[1]);
    CHECK(inv.find("aplspawn13") == nullptr);
}

TEST_CASE("aplspawn_networks: each host's addresses on the other networks, in every format",
          "[inventory][networks]") {
    Scratch s;
    auto c = config::parse(fmt::format(R"(
bridge: {{name: b0, address: 10.0.0.1, netPrefix: 24}}
path: {{workingDirectory: {0}/work}}
image: {{url: "file:///srv/debian-bookworm-latest.img"}}
cntVariables: {{userName: deploy, sshPublicKeyPath: keys/fleet.pub}}
cntCommon: {{sshPrivateKeyPath: keys/fleet, homePath: {0}/machines}}
networks:
  backend: {{bridge: b1, address: 10.1.0.1, netPrefix: 24}}
groups:
  web: {{amount: 1, ipRange: [10.0.0.10, 10.0.0.20]}}
  db:
    amount: 1
    ipRange: [10.0.0.30, 10.0.0.40]
    networks: {{backend: [10.1.0.30, 10.1.0.40]}}
)",
                                       s.dir.string()),
                           s.dir / "fleet.yaml");
    auto inv = inventory::from_config(c);
    const auto* db = inv.find("db30");
    REQUIRE(db);
    CHECK(db->address == "10.0.0.30");  // ansible_host: the main network
    auto vars = db->all_vars();
    CHECK(vars["aplspawn_networks"] == nlohmann::ordered_json{{"backend", "10.1.0.30"}});
    CHECK(inv.find("web10")->all_vars()["aplspawn_networks"] == nlohmann::ordered_json::object());
    CHECK_THAT(inventory::to_ini(inv), Catch::Contains("aplspawn_networks=\"{'backend': '10.1.0.30'}\""));
    CHECK_THAT(inventory::to_ini(inv), Catch::Contains("aplspawn_networks=\"{}\""));
    CHECK(inventory::to_json(inv)["all"]["children"]["aplspawned"]["children"]["db"]["hosts"]["db30"]
              ["aplspawn_networks"]["backend"] == "10.1.0.30");
    CHECK_THAT(inventory::to_yaml(inv), Catch::Contains("aplspawn_networks:\n") && Catch::Contains("backend: \"10.1.0.30\""));
    CHECK((*inventory::dynamic_host(inv, "db30"))["aplspawn_networks"]["backend"] == "10.1.0.30");
    // Without a networks section the variable is not there at all.
    auto plain = inventory::from_config(fleet_config(s.dir, 1));
    for (const auto& [k, v] : plain.hosts[0].facts) CHECK(k != "aplspawn_networks");
}

TEST_CASE("python interpreter: known from the container root, else the image's lower layer",
          "[inventory]") {
    Scratch s;
    auto c = fleet_config(s.dir, 2);
    // The image (lower layer) has python3 as a relative symlink, as Debian ships it.
    fs::path lower = s.dir / "work/lower/debian-bookworm-latest";
    make_executable(lower / "usr/bin/python3.11");
    fs::create_symlink("python3.11", lower / "usr/bin/python3");
    // aplspawn11's merged root exists but is empty (overlay not mounted): falls back to the image.
    fs::create_directories(s.dir / "machines/aplspawn11");
    auto inv = inventory::from_config(c);
    CHECK(inv.hosts[0].python_interpreter == "/usr/bin/python3");
    CHECK(inv.hosts[1].python_interpreter == "/usr/bin/python3");
    CHECK(inv.hosts[1].vars().back() ==
          std::pair<std::string, std::string>{"ansible_python_interpreter", "/usr/bin/python3"});
}

TEST_CASE("python_in_root resolves inside the root and wants an executable file", "[inventory]") {
    Scratch s;
    fs::path root = s.dir / "root";
    fs::create_directories(root / "usr/bin");
    CHECK(inventory::python_in_root(root) == "");
    CHECK(inventory::python_in_root(s.dir / "missing") == "");

    // An absolute symlink means the root's own /opt/py, not the host's.
    make_executable(root / "opt/py");
    fs::create_symlink("/opt/py", root / "usr/bin/python3");
    CHECK(inventory::python_in_root(root) == "/usr/bin/python3");
    fs::remove(root / "usr/bin/python3");

    // A symlink to a host file that is not in the root finds nothing (no escape by ../..).
    make_executable(s.dir / "host-python");
    fs::create_symlink("../../../host-python", root / "usr/bin/python3");
    CHECK(inventory::python_in_root(root) == "");
    fs::remove(root / "usr/bin/python3");

    // Not executable, or a directory: not an interpreter.
    make_executable(root / "usr/bin/python3", 0644);
    CHECK(inventory::python_in_root(root) == "");
    fs::remove(root / "usr/bin/python3");
    fs::create_directories(root / "usr/bin/python3");
    CHECK(inventory::python_in_root(root) == "");
}

TEST_CASE("python_in_root prefers aplspawn's Python for Ansible, which needs python3", "[inventory]") {
    Scratch s;
    fs::path root = s.dir / "root";
    const fs::path ours = root / std::string(fleet::kAnsiblePython).substr(1);
    make_executable(ours);
    CHECK(inventory::python_in_root(root) == "");  // it runs /usr/bin/python3, which is missing
    make_executable(root / "usr/bin/python3");
    CHECK(inventory::python_in_root(root) == fleet::kAnsiblePython);
    fs::permissions(ours, fs::perms::owner_read);
    CHECK(inventory::python_in_root(root) == "/usr/bin/python3");
}

TEST_CASE("INI: group [aplspawned], one line per host in name order", "[inventory]") {
    inventory::Inventory inv;
    inv.hosts.push_back({"web10", "10.0.0.10", "u", "/k", "-o A=1", ""});
    inv.hosts.push_back({"web11", "10.0.0.11", "u", "/my keys/k", "-o A=1", "/usr/bin/python3"});
    CHECK(inventory::to_ini(inv) ==
          "# Ansible inventory of the aplspawn fleet (generated by aplspawn; do not edit)\n"
          "[aplspawned]\n"
          "web10 ansible_host=10.0.0.10 ansible_user=u ansible_ssh_private_key_file=/k "
          "ansible_ssh_common_args='-o A=1'\n"
          "web11 ansible_host=10.0.0.11 ansible_user=u ansible_ssh_private_key_file='/my keys/k' "
          "ansible_ssh_common_args='-o A=1' ansible_python_interpreter=/usr/bin/python3\n");
}

TEST_CASE("JSON and dynamic --list/--host shapes", "[inventory]") {
    inventory::Inventory inv;
    inv.hosts.push_back({"web10", "10.0.0.10", "u", "/k", "-o A=1", ""});
    auto j = inventory::to_json(inv);
    CHECK(j["all"]["children"]["aplspawned"]["hosts"]["web10"]["ansible_host"] == "10.0.0.10");
    CHECK_FALSE(j["all"]["children"]["aplspawned"]["hosts"]["web10"].contains(
        "ansible_python_interpreter"));
    auto list = inventory::dynamic_list(inv);
    CHECK(list["_meta"]["hostvars"]["web10"]["ansible_user"] == "u");
    CHECK(list["aplspawned"]["hosts"] == nlohmann::ordered_json::array({"web10"}));
    CHECK(list["all"]["children"] == nlohmann::ordered_json::array({"aplspawned"}));
    REQUIRE(inventory::dynamic_host(inv, "web10"));
    CHECK((*inventory::dynamic_host(inv, "web10"))["ansible_ssh_private_key_file"] == "/k");
    CHECK_FALSE(inventory::dynamic_host(inv, "web11"));
    CHECK(inventory::parse_format("yaml") == inventory::Format::yaml);
    CHECK_THROWS_AS(inventory::parse_format("toml"), Error);
}

TEST_CASE("YAML: every value a double-quoted string, an empty fleet still valid", "[inventory]") {
    inventory::Inventory inv;
    inv.hosts.push_back({"10", "10.0.0.10", "u", "/k", "-o A=1", ""});
    std::string y = inventory::to_yaml(inv);
    CHECK(y.find("\"10\":") != std::string::npos);  // a host named 10 stays a string key
    CHECK(y.find("ansible_user: \"u\"") != std::string::npos);
    inventory::Inventory empty;
    CHECK(inventory::to_yaml(empty).find("hosts: {}") != std::string::npos);
}

TEST_CASE("inventory file: written atomically, unchanged when it already holds the text",
          "[inventory]") {
    Scratch s;
    fs::path f = s.dir / "inventory.ini";
    CHECK(inventory::write_file(f, "[aplspawned]\n") == Change::changed);
    CHECK(sys::read_file(f) == "[aplspawned]\n");
    CHECK(inventory::write_file(f, "[aplspawned]\n") == Change::unchanged);
    CHECK(inventory::write_file(f, "[aplspawned]\nx\n") == Change::changed);
    CHECK(sys::read_file(f) == "[aplspawned]\nx\n");
}

TEST_CASE("the fleet group's vars: pipelining on, in every format, overridable by a group's vars",
          "[inventory]") {
    Scratch s;
    auto c = fleet_config(s.dir, 1);
    auto inv = inventory::from_config(c);
    CHECK(inv.vars == nlohmann::ordered_json({{"ansible_pipelining", true}}));
    std::string ini = inventory::to_ini(inv);
    CHECK(ini.ends_with("\n[aplspawned:vars]\nansible_pipelining=True\n"));
    CHECK(inventory::to_json(inv)["all"]["children"]["aplspawned"]["vars"]["ansible_pipelining"] == true);
    CHECK(inventory::to_yaml(inv).find("vars:\n        ansible_pipelining: true") != std::string::npos);
    CHECK(inventory::dynamic_list(inv)["aplspawned"]["vars"]["ansible_pipelining"] == true);
}

TEST_CASE("inventory: a group's limits are host vars (numbers), none without resources",
          "[inventory][resources]") {
    Scratch s;
    auto c = config::parse(fmt::format(R"(
bridge: {{name: b0, address: 10.0.0.1, netPrefix: 24}}
path: {{workingDirectory: {0}/work}}
image: {{url: "file:///srv/debian-bookworm-latest.img"}}
cntVariables: {{userName: deploy, sshPublicKeyPath: keys/fleet.pub}}
cntCommon: {{sshPrivateKeyPath: keys/fleet}}
groups:
  db:
    amount: 1
    ipRange: [10.0.0.10, 10.0.0.20]
    resources: {{memory: 1G, cpus: 1, tasks: 512}}
  web:
    amount: 1
    ipRange: [10.0.0.20, 10.0.0.30]
)",
                                       s.dir.string()),
                           s.dir / "fleet.yaml");
    auto inv = inventory::from_config(c);
    auto db = inv.find("db10")->all_vars();
    CHECK(db["aplspawn_memory_mb"] == 1024);
    CHECK(db["aplspawn_cpus"] == 1);
    CHECK(db["aplspawn_memory_mb"].is_number());
    auto web = inv.find("web20")->all_vars();
    CHECK_FALSE(web.contains("aplspawn_memory_mb"));
    CHECK_FALSE(web.contains("aplspawn_cpus"));
    // INI: the Python literal in quotes, as every fact (Ansible's shlex split drops the quotes,
    // literal_eval then makes it an integer).
    CHECK(inventory::to_ini(inv).find("aplspawn_memory_mb=\"1024\"") != std::string::npos);
}
