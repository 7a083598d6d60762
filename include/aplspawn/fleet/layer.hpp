// Writing into one layer of a container's overlay (its upper directory, or a layer put on top of
// it) so that the merged view changes exactly as intended. overlayfs shows a directory with the
// attributes of its topmost layer, so a directory made in a layer takes the mode and owner the
// merged view shows for it (read from `view`); a file is written as given; a whiteout hides what
// the layers below hold.
#pragma once

#include "aplspawn/error.hpp"
#include "aplspawn/sys/rootfs.hpp"

#include <string_view>

namespace aplspawn::fleet {

class LayerWriter {
public:
    // layer: the layer's directory; view: the merged view below it (or the image alone).
    LayerWriter(const sys::RootFs& layer, const sys::RootFs& view) : layer_(layer), view_(view) {}

    // The parents of path, made in the layer like the view's directories of those names.
    void make_parents(std::string_view path) const;
    Change write(std::string_view path, std::string_view content, const sys::FileAttrs& attrs) const;
    Change whiteout(std::string_view path) const;

private:
    const sys::RootFs& layer_;
    const sys::RootFs& view_;
};

}  // namespace aplspawn::fleet
