// argv -> operation. Parses the command line, finds and loads the config, runs the operation,
// prints an error once and turns it into the exit code. Nothing else happens here.
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/output.hpp"
#include "cli/operation.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>

namespace {

using namespace aplspawn;

constexpr const char* kExitCodes =
    "Exit codes:\n"
    "  0  done: every step and check succeeded\n"
    "  1  an operation or a check failed (the message names it)\n"
    "  2  bad command line or configuration (the message names file:line and key)\n"
    "\n"
    "Config: -c FILE, else $APLSPAWN_CONFIG, else ./aplspawn.yaml, ./config/aplspawn.yaml,\n"
    "/etc/aplspawn/aplspawn.yaml. See aplspawn(1) and docs/config.md.";

int usage_error(const std::string& message) {
    std::cerr << "aplspawn: " << message << "\n";
    return static_cast<int>(Exit::usage);
}

struct Parsed {
    const cli::Operation* op = nullptr;
    cli::Options options;
    out::Verbosity verbosity = out::Verbosity::normal;
};

// Checks that the options given make sense for the operation chosen.
std::optional<std::string> check_options(const cli::Operation& op, const cli::Options& o,
                                         const CLI::App& app) {
    auto given = [&](const char* name) { return app.get_option(name)->count() > 0; };
    if (o.dry_run && !op.changes_host)
        return fmt::format("--dry-run applies to operations that change the host, not {}", op.name);
    if (o.json && !op.prints_data)
        return fmt::format("--json applies to names, pids, list, status, inventory and images, not {}", op.name);
    if (o.force && op.name != "netdown" && op.name != "snapshot" && op.name != "images" &&
        op.name != "cleanup")
        return fmt::format("--force applies to netdown, snapshot, images and cleanup --images, not {}",
                           op.name);
    if (o.images && op.name != "cleanup") return fmt::format("--images applies to cleanup, not {}", op.name);
    if (!o.remove.empty() && op.name != "images")
        return fmt::format("--remove applies to images, not {}", op.name);
    if ((given("--format") || o.list || !o.hostvars.empty() || o.direct || !o.known_hosts.empty()) &&
        op.name != "inventory")
        return fmt::format("--format, --list, --hostvars, --direct and --known-hosts apply to inventory, not {}",
                           op.name);
    if (o.timeout_sec && op.name != "spawn" && op.name != "stop")
        return fmt::format("--timeout applies to spawn and stop, not {}", op.name);
    if (o.summary && op.name != "status") return fmt::format("--summary applies to status, not {}", op.name);
    if (!o.targets.empty() && !op.takes_targets)
        return fmt::format("{} acts on the whole fleet and takes no group or container names "
                           "(given: {}){}",
                           op.name, fmt::join(o.targets, " "),
                           op.name == "inventory" ? "; Ansible's --limit picks hosts" : "");
    if (o.json && given("--format")) return "--json and --format exclude each other";
    return std::nullopt;
}

int run(int argc, char** argv) {
    CLI::App app{"aplspawn: a fleet of SSH-reachable systemd-nspawn containers from one YAML file",
                 "aplspawn"};
    app.set_version_flag("--version", std::string("aplspawn ") + APLSPAWN_VERSION);
    app.footer(kExitCodes);
    app.require_subcommand(0, 1);

    Parsed p;
    cli::Options& o = p.options;
    std::string op_name;
    std::string config_file;
    std::vector<std::string> names;
    for (const auto& op : cli::operations()) names.emplace_back(op.name);

    app.add_option("-c,--config", config_file, "configuration file (YAML)");
    app.add_option("-o,--operation", op_name, "operation to run, as in the original: -o spawn")
        ->check(CLI::IsMember(names));
    bool verbose_flag = false, quiet_flag = false;
    auto* verbose = app.add_flag("-v,--verbose", verbose_flag, "print more about each step");
    auto* quiet = app.add_flag("-q,--quiet", quiet_flag, "print only failures (and data)");
    verbose->excludes(quiet);
    app.add_flag("--json", o.json, "machine-readable output (names, pids, list, status, inventory, images)");
    app.add_flag("--dry-run", o.dry_run, "print what would change, change nothing");
    app.add_flag("--force", o.force,
                 "netdown: proceed even while containers run; snapshot: replace an image of that "
                 "name; images --remove, cleanup --images: also images in use");
    app.add_flag("--images", o.images, "cleanup: also remove the image store");
    app.add_option("--format", o.format, "inventory: ini (default), yaml or json")
        ->check(CLI::IsMember({"ini", "yaml", "json"}));
    app.add_flag("--list", o.list, "inventory: Ansible dynamic inventory --list");
    app.add_option("--hostvars", o.hostvars, "inventory: Ansible dynamic inventory --host NAME");
    app.add_option("--host", o.host,
                   "a fleet with hosts: which host this machine is (default: the one whose address it has)");
    app.add_flag("--direct", o.direct,
                 "inventory of a fleet with hosts: reach containers directly, not through their host (ProxyJump)");
    app.add_option("--known-hosts", o.known_hosts,
                   "inventory: the known_hosts file Ansible checks host keys against (default: the fleet's)");
    app.add_option("--timeout", o.timeout_sec, "spawn/stop: seconds to wait (overrides config)")
        ->check(CLI::Range(1, 3600));
    app.add_flag("--summary", o.summary, "status: one line per container and the totals");
    app.add_option("--remove", o.remove, "images: take the image NAME out of the store");
    constexpr const char* kTargets = "groups or containers to act on (default: the whole fleet)";
    app.add_option("targets", o.targets, kTargets);

    for (const auto& op : cli::operations()) {
        auto* sub = app.add_subcommand(std::string(op.name), std::string(op.summary));
        sub->fallthrough();
        if (op.takes_targets) sub->add_option("targets", o.targets, kTargets);
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return usage_error(fmt::format("{} (see aplspawn --help)", e.what()));
    }

    auto subs = app.get_subcommands();
    std::string sub_name = subs.empty() ? "" : subs.front()->get_name();
    if (!op_name.empty() && !sub_name.empty() && op_name != sub_name)
        return usage_error(fmt::format("two operations given: -o {} and {}", op_name, sub_name));
    if (op_name.empty()) op_name = sub_name;
    if (op_name.empty())
        return usage_error("no operation: give -o OP or OP, one of: " + fmt::format("{}", fmt::join(names, " ")) +
                           " (see aplspawn --help)");
    p.op = cli::find_operation(op_name);
    if (auto problem = check_options(*p.op, o, app)) return usage_error(*problem);
    if (!config_file.empty()) o.config_file = config_file;

    p.verbosity = verbose_flag ? out::Verbosity::verbose
                  : quiet_flag ? out::Verbosity::quiet
                               : out::Verbosity::normal;
    out::configure({p.verbosity, out::color_wanted(STDERR_FILENO)});

    const cli::Operation& op = *p.op;
    try {
        config::Config cfg = config::load(config::locate(o.config_file));
        for (const auto& note : cfg.notes) out::info(note);
        // A group named like an operation would be read as that operation on the command line.
        for (const auto& g : cfg.groups)
            if (cli::find_operation(g->name))
                throw Error::usage(fmt::format("{}: group {} has the name of an aplspawn operation: "
                                               "rename the group",
                                               cfg.where("groups." + g->name), g->name));
        cli::place_this_machine(cfg, o, op);
        if (op.needs_root && ::geteuid() != 0 && !o.dry_run) {
            out::fail(fmt::format("aplspawn {} changes the host and must run as root", op.name));
            return static_cast<int>(Exit::failed);
        }
        return static_cast<int>(op.run(cli::Context{cfg, o}));
    } catch (const Error& e) {
        if (e.exit_code() == Exit::usage)
            std::cerr << "aplspawn: " << e.message() << "\n";
        else
            out::fail(e.message());
        return static_cast<int>(e.exit_code());
    }
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);  // a closed stdout pipe is an EPIPE error, not a silent death
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "aplspawn: internal error: " << e.what() << "\n";
        return static_cast<int>(Exit::failed);
    }
}
