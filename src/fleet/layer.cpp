#include "aplspawn/fleet/layer.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet {

void LayerWriter::make_parents(std::string_view path) const {
    auto [parent, name] = sys::split_last(path);
    (void)name;
    std::string at;
    for (std::size_t i = 1; i <= parent.size(); ++i) {
        if (i < parent.size() && parent[i] != '/') continue;
        at = parent.substr(0, i);
        if (at == "/" || at.empty()) continue;
        if (layer_.symlink_status(at)) continue;
        sys::FileAttrs attrs{0755, {}};
        if (auto st = view_.symlink_status(at); st && S_ISDIR(st->st_mode))
            attrs = {static_cast<mode_t>(st->st_mode & 07777), {st->st_uid, st->st_gid}};
        layer_.ensure_dir(at, attrs);
    }
}

Change LayerWriter::write(std::string_view path, std::string_view content,
                          const sys::FileAttrs& attrs) const {
    make_parents(path);
    return layer_.write_file(path, content, attrs);
}

Change LayerWriter::whiteout(std::string_view path) const {
    make_parents(path);
    return layer_.whiteout(path);
}

}  // namespace aplspawn::fleet
