// status, host part after the network checks: the fleet's directories and its image, as the
// original checked them (ids for --json in brackets):
//   [directories]  "Checking if working directories exist"
//   [image.loop]   "Checking if image is mounted correctly to loop device /dev/loopN" (one
//                  pair per image; with several, the title names it: "Checking if image NAME ...")
//                  a read-only loop device bound to the image's root partition (offset and size)
//                  of the store's current image or of the version spawn attached (state/lower/)
//   [image.lower]  "Checking if loop /dev/loopN (image root) is mounted to lower DIR"
//                  that device mounted read-only at path.imageLowerLayer/IMAGE_NAME
// Facts come from /proc/self/mountinfo and the loop devices' status (LOOP_GET_STATUS64).
#pragma once

#include "aplspawn/config.hpp"
#include "aplspawn/health/check.hpp"
#include "aplspawn/sys/mount.hpp"

#include <vector>

namespace aplspawn::health {

// Never throws: a check that cannot be made fails with the reason in its detail.
// `images`: whose lower layers to check (the checked containers' images), each once.
Report storage_checks(const config::Config& c, const std::vector<sys::MountInfo>& mounts,
                      const std::vector<const config::Image*>& images);

}  // namespace aplspawn::health
