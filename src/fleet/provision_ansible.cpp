// aplspawn's Python for Ansible (src/fleet/ansible_python3.py): written to kAnsiblePython when
// the image has /usr/bin/python3, which it runs; the inventory then names it as the hosts'
// ansible_python_interpreter. An image without python3 gets nothing (and loses the script an
// earlier provision wrote, which would fail to run).
#include "fleet/ansible_python3.hpp"
#include "fleet/provision_steps.hpp"

#include <fmt/format.h>

namespace aplspawn::fleet::detail {

void provision_ansible_python(Step& s) {
    const auto& root = s.root;
    if (!root.is_executable("/usr/bin/python3")) {
        s.note(root.remove(kAnsiblePython), fmt::format("removed {}", kAnsiblePython));
        return;
    }
    const std::string_view path = kAnsiblePython;
    const std::string_view dir = path.substr(0, path.rfind('/'));
    s.note(root.ensure_dir(dir), fmt::format("created {}", dir));
    s.note(root.write_file(path, kAnsiblePythonScript, {0755, {}}), fmt::format("wrote {}", path));
    s.result.python_interpreter = std::string(path);
}

}  // namespace aplspawn::fleet::detail
