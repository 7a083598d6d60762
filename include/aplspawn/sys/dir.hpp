// An owned directory stream (opendir / fdopendir): closed when it leaves scope, on every path.
#pragma once

#include <dirent.h>

#include <memory>

namespace aplspawn::sys {

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

class Dir {
public:
    // opendir(path); check with operator bool (errno says why not).
    static Dir open(const char* path) { return Dir(::opendir(path)); }
    // fdopendir(fd): the stream owns fd from then on; on failure fd is closed too.
    static Dir adopt(int fd) {
        DIR* d = ::fdopendir(fd);
        if (!d) {
            int err = errno;
            ::close(fd);
            errno = err;
        }
        return Dir(d);
    }

    explicit operator bool() const { return d_ != nullptr; }
    DIR* get() const { return d_.get(); }
    // The next entry, nullptr at the end (or on an error: errno set, 0 before the call).
    dirent* next() { return ::readdir(d_.get()); }

private:
    explicit Dir(DIR* d) : d_(d) {}
    std::unique_ptr<DIR, DirCloser> d_;
};

}  // namespace aplspawn::sys
