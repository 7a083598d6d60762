// sd-bus (libsystemd) handles that free themselves, and sd-bus failures as aplspawn::Error.
// Knows nothing about units or machines: fleet/systemd.cpp speaks systemd's and machined's
// interfaces with these. An sd_bus connection is not thread-safe: one per thread (or per call).
#pragma once

#include "aplspawn/error.hpp"

#include <systemd/sd-bus.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace aplspawn::sys {

struct BusCloser {
    void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
struct BusMessageUnref {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
struct BusSlotUnref {
    void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};

// A string sd-bus allocated for us (sd_bus_get_property_string ...): free()d.
struct FreeDeleter {
    void operator()(char* s) const { std::free(s); }
};

using Bus = std::unique_ptr<sd_bus, BusCloser>;
using BusString = std::unique_ptr<char, FreeDeleter>;
using BusMessage = std::unique_ptr<sd_bus_message, BusMessageUnref>;
using BusSlot = std::unique_ptr<sd_bus_slot, BusSlotUnref>;

// An sd_bus_error that frees itself.
class BusError {
public:
    BusError() = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    ~BusError() { sd_bus_error_free(&error_); }

    sd_bus_error* get() { return &error_; }
    bool is_set() const { return sd_bus_error_is_set(&error_) > 0; }
    bool has_name(const char* name) const { return sd_bus_error_has_name(&error_, name) > 0; }
    // The D-Bus error's message, else strerror(-r).
    std::string describe(int r) const;

private:
    sd_bus_error error_{};
};

// The system bus. Throws Error "connect to the system bus: ..." when there is none.
Bus open_system_bus();

// r < 0: throws Error "context: <the D-Bus error's message | strerror(-r)>". Returns r.
int check_bus(int r, std::string_view context);
int check_bus(int r, std::string_view context, const BusError& error);

}  // namespace aplspawn::sys
