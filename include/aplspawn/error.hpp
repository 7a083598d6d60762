// One typed error for the whole program: a message that names the operation and the object,
// the errno behind it (if any) and the exit code it maps to. Context is added on the way up
// ("ensure bridge nspawnd0: RTM_NEWLINK: File exists"); main() prints it once.
#pragma once

#include <cerrno>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace aplspawn {

// Exit codes of the aplspawn binary (documented in docs/exit-codes.md and in --help).
enum class Exit : int {
    ok = 0,      // done: every step and check succeeded
    failed = 1,  // an operation or a check failed; the host is left consistent
    usage = 2,   // bad command line or bad configuration; nothing was changed
};

class Error : public std::exception {
public:
    explicit Error(std::string message, Exit code = Exit::failed, int sys_errno = 0)
        : message_(std::move(message)), code_(code), errno_(sys_errno) {}

    // "context: strerror(err)", keeping err for callers that branch on it.
    static Error from_errno(std::string_view context, int err);

    // A usage/config error (exit code 2).
    static Error usage(std::string message) { return Error(std::move(message), Exit::usage); }

    // Prepends "context: " to the message. Returns *this for `throw std::move(e).wrap(...)`.
    Error&& wrap(std::string_view context) &&;

    const char* what() const noexcept override { return message_.c_str(); }
    const std::string& message() const noexcept { return message_; }
    Exit exit_code() const noexcept { return code_; }
    int sys_errno() const noexcept { return errno_; }

private:
    std::string message_;
    Exit code_;
    int errno_;
};

// Throws Error::from_errno(context, errno). Use right after a failed syscall.
[[noreturn]] void throw_errno(std::string_view context);
[[noreturn]] void throw_errno(std::string_view context, int err);

// Runs f(); an Error escaping from it gets "context: " prepended.
template <class F>
decltype(auto) with_context(std::string_view context, F&& f) {
    try {
        return std::forward<F>(f)();
    } catch (Error& e) {
        throw std::move(e).wrap(context);
    }
}

// Whether an operation changed the host or found it already as wanted (idempotent steps
// report "already so" instead of pretending to have done work).
enum class Change { unchanged = 0, changed = 1 };

inline Change operator|(Change a, Change b) {
    return (a == Change::changed || b == Change::changed) ? Change::changed : Change::unchanged;
}
inline Change& operator|=(Change& a, Change b) { return a = a | b; }

}  // namespace aplspawn
