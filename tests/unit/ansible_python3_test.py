#!/usr/bin/env python3
"""Unit test of aplspawn's Python for Ansible (src/fleet/ansible_python3.py), run by ctest:

    tests/unit/ansible_python3_test.py SCRIPT

The script is run as Ansible runs it with pipelining (a program on stdin, no arguments) against
payload zips shaped like Ansible's (a directory *_payload_*, a zip *_payload.zip in it), with
XDG_CACHE_HOME pointing at a scratch directory. No root, no network.
"""
import marshal
import os
import subprocess
import sys
import tempfile
import unittest
import zipfile
from importlib.util import MAGIC_NUMBER
import hashlib

SCRIPT = os.path.abspath(sys.argv.pop(1))
TAG = sys.implementation.cache_tag

MOD = b"""VALUE = 1
def boom():
    raise RuntimeError("boom")
"""


class AnsiblePython(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.cache_home = os.path.join(self.dir, "cache")
        os.mkdir(self.cache_home, 0o700)

    def tearDown(self):
        self.tmp.cleanup()

    def payload(self, name="a", mod=MOD):
        d = os.path.join(self.dir, f"ansible_{name}_payload_x")
        os.makedirs(d, exist_ok=True)
        z = os.path.join(d, f"ansible_{name}_payload.zip")
        with zipfile.ZipFile(z, "w") as f:
            f.writestr("pkg/__init__.py", "")
            f.writestr("pkg/mod.py", mod)
        return z

    def run_script(self, program, args=(), env=None):
        e = dict(os.environ, XDG_CACHE_HOME=self.cache_home)
        e.update(env or {})
        return subprocess.run([sys.executable, SCRIPT, *args], input=program.encode(), env=e,
                              capture_output=True, timeout=60)

    def cache(self):
        return os.path.join(self.cache_home, "aplspawn", "ansible-pyc", TAG)

    def entry(self, source):
        return os.path.join(self.cache(), hashlib.sha256(source).hexdigest())

    def use(self, zip_path, expr="pkg.mod.VALUE"):
        return f"import sys\nsys.path.insert(0, {zip_path!r})\nimport pkg.mod\nprint({expr})\n"

    def test_runs_stdin_as_python3_does(self):
        program = ("import sys, __main__\n"
                   "print(sys.argv, repr(sys.path[0]), sorted(vars(__main__)))\n"
                   "print([repr(getattr(__main__, k)) for k in ('__name__', '__file__', '__cached__',"
                   " '__spec__', '__package__', '__loader__', '__doc__', '__annotations__')])\n")
        ours = self.run_script(program)
        real = subprocess.run([sys.executable], input=program.encode(), capture_output=True, timeout=60)
        self.assertEqual(ours.returncode, 0, ours.stderr)
        self.assertEqual(ours.stdout, real.stdout)

    def test_exit_codes_and_tracebacks_pass_through(self):
        self.assertEqual(self.run_script("import sys\nsys.exit(3)\n").returncode, 3)
        r = self.run_script("raise ValueError('x')\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b'File "<stdin>", line 1', r.stderr)

    def test_arguments_run_python3_itself(self):
        r = self.run_script("", args=["-c", "import sys; print(len(sys.path_hooks), sys.argv)"])
        real = subprocess.run([sys.executable, "-c", "import sys; print(len(sys.path_hooks), sys.argv)"],
                              capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, real.stdout)

    def test_compiled_code_is_cached_and_used(self):
        z = self.payload()
        r = self.run_script(self.use(z, "pkg.mod.VALUE, pkg.mod.__file__, type(pkg.mod.__loader__).__name__"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.decode(), f"1 {z}/pkg/mod.py PayloadImporter\n")
        self.assertEqual(sorted(os.listdir(self.cache())),
                         sorted([hashlib.sha256(b"").hexdigest(), hashlib.sha256(MOD).hexdigest()]))
        st = os.stat(self.cache())
        self.assertEqual(st.st_mode & 0o777, 0o700)
        # The entry is what the next run executes: plant other code under the same key.
        with open(self.entry(MOD), "wb") as f:
            f.write(MAGIC_NUMBER + hashlib.sha256(MOD).digest() + marshal.dumps(compile("VALUE = 2", "x", "exec")))
        self.assertEqual(self.run_script(self.use(z)).stdout, b"2\n")

    def test_cached_code_names_the_current_file(self):
        first = self.payload("a")
        self.assertEqual(self.run_script(self.use(first)).returncode, 0)
        second = self.payload("b")  # the same sources in another payload: a cache hit
        r = self.run_script(self.use(second, "pkg.mod.boom()"))
        self.assertEqual(r.returncode, 1)
        self.assertIn(f'File "{second}/pkg/mod.py", line 3'.encode(), r.stderr)
        self.assertNotIn(first.encode(), r.stderr)

    def test_changed_source_is_compiled_again(self):
        self.run_script(self.use(self.payload("a")))
        changed = MOD.replace(b"VALUE = 1", b"VALUE = 7")
        r = self.run_script(self.use(self.payload("b", changed)))
        self.assertEqual(r.stdout, b"7\n")
        self.assertTrue(os.path.exists(self.entry(changed)))

    def test_damaged_entry_is_compiled_and_replaced(self):
        z = self.payload()
        self.run_script(self.use(z))
        with open(self.entry(MOD), "r+b") as f:
            f.truncate(40)
        self.assertEqual(self.run_script(self.use(z)).stdout, b"1\n")
        self.assertGreater(os.path.getsize(self.entry(MOD)), 40)

    def test_cache_others_can_write_is_not_used(self):
        z = self.payload()
        self.run_script(self.use(z))
        with open(self.entry(MOD), "wb") as f:
            f.write(MAGIC_NUMBER + hashlib.sha256(MOD).digest() + marshal.dumps(compile("VALUE = 2", "x", "exec")))
        os.chmod(self.cache(), 0o777)
        r = self.run_script(self.use(z))
        self.assertEqual((r.returncode, r.stdout), (0, b"1\n"), r.stderr)

    def test_symlinked_cache_is_not_followed(self):
        elsewhere = os.path.join(self.dir, "elsewhere")
        os.mkdir(elsewhere, 0o700)
        os.symlink(elsewhere, os.path.join(self.cache_home, "aplspawn"))
        r = self.run_script(self.use(self.payload()))
        self.assertEqual((r.returncode, r.stdout), (0, b"1\n"), r.stderr)
        self.assertEqual(os.listdir(elsewhere), [])

    def test_no_usable_cache_home_still_runs(self):
        r = self.run_script(self.use(self.payload()), env={"XDG_CACHE_HOME": "/proc/version/x"})
        self.assertEqual((r.returncode, r.stdout), (0, b"1\n"), r.stderr)

    def test_other_zips_are_zipimport_s_own(self):
        other = os.path.join(self.dir, "lib.zip")
        with zipfile.ZipFile(other, "w") as f:
            f.writestr("pkg/__init__.py", "")
            f.writestr("pkg/mod.py", MOD)
        r = self.run_script(self.use(other, "type(pkg.mod.__loader__).__name__"))
        self.assertEqual(r.stdout, b"zipimporter\n")
        self.assertFalse(os.path.exists(self.cache()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
