#include "aplspawn/sys/sd_bus.hpp"

#include <cstring>

namespace aplspawn::sys {

std::string BusError::describe(int r) const {
    if (is_set() && error_.message && *error_.message) return error_.message;
    if (is_set() && error_.name) return error_.name;
    return std::strerror(r < 0 ? -r : r);
}

Bus open_system_bus() {
    sd_bus* bus = nullptr;
    int r = sd_bus_open_system(&bus);
    if (r < 0) throw Error::from_errno("connect to the system bus", -r);
    return Bus(bus);
}

int check_bus(int r, std::string_view context) {
    if (r < 0) throw Error::from_errno(context, -r);
    return r;
}

int check_bus(int r, std::string_view context, const BusError& error) {
    if (r < 0) {
        std::string msg(context);
        msg += ": ";
        msg += error.describe(r);
        throw Error(std::move(msg), Exit::failed, -r);
    }
    return r;
}

}  // namespace aplspawn::sys
