// aplspawn-inventory: the fleet as an Ansible dynamic inventory script.
//   ansible -i /usr/bin/aplspawn-inventory aplspawned -m ping
// Ansible runs it with --list (and, never here since --list gives _meta, --host NAME). The
// config comes from $APLSPAWN_CONFIG, else aplspawn's usual places (docs/config.md).
#include "aplspawn/config.hpp"
#include "aplspawn/error.hpp"
#include "aplspawn/output.hpp"
#include "cli/operation.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <string>

namespace {

using namespace aplspawn;

constexpr const char* kUsage =
    "usage: aplspawn-inventory --list | --host NAME\n"
    "Ansible dynamic inventory of the aplspawn fleet (group aplspawned).\n"
    "Config: $APLSPAWN_CONFIG, else ./aplspawn.yaml, ./config/aplspawn.yaml,\n"
    "/etc/aplspawn/aplspawn.yaml.\n"
    "  ansible -i aplspawn-inventory aplspawned -m ping\n";

int usage(const std::string& problem) {
    std::cerr << "aplspawn-inventory: " << problem << "\n" << kUsage;
    return static_cast<int>(Exit::usage);
}

int run(int argc, char** argv) {
    cli::Options options;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--list") {
            options.list = true;
        } else if (arg == "--host" && i + 1 < argc) {  // Ansible's --host: one host's variables
            options.hostvars = argv[++i];
        } else if (arg.rfind("--host=", 0) == 0) {
            options.hostvars = arg.substr(7);
        } else if (arg == "-h" || arg == "--help") {
            std::cout << kUsage;
            return 0;
        } else {
            return usage("unexpected argument " + arg);
        }
    }
    if (options.list == !options.hostvars.empty()) return usage("give exactly one of --list, --host NAME");

    out::configure({out::Verbosity::quiet, false});  // stdout is JSON; stderr only for failures
    try {
        config::Config cfg = config::load(config::locate(std::nullopt));
        cli::place_this_machine(cfg, options, *cli::find_operation("inventory"));  // a fleet with hosts
        return static_cast<int>(cli::run_inventory(cli::Context{cfg, options}));
    } catch (const Error& e) {
        std::cerr << "aplspawn-inventory: " << e.message() << "\n";
        return static_cast<int>(e.exit_code());
    }
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "aplspawn-inventory: internal error: " << e.what() << "\n";
        return static_cast<int>(Exit::failed);
    }
}
