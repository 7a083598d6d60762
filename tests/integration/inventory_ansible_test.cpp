// Every inventory format read back by Ansible itself (Debian's ansible-core): INI piped on stdin,
// the inventoryFile, YAML and JSON files, and aplspawn-inventory as a dynamic inventory script.
// The expected values are written out here, not taken from aplspawn's own code.
#include "support/testing.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace aplspawn;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

fs::path inventory_binary() { return testing::aplspawn_binary().parent_path() / "aplspawn-inventory"; }

// Ansible needs a writable home for its temp files: the test's own directory, so nothing is left.
std::vector<std::string> ansible_env(const fs::path& home) {
    return {"HOME=" + home.string(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP=" + (home / "tmp").string()};
}

json ansible_inventory(const std::vector<std::string>& args, const fs::path& home,
                       std::vector<std::string> env = {}, std::string input = "") {
    std::vector<std::string> argv{"ansible-inventory"};
    argv.insert(argv.end(), args.begin(), args.end());
    sys::RunOptions o;
    o.env = ansible_env(home);
    o.env.insert(o.env.end(), env.begin(), env.end());
    o.input = std::move(input);
    o.timeout = std::chrono::seconds(60);
    auto r = sys::run(argv, o);
    INFO(r.err);
    REQUIRE(r.ok());
    // A source Ansible could not parse is only a warning: make it a failure.
    CHECK(r.err.find("WARNING") == std::string::npos);
    return json::parse(r.out);
}

struct Fleet {
    testing::TempDir tmp;
    fs::path dir;  // has a blank, a quote, a '#' and a '%' in its name
    fs::path config;
    Fleet(int amount, std::string_view extra = "") {
        dir = tmp.path() / "it's a #fleet %h";
        fs::create_directories(dir);
        config = dir / "aplspawn.yaml";
        // base_config's paths are plain YAML scalars, where " #" starts a comment: quoted here.
        testing::write_file(config, fmt::format(R"(bridge: {{name: apltest0, address: 10.77.0.1, netPrefix: 24}}
path: {{workingDirectory: "{0}/work"}}
image: {{os: debian, release: bookworm, repo: "{0}/repo"}}
cntVariables: {{userName: test, sshPublicKeyPath: "{0}/key.pub"}}
cntCommon:
  amount: {1}
  sshPrivateKeyPath: "{0}/key"
  ipRange: [10.77.0.10, 10.77.0.100]
  homePath: "{0}/machines"
{2})",
                                                dir.string(), amount, extra));
    }
    std::string key() const { return (dir / "key").string(); }
    std::string known_hosts() const { return (dir / "work/state/known_hosts").string(); }
};

// What Ansible must have understood for container NAME at IP.
void check_host(const json& hostvars, const Fleet& f, const std::string& name, const std::string& ip) {
    INFO(name);
    REQUIRE(hostvars.contains(name));
    const json& h = hostvars.at(name);
    CHECK(h.at("ansible_host") == ip);
    CHECK(h.at("ansible_user") == "test");
    CHECK(h.at("ansible_ssh_private_key_file") == f.key());
    CHECK_FALSE(h.contains("ansible_python_interpreter"));  // no image here: not known

    // Ansible splits ansible_ssh_common_args with shlex and hands the words to ssh: ssh must
    // then use exactly the fleet's known_hosts with strict checking.
    std::string args = h.at("ansible_ssh_common_args");
    auto split = sys::run_checked(
        {"python3", "-c", "import shlex,sys; print('\\0'.join(shlex.split(sys.argv[1])), end='')", args});
    std::vector<std::string> argv{"ssh", "-G"};
    std::string words = split.out;
    for (size_t pos = 0;;) {
        size_t nul = words.find('\0', pos);
        argv.push_back(words.substr(pos, nul - pos));
        if (nul == std::string::npos) break;
        pos = nul + 1;
    }
    argv.push_back(ip);
    auto g = sys::run_checked(argv);
    CHECK(g.out.find("\nuserknownhostsfile " + f.known_hosts() + "\n") != std::string::npos);
    CHECK(g.out.find("\nstricthostkeychecking true\n") != std::string::npos);
}

void check_fleet(const json& inv, const Fleet& f) {
    REQUIRE(inv.contains("aplspawned"));
    CHECK(inv["aplspawned"]["hosts"] == json::array({"aplspawn10", "aplspawn11", "aplspawn12"}));
    check_host(inv["_meta"]["hostvars"], f, "aplspawn10", "10.77.0.10");
    check_host(inv["_meta"]["hostvars"], f, "aplspawn12", "10.77.0.12");
}

}  // namespace

TEST_CASE("inventory INI piped to Ansible on stdin", "[inventory]") {
    Fleet f(3);
    auto out = testing::aplspawn({"-c", f.config.string(), "-o", "inventory"});
    INFO(out.err);
    REQUIRE(out.ok());
    CHECK(out.err.empty());  // no inventoryFile: nothing on stderr, data only on stdout
    auto inv = ansible_inventory({"-i", "/dev/stdin", "--list"}, f.tmp.path(),
                                 {"ANSIBLE_INVENTORY_ENABLED=ini"}, out.out);
    check_fleet(inv, f);
}

TEST_CASE("inventory file written with cntCommon.inventoryFile, read by Ansible", "[inventory]") {
    Fleet f(3, "  inventoryFile: inv/fleet.ini\n");
    fs::create_directories(f.dir / "inv");
    auto out = testing::aplspawn({"-c", f.config.string(), "inventory"});
    INFO(out.err);
    REQUIRE(out.ok());
    fs::path file = f.dir / "inv/fleet.ini";
    CHECK(out.err == "‣ [ OK ] Generated ansible inventory file " + file.string() + "\n");
    CHECK(sys::read_file(file) == out.out);
    check_fleet(ansible_inventory({"-i", file.string(), "--list"}, f.tmp.path()), f);

    // Idempotent: the second run says so; --format yaml still writes INI to the file.
    auto again = testing::aplspawn({"-c", f.config.string(), "inventory", "--format", "yaml"});
    CHECK(again.err == "‣ [ OK ] Generated ansible inventory file " + file.string() + " (already so)\n");
    // The dynamic protocol never writes files.
    fs::remove(file);
    auto list = testing::aplspawn({"-c", f.config.string(), "inventory", "--list"});
    CHECK(list.ok());
    CHECK_FALSE(fs::exists(file));
}

TEST_CASE("inventory YAML and JSON files read by Ansible's yaml plugin", "[inventory]") {
    Fleet f(3);
    for (auto [args, name] : {std::pair<std::vector<std::string>, std::string>{{"--format", "yaml"}, "fleet.yaml"},
                              {{"--format", "json"}, "fleet.json"},
                              {{"--json"}, "fleet2.json"}}) {
        std::vector<std::string> argv{"-c", f.config.string(), "inventory"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto out = testing::aplspawn(argv);
        INFO(name << ": " << out.err);
        REQUIRE(out.ok());
        testing::write_file(f.tmp / name, out.out);
        check_fleet(ansible_inventory({"-i", (f.tmp / name).string(), "--list"}, f.tmp.path(),
                                      {"ANSIBLE_INVENTORY_ENABLED=yaml"}),
                    f);
    }
}

TEST_CASE("aplspawn-inventory as a dynamic inventory script (APLSPAWN_CONFIG)", "[inventory]") {
    Fleet f(3);
    std::string cfg = "APLSPAWN_CONFIG=" + f.config.string();
    check_fleet(ansible_inventory({"-i", inventory_binary().string(), "--list"}, f.tmp.path(),
                                  {cfg, "ANSIBLE_INVENTORY_ENABLED=script"}),
                f);
    auto host = ansible_inventory({"-i", inventory_binary().string(), "--host", "aplspawn11"},
                                  f.tmp.path(), {cfg, "ANSIBLE_INVENTORY_ENABLED=script"});
    CHECK(host.at("ansible_host") == "10.77.0.11");

    // The script's own answers: --host, an unknown host, bad arguments, a broken config.
    sys::RunOptions o;
    o.env = {cfg};
    auto h = sys::run({inventory_binary().string(), "--host", "aplspawn12"}, o);
    REQUIRE(h.ok());
    CHECK(json::parse(h.out).at("ansible_host") == "10.77.0.12");
    auto unknown = sys::run({inventory_binary().string(), "--host", "aplspawn99"}, o);
    CHECK(unknown.exit_code == 1);
    CHECK(unknown.out.empty());
    CHECK(unknown.err.find("aplspawn99") != std::string::npos);
    auto none = sys::run({inventory_binary().string()}, o);
    CHECK(none.exit_code == 2);
    testing::write_file(f.dir / "broken.yaml", "bridge: {\n");
    o.env = {"APLSPAWN_CONFIG=" + (f.dir / "broken.yaml").string()};
    auto broken = sys::run({inventory_binary().string(), "--list"}, o);
    CHECK(broken.exit_code == 2);
    CHECK(broken.out.empty());
    CHECK(broken.err.find("broken.yaml:") != std::string::npos);
}

namespace {

// A fleet of two groups whose vars need every type INI, YAML and JSON must carry alike.
constexpr std::string_view kGroups = R"(groups:
  web:
    amount: 2
    ipRange: [10.77.0.10, 10.77.0.20]
    vars:
      http_port: 8080
      quoted_port: "8080"
      enabled: yes
      yes_text: "yes"
      ratio: 1.5
      nothing: ~
      tags: [a, 2, true]
      nested: {k: {deep: v}}
      tricky: "it's \"quoted\", a back\\slash, caf\u00e9 # not a comment"
      multi: "two\nlines"
  db:
    amount: 1
    ipRange: [10.77.0.30, 10.77.0.40]
    nameTmpl: database
    userName: dbadmin
    networks:
      backend: [10.78.1.30, 10.78.1.40]
      storage: [10.78.2.30, 10.78.2.40]
networks:
  backend: {bridge: aplback0, address: 10.78.1.1, netPrefix: 24}
  storage: {bridge: aplstor0, address: 10.78.2.1, netPrefix: 24, nat: true}
)";

// Ansible's view, normalized: children lists sorted and the empty "ungrouped" dropped (the INI
// plugin adds it, the YAML plugin does not).
json normalized(json inv) {
    if (inv.contains("all") && inv["all"].contains("children")) {
        auto& ch = inv["all"]["children"];
        json kept = json::array();
        for (const auto& c : ch)
            if (c != "ungrouped") kept.push_back(c);
        std::sort(kept.begin(), kept.end());
        ch = kept;
    }
    inv.erase("ungrouped");
    return inv;
}

}  // namespace

TEST_CASE("inventory of groups: Ansible reads the same groups, hosts and vars from every format",
          "[inventory]") {
    Fleet f(0, "");
    // This fleet has groups: replace cntCommon's amount and ipRange with them.
    std::string text = sys::read_file(f.config);
    text.replace(text.find("  amount: 0\n"), 12, "");
    text.replace(text.find("  ipRange: [10.77.0.10, 10.77.0.100]\n"), 37, "");
    testing::write_file(f.config, text + std::string(kGroups));

    auto run_inventory = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"-c", f.config.string(), "inventory"});
        auto out = testing::aplspawn(args);
        INFO(out.err);
        REQUIRE(out.ok());
        return out.out;
    };
    std::vector<std::pair<std::string, json>> views;
    views.emplace_back("ini (stdin)",
                       ansible_inventory({"-i", "/dev/stdin", "--list"}, f.tmp.path(),
                                         {"ANSIBLE_INVENTORY_ENABLED=ini"}, run_inventory({})));
    for (auto [format, file] : {std::pair{"yaml", "g.yaml"}, std::pair{"json", "g.json"}}) {
        testing::write_file(f.tmp / file, run_inventory({"--format", format}));
        views.emplace_back(format, ansible_inventory({"-i", (f.tmp / file).string(), "--list"},
                                                     f.tmp.path(), {"ANSIBLE_INVENTORY_ENABLED=yaml"}));
    }
    views.emplace_back("dynamic", ansible_inventory({"-i", inventory_binary().string(), "--list"},
                                                    f.tmp.path(),
                                                    {"APLSPAWN_CONFIG=" + f.config.string(),
                                                     "ANSIBLE_INVENTORY_ENABLED=script"}));

    // What Ansible must have understood, written out here.
    const json& ini = views.front().second;
    CHECK(normalized(ini)["all"]["children"] == json::array({"aplspawned"}));
    CHECK((ini["aplspawned"]["children"] == json::array({"db", "web"}) ||
           ini["aplspawned"]["children"] == json::array({"web", "db"})));
    CHECK(ini["web"]["hosts"] == json::array({"web10", "web11"}));
    CHECK(ini["db"]["hosts"] == json::array({"database30"}));
    const json& web10 = ini["_meta"]["hostvars"]["web10"];
    CHECK(web10["http_port"] == 8080);
    CHECK(web10["quoted_port"] == "8080");
    CHECK(web10["enabled"] == true);
    CHECK(web10["yes_text"] == "yes");
    CHECK(web10["ratio"] == 1.5);
    CHECK(web10["nothing"].is_null());
    CHECK(web10["tags"] == json::array({"a", 2, true}));
    CHECK(web10["nested"]["k"]["deep"] == "v");
    CHECK(web10["tricky"] == "it's \"quoted\", a back\\slash, caf\u00e9 # not a comment");
    CHECK(web10["multi"] == "two\nlines");
    CHECK(web10["aplspawn_group"] == "web");
    CHECK(web10["aplspawn_image"] == "debian-bookworm-latest");
    check_host(ini["_meta"]["hostvars"], f, "web11", "10.77.0.11");
    const json& db = ini["_meta"]["hostvars"]["database30"];
    CHECK(db["ansible_user"] == "dbadmin");
    CHECK(db["aplspawn_group"] == "db");
    CHECK(db["ansible_host"] == "10.77.0.30");  // the main network
    CHECK(db["aplspawn_networks"] == json{{"backend", "10.78.1.30"}, {"storage", "10.78.2.30"}});
    CHECK(web10["aplspawn_networks"] == json::object());
    CHECK_FALSE(db.contains("http_port"));  // web's vars are web's

    // Every format: the same, as Ansible reads it.
    for (const auto& [name, view] : views) {
        INFO(name);
        CHECK(normalized(view) == normalized(ini));
    }
}
