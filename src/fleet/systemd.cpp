#include "aplspawn/fleet/systemd.hpp"

#include "aplspawn/error.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>

namespace aplspawn::fleet::systemd {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr const char* kSystemdPath = "/org/freedesktop/systemd1";
constexpr const char* kSystemdManager = "org.freedesktop.systemd1.Manager";
constexpr const char* kUnitIface = "org.freedesktop.systemd1.Unit";
constexpr const char* kServiceIface = "org.freedesktop.systemd1.Service";
constexpr const char* kNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit";

constexpr const char* kMachined = "org.freedesktop.machine1";
constexpr const char* kMachinedPath = "/org/freedesktop/machine1";
constexpr const char* kMachinedManager = "org.freedesktop.machine1.Manager";
constexpr const char* kMachineIface = "org.freedesktop.machine1.Machine";
constexpr const char* kNoSuchMachine = "org.freedesktop.machine1.NoSuchMachine";

std::uint64_t usec(std::chrono::microseconds d) { return static_cast<std::uint64_t>(d.count()); }

// ("Name", variant of one basic value) into an open a(sv).
template <class T>
void append_property(sd_bus_message* m, const char* name, const char* type, T value) {
    sys::check_bus(sd_bus_message_append(m, "(sv)", name, type, value),
                   fmt::format("transient unit property {}", name));
}

void append_exec_start(sd_bus_message* m, const std::vector<std::string>& command) {
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    auto ctx = "transient unit property ExecStart";
    sys::check_bus(sd_bus_message_open_container(m, 'r', "sv"), ctx);
    sys::check_bus(sd_bus_message_append(m, "s", "ExecStart"), ctx);
    sys::check_bus(sd_bus_message_open_container(m, 'v', "a(sasb)"), ctx);
    sys::check_bus(sd_bus_message_open_container(m, 'a', "(sasb)"), ctx);
    sys::check_bus(sd_bus_message_open_container(m, 'r', "sasb"), ctx);
    sys::check_bus(sd_bus_message_append(m, "s", command.front().c_str()), ctx);
    sys::check_bus(sd_bus_message_append_strv(m, argv.data()), ctx);
    sys::check_bus(sd_bus_message_append(m, "b", 0), ctx);
    for (int i = 0; i < 4; ++i) sys::check_bus(sd_bus_message_close_container(m), ctx);
}

void append_environment(sd_bus_message* m, const std::vector<std::string>& env) {
    std::vector<char*> list;
    for (const auto& e : env) list.push_back(const_cast<char*>(e.c_str()));
    list.push_back(nullptr);
    auto ctx = "transient unit property Environment";
    sys::check_bus(sd_bus_message_open_container(m, 'r', "sv"), ctx);
    sys::check_bus(sd_bus_message_append(m, "s", "Environment"), ctx);
    sys::check_bus(sd_bus_message_open_container(m, 'v', "as"), ctx);
    sys::check_bus(sd_bus_message_append_strv(m, list.data()), ctx);
    for (int i = 0; i < 2; ++i) sys::check_bus(sd_bus_message_close_container(m), ctx);
}

// A resource limit: a number (t) or a CPU mask (ay).
void append_limit(sd_bus_message* m, const UnitProperty& p) {
    if (p.number) return append_property(m, p.name.c_str(), "t", *p.number);
    auto ctx = fmt::format("transient unit property {}", p.name);
    sys::check_bus(sd_bus_message_open_container(m, 'r', "sv"), ctx);
    sys::check_bus(sd_bus_message_append(m, "s", p.name.c_str()), ctx);
    sys::check_bus(sd_bus_message_open_container(m, 'v', "ay"), ctx);
    sys::check_bus(sd_bus_message_append_array(m, 'y', p.bytes.data(), p.bytes.size()), ctx);
    sys::check_bus(sd_bus_message_close_container(m), ctx);
    sys::check_bus(sd_bus_message_close_container(m), ctx);
}

// JobRemoved(u id, o job, s unit, s result) signals, by job path.
struct JobResults {
    std::map<std::string, std::string> done;
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    std::uint32_t id = 0;
    const char* job = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) >= 0 && job && result)
        static_cast<JobResults*>(userdata)->done[job] = result;
    return 0;
}

std::string indented(const std::string& text) {
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        out += "\n  ";
        out.append(text, pos, end - pos);
        pos = end + 1;
    }
    return out;
}

}  // namespace

std::string unit_name(std::string_view machine) { return fmt::format("aplspawn-{}.service", machine); }

std::vector<std::string> nspawn_command(const fs::path& nspawn,
                                        const std::vector<std::string>& arguments) {
    std::vector<std::string> cmd{nspawn.string(), "--keep-unit", "--register=yes"};
    bool options = true;  // after "--" come the payload's own arguments: left alone
    for (const auto& a : arguments) {
        if (options && a == "--") options = false;
        if (options && (a == "--keep-unit" || a == "--register=yes" || a == "--register=no" ||
                        a == "--register=false" || a == "--register=0"))
            continue;
        cmd.push_back(a);
    }
    return cmd;
}

Manager::Manager() : bus_(sys::open_system_bus()) {
    sd_bus_set_method_call_timeout(bus_.get(), usec(30s));
}

bool Manager::available() {
    struct stat st;
    if (::stat("/run/systemd/system", &st) != 0 || !S_ISDIR(st.st_mode)) return false;
    try {
        Manager m;
        sd_bus_set_method_call_timeout(m.bus_.get(), usec(10s));
        sys::BusError error;
        sd_bus_message* reply = nullptr;
        // Activates machined when it is not running yet.
        int r = sd_bus_call_method(m.bus_.get(), kMachined, kMachinedPath, "org.freedesktop.DBus.Peer",
                                   "Ping", error.get(), &reply, "");
        sys::BusMessage guard(reply);
        return r >= 0;
    } catch (const Error&) {
        return false;
    }
}

bool Manager::is_init() {
    struct stat st;
    return ::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

namespace {

// The changes of an EnableUnitFiles / DisableUnitFiles reply (a(sss): type, file, destination):
// how many there were.
int count_changes(sd_bus_message* reply, std::string_view context) {
    sys::check_bus(sd_bus_message_enter_container(reply, 'a', "(sss)"), context);
    int n = 0;
    const char *type = nullptr, *file = nullptr, *dest = nullptr;
    while (sys::check_bus(sd_bus_message_read(reply, "(sss)", &type, &file, &dest), context) > 0) ++n;
    sys::check_bus(sd_bus_message_exit_container(reply), context);
    return n;
}

}  // namespace

void Manager::reload() {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    // A reload takes a while on a big host: more than the default call timeout.
    sd_bus_set_method_call_timeout(bus_.get(), usec(90s));
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kSystemdManager, "Reload",
                               error.get(), &reply, "");
    sys::BusMessage guard(reply);
    sd_bus_set_method_call_timeout(bus_.get(), usec(30s));
    sys::check_bus(r, "systemd daemon-reload", error);
}

bool Manager::enable_unit_file(const std::string& name) {
    auto context = fmt::format("enable unit {}", name);
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    const char* files[] = {name.c_str(), nullptr};
    sd_bus_message* call = nullptr;
    sys::check_bus(sd_bus_message_new_method_call(bus_.get(), &call, kSystemd, kSystemdPath,
                                                  kSystemdManager, "EnableUnitFiles"),
                   context);
    sys::BusMessage call_guard(call);
    sys::check_bus(sd_bus_message_append_strv(call, const_cast<char**>(files)), context);
    sys::check_bus(sd_bus_message_append(call, "bb", 0, 0), context);  // not runtime, no force
    int r = sd_bus_call(bus_.get(), call, 0, error.get(), &reply);
    sys::BusMessage guard(reply);
    sys::check_bus(r, context, error);
    int carries_install_info = 0;
    sys::check_bus(sd_bus_message_read(reply, "b", &carries_install_info), context);
    return count_changes(reply, context) > 0;
}

bool Manager::disable_unit_file(const std::string& name) {
    auto context = fmt::format("disable unit {}", name);
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    const char* files[] = {name.c_str(), nullptr};
    sd_bus_message* call = nullptr;
    sys::check_bus(sd_bus_message_new_method_call(bus_.get(), &call, kSystemd, kSystemdPath,
                                                  kSystemdManager, "DisableUnitFiles"),
                   context);
    sys::BusMessage call_guard(call);
    sys::check_bus(sd_bus_message_append_strv(call, const_cast<char**>(files)), context);
    sys::check_bus(sd_bus_message_append(call, "b", 0), context);  // not runtime
    int r = sd_bus_call(bus_.get(), call, 0, error.get(), &reply);
    sys::BusMessage guard(reply);
    sys::check_bus(r, context, error);
    return count_changes(reply, context) > 0;
}

std::optional<std::string> Manager::unit_file_state(const std::string& name) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kSystemdManager,
                               "GetUnitFileState", error.get(), &reply, "s", name.c_str());
    sys::BusMessage guard(reply);
    if (r == -ENOENT || (r < 0 && (error.has_name(kNoSuchUnit) ||
                                   error.has_name("org.freedesktop.DBus.Error.FileNotFound"))))
        return std::nullopt;
    auto context = fmt::format("state of unit file {}", name);
    sys::check_bus(r, context, error);
    const char* state = nullptr;
    sys::check_bus(sd_bus_message_read(reply, "s", &state), context);
    return std::string(state ? state : "");
}

std::optional<std::string> Manager::active_state(const std::string& unit) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kSystemdManager, "GetUnit",
                               error.get(), &reply, "s", unit.c_str());
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchUnit)) return std::nullopt;
    sys::check_bus(r, fmt::format("look up unit {}", unit), error);
    const char* path = nullptr;
    sys::check_bus(sd_bus_message_read(reply, "o", &path), fmt::format("look up unit {}", unit));
    sys::BusError perr;
    char* state = nullptr;
    r = sd_bus_get_property_string(bus_.get(), kSystemd, path, kUnitIface, "ActiveState", perr.get(),
                                   &state);
    // Unloaded between the two calls: gone.
    if (r < 0 && (perr.has_name(kNoSuchUnit) || perr.has_name(SD_BUS_ERROR_UNKNOWN_OBJECT)))
        return std::nullopt;
    sys::BusString owned(state);
    sys::check_bus(r, fmt::format("read ActiveState of {}", unit), perr);
    return std::string(owned.get());
}

bool Manager::is_up(const std::string& unit) {
    auto s = active_state(unit);
    return s && *s != "inactive" && *s != "failed";
}

pid_t Manager::main_pid(const std::string& unit) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kSystemdManager, "GetUnit",
                               error.get(), &reply, "s", unit.c_str());
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchUnit)) return 0;
    sys::check_bus(r, fmt::format("look up unit {}", unit), error);
    const char* path = nullptr;
    sys::check_bus(sd_bus_message_read(reply, "o", &path), fmt::format("look up unit {}", unit));
    sys::BusError perr;
    std::uint32_t pid = 0;
    r = sd_bus_get_property_trivial(bus_.get(), kSystemd, path, kServiceIface, "MainPID", perr.get(),
                                    'u', &pid);
    sys::check_bus(r, fmt::format("read MainPID of {}", unit), perr);
    return static_cast<pid_t>(pid);
}

bool Manager::wait_stopped(const std::string& unit, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (!is_up(unit)) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(50ms);
    }
}

bool Manager::wait_unloaded(const std::string& unit, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (!active_state(unit)) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
}

void Manager::stop_unit(const std::string& unit) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kSystemdManager, "StopUnit",
                               error.get(), &reply, "ss", unit.c_str(), "replace");
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchUnit)) return;
    sys::check_bus(r, fmt::format("stop unit {}", unit), error);
}

void Manager::kill_unit(const std::string& unit, int signal) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kSystemdManager, "KillUnit",
                               error.get(), &reply, "ssi", unit.c_str(), "all", signal);
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchUnit)) return;
    sys::check_bus(r, fmt::format("kill unit {} (signal {})", unit, signal), error);
}

void Manager::reset_failed(const std::string& unit) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kSystemd, kSystemdPath, kSystemdManager,
                               "ResetFailedUnit", error.get(), &reply, "s", unit.c_str());
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchUnit)) return;
    sys::check_bus(r, fmt::format("reset failed unit {}", unit), error);
}

pid_t Manager::start_service(const ServiceSpec& spec) {
    auto context = fmt::format("start unit {}", spec.unit);
    if (spec.command.empty() || spec.command.front().empty() || spec.command.front()[0] != '/')
        throw Error(context + ": ExecStart needs an absolute program path");

    if (auto state = active_state(spec.unit)) {
        if (*state != "inactive" && *state != "failed")
            throw Error(fmt::format("{}: the unit is already {}", context, *state));
        reset_failed(spec.unit);  // a leftover of an earlier run
    }

    // Subscribe to JobRemoved before the job exists: its signal cannot be missed.
    JobResults jobs;
    sd_bus_slot* slot = nullptr;
    sys::check_bus(sd_bus_match_signal(bus_.get(), &slot, kSystemd, kSystemdPath, kSystemdManager,
                                       "JobRemoved", on_job_removed, &jobs),
                   context + ": watch systemd jobs");
    sys::BusSlot slot_guard(slot);

    sd_bus_message* call = nullptr;
    sys::check_bus(sd_bus_message_new_method_call(bus_.get(), &call, kSystemd, kSystemdPath,
                                                  kSystemdManager, "StartTransientUnit"),
                   context);
    sys::BusMessage call_guard(call);
    sys::check_bus(sd_bus_message_append(call, "ss", spec.unit.c_str(), "fail"), context);
    sys::check_bus(sd_bus_message_open_container(call, 'a', "(sv)"), context);
    append_property(call, "Description", "s", spec.description.c_str());
    append_property(call, "Slice", "s", spec.slice.c_str());
    append_property(call, "Type", "s", "notify");
    append_property(call, "KillMode", "s", "mixed");
    append_property(call, "Delegate", "b", 1);
    append_property(call, "CollectMode", "s", "inactive-or-failed");
    append_property(call, "TimeoutStartUSec", "t", usec(spec.start_timeout));
    append_property(call, "TimeoutStopUSec", "t", usec(spec.stop_timeout));
    if (!spec.network_namespace.empty())
        append_property(call, "NetworkNamespacePath", "s", spec.network_namespace.c_str());
    if (!spec.environment.empty()) append_environment(call, spec.environment);
    append_exec_start(call, spec.command);
    for (const auto& p : spec.limits) append_limit(call, p);
    sys::check_bus(sd_bus_message_close_container(call), context);
    sys::check_bus(sd_bus_message_append(call, "a(sa(sv))", 0), context);  // no auxiliary units

    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call(bus_.get(), call, 0, error.get(), &reply);
    sys::BusMessage reply_guard(reply);
    sys::check_bus(r, context, error);
    const char* job_path = nullptr;
    sys::check_bus(sd_bus_message_read(reply, "o", &job_path), context);
    std::string job(job_path);

    auto deadline = Clock::now() + spec.start_timeout + 10s;
    while (!jobs.done.contains(job)) {
        r = sys::check_bus(sd_bus_process(bus_.get(), nullptr), context + ": wait for the start job");
        if (r > 0) continue;
        auto now = Clock::now();
        if (now >= deadline)
            throw Error(fmt::format("{}: no result of the start job within {} s", context,
                                    (spec.start_timeout + 10s).count()));
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
        sys::check_bus(sd_bus_wait(bus_.get(), usec(std::min<std::chrono::microseconds>(left, 1s))),
                       context + ": wait for the start job");
    }
    const std::string& result = jobs.done[job];
    if (result != "done") {
        auto tail = journal_tail(spec.unit, 15);
        throw Error(fmt::format("{}: start job {} (journalctl -u {}){}", context, result, spec.unit,
                                tail.empty() ? std::string() : indented(tail)));
    }
    pid_t pid = main_pid(spec.unit);
    if (pid <= 0) {
        auto tail = journal_tail(spec.unit, 15);
        throw Error(fmt::format("{}: started, but has no main process any more (journalctl -u {}){}",
                                context, spec.unit, tail.empty() ? std::string() : indented(tail)));
    }
    return pid;
}

std::optional<Machine> Manager::machine(const std::string& name) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kMachined, kMachinedPath, kMachinedManager, "GetMachine",
                               error.get(), &reply, "s", name.c_str());
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchMachine)) return std::nullopt;
    auto context = fmt::format("look up machine {}", name);
    sys::check_bus(r, context, error);
    const char* path = nullptr;
    sys::check_bus(sd_bus_message_read(reply, "o", &path), context);

    Machine m;
    sys::BusError lerr;
    std::uint32_t leader = 0;
    r = sd_bus_get_property_trivial(bus_.get(), kMachined, path, kMachineIface, "Leader",
                                    lerr.get(), 'u', &leader);
    if (r < 0 && (lerr.has_name(SD_BUS_ERROR_UNKNOWN_OBJECT) || lerr.has_name(kNoSuchMachine)))
        return std::nullopt;  // went away in between
    sys::check_bus(r, context + ": Leader", lerr);
    m.leader = static_cast<pid_t>(leader);
    sys::BusError uerr;
    char* unit = nullptr;
    r = sd_bus_get_property_string(bus_.get(), kMachined, path, kMachineIface, "Unit", uerr.get(),
                                   &unit);
    sys::BusString owned_unit(unit);
    if (r < 0 && (uerr.has_name(SD_BUS_ERROR_UNKNOWN_OBJECT) || uerr.has_name(kNoSuchMachine)))
        return std::nullopt;
    sys::check_bus(r, context + ": Unit", uerr);
    m.unit = owned_unit.get();
    return m;
}

void Manager::kill_machine(const std::string& name, const std::string& who, int signal) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kMachined, kMachinedPath, kMachinedManager, "KillMachine",
                               error.get(), &reply, "ssi", name.c_str(), who.c_str(), signal);
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchMachine)) return;
    sys::check_bus(r, fmt::format("signal {} to machine {} ({})", signal, name, who), error);
}

void Manager::terminate_machine(const std::string& name) {
    sys::BusError error;
    sd_bus_message* reply = nullptr;
    int r = sd_bus_call_method(bus_.get(), kMachined, kMachinedPath, kMachinedManager,
                               "TerminateMachine", error.get(), &reply, "s", name.c_str());
    sys::BusMessage guard(reply);
    if (r < 0 && error.has_name(kNoSuchMachine)) return;
    sys::check_bus(r, fmt::format("terminate machine {}", name), error);
}

std::string journal_tail(const std::string& unit, int lines) {
    // sd-journal, not journalctl's text: the entries' MESSAGE fields, as `journalctl -o cat -u`
    // shows them: the unit's own output, and what systemd (PID 1) logged about it.
    sd_journal* raw = nullptr;
    if (sd_journal_open(&raw, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM) < 0) return {};
    std::unique_ptr<sd_journal, decltype(&sd_journal_close)> j(raw, &sd_journal_close);
    const std::string by_unit = "_SYSTEMD_UNIT=" + unit, about_unit = "UNIT=" + unit;
    if (sd_journal_add_match(j.get(), by_unit.data(), by_unit.size()) < 0 ||
        sd_journal_add_disjunction(j.get()) < 0 || sd_journal_add_match(j.get(), "_PID=1", 0) < 0 ||
        sd_journal_add_match(j.get(), about_unit.data(), about_unit.size()) < 0)
        return {};
    if (sd_journal_seek_tail(j.get()) < 0) return {};
    std::vector<std::string> tail;
    for (int n = 0; n < lines && sd_journal_previous(j.get()) > 0; ++n) {
        const void* data = nullptr;
        std::size_t size = 0;
        if (sd_journal_get_data(j.get(), "MESSAGE", &data, &size) < 0) continue;
        std::string_view field(static_cast<const char*>(data), size);
        field.remove_prefix(std::min(field.size(), std::string_view("MESSAGE=").size()));
        tail.emplace_back(field);
    }
    std::reverse(tail.begin(), tail.end());
    std::string out;
    for (const auto& l : tail) {
        if (!out.empty()) out += '\n';
        out += l;
    }
    return out;
}

}  // namespace aplspawn::fleet::systemd
