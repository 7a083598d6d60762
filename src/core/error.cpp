#include "aplspawn/error.hpp"

#include <cstring>

namespace aplspawn {

Error Error::from_errno(std::string_view context, int err) {
    std::string msg(context);
    msg += ": ";
    msg += std::strerror(err);
    return Error(std::move(msg), Exit::failed, err);
}

Error&& Error::wrap(std::string_view context) && {
    std::string msg(context);
    msg += ": ";
    msg += message_;
    message_ = std::move(msg);
    return std::move(*this);
}

void throw_errno(std::string_view context) { throw Error::from_errno(context, errno); }

void throw_errno(std::string_view context, int err) { throw Error::from_errno(context, err); }

}  // namespace aplspawn
