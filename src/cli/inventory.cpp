// inventory: the fleet for Ansible on stdout. INI (group [aplspawned], as the original) by
// default, --format yaml|json (--json = json), or Ansible's dynamic inventory protocol
// (--list, --host NAME). With cntCommon.inventoryFile the INI text is also written there
// atomically. Needs no root and no running fleet.
#include "aplspawn/inventory/format.hpp"
#include "aplspawn/inventory/inventory.hpp"
#include "aplspawn/output.hpp"
#include "cli/operation.hpp"

#include <fmt/format.h>

#include <iostream>

namespace aplspawn::cli {

namespace {

Exit print(std::string_view text) {
    std::cout << text;
    std::cout.flush();
    if (!std::cout) throw Error("inventory: write to stdout failed");
    return Exit::ok;
}

}  // namespace

Exit run_inventory(const Context& ctx) {
    const Options& o = ctx.options;
    const config::Config& c = ctx.config;
    inventory::Inventory inv = inventory::from_config(c, {o.known_hosts, o.direct});

    if (o.list || !o.hostvars.empty()) {  // the dynamic protocol: JSON, no side effects
        if (o.list && !o.hostvars.empty()) throw Error::usage("inventory: --list and --hostvars exclude each other");
        if (o.format != "ini") throw Error::usage("inventory: --list and --hostvars print JSON; --format does not apply");
        if (o.list) return print(inventory::dynamic_list(inv).dump(2) + "\n");
        auto vars = inventory::dynamic_host(inv, o.hostvars);
        if (!vars)
            throw Error(fmt::format("inventory --hostvars {}: no container of that name in the fleet "
                                    "(aplspawn -o names lists them)",
                                    o.hostvars));
        return print(vars->dump(2) + "\n");
    }

    auto format = o.json ? inventory::Format::json : inventory::parse_format(o.format);
    std::string text = inventory::render(inv, format);
    print(text);

    if (!c.inventory_file.empty()) {
        const auto& file = c.inventory_file;
        std::string ini = format == inventory::Format::ini ? text : inventory::to_ini(inv);
        Change change = with_context(fmt::format("write inventory file {}", file.string()),
                                     [&] { return inventory::write_file(file, ini); });
        std::string title = "Generated ansible inventory file " + file.string();
        out::ok(change == Change::changed ? title : title + std::string(out::already_so));
    }
    return Exit::ok;
}

}  // namespace aplspawn::cli
