#!/usr/bin/python3
# aplspawn's Python for Ansible, written into each container by aplspawn's spawn and named as
# ansible_python_interpreter by its inventory (docs/inventory.md, "Fast by default").
#
# With pipelining, Ansible pipes each task into Python as one script carrying the module and
# Ansible's module_utils in a zip, and Python compiles every file of that zip again at every task
# (zipimport keeps no bytecode): about 100 ms of CPU per task in the container, most of a small
# task's cost. This runs that script exactly as `python3` reading it from standard input does,
# and keeps the compiled code of the zip's files in a cache of the user's own
# ($XDG_CACHE_HOME or ~/.cache, then aplspawn/ansible-pyc/TAG), keyed by the SHA-256 of each
# file's source, so a task compiles only sources it has not seen.
#
# Anything else (arguments, a terminal on stdin) runs /usr/bin/python3 itself. Any doubt about
# the cache (a directory that is not the user's own or that others can write, a symlink, an entry
# that is unreadable or damaged) means compiling as Python does: the cache only saves time.
import os
import sys

REAL = "/usr/bin/python3"

if len(sys.argv) > 1 or os.isatty(0):
    os.execv(REAL, [REAL] + sys.argv[1:])

import _imp
import marshal
import stat
import zipimport
from importlib.util import MAGIC_NUMBER

_cache = None  # the checked cache directory; False once it is known there is none


def _own_dir(path, create):
    """path if it is a directory (not a symlink) of this user's that no one else can write."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    return path


def cache_dir():
    global _cache
    if _cache is None:
        _cache = False
        base = os.environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(base):
            try:
                import pwd
                home = pwd.getpwuid(os.geteuid()).pw_dir
            except (ImportError, KeyError):
                return None
            if _own_dir(home, False) is None:
                return None
            base = os.path.join(home, ".cache")
        path = _own_dir(base, True)
        for part in ("aplspawn", "ansible-pyc", sys.implementation.cache_tag):
            if path is None:
                return None
            path = _own_dir(os.path.join(path, part), True)
        _cache = path or False
    return _cache or None


def _load(entry, head):
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_uid != os.geteuid():
            return None
        data = f.read()
    if not data.startswith(head):
        return None
    try:
        return marshal.loads(data[len(head):])
    except (EOFError, ValueError, TypeError):
        return None


def _store(cache, entry, head, code):
    tmp = os.path.join(cache, ".%d.%s" % (os.getpid(), os.path.basename(entry)))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(head + marshal.dumps(code))
        os.replace(tmp, entry)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def compile_cached(source, path):
    """The code of source (bytes) as compile() gives it for file path, from the cache if there."""
    cache = cache_dir()
    if cache is None:
        return compile(source, path, "exec", dont_inherit=True)
    import hashlib
    digest = hashlib.sha256(source).digest()
    head = MAGIC_NUMBER + digest
    entry = os.path.join(cache, digest.hex())
    code = _load(entry, head)
    if code is None:
        code = compile(source, path, "exec", dont_inherit=True)
        _store(cache, entry, head, code)
    else:
        _imp._fix_co_filename(code, path)  # the file it was compiled from is gone: name this one
    return code


class PayloadImporter(zipimport.zipimporter):
    """zipimport for Ansible's payload zip, with compiled code from the cache."""

    def _source(self, fullname):
        """(path, source bytes) of a module the zip has as source, else (path, None)."""
        tail = fullname.rpartition(".")[2]
        inner = tail + ("/__init__.py" if self.is_package(fullname) else ".py")
        path = os.path.join(self.archive, self.prefix, inner)
        try:
            return path, self.get_data(path)
        except OSError:
            return path, None

    def get_filename(self, fullname):
        # zipimport's own compiles the module to name its file, and importlib asks it for the
        # name of every module it finds: name it without compiling.
        path, source = self._source(fullname)
        return path if source is not None else super().get_filename(fullname)

    def get_code(self, fullname):
        path, source = self._source(fullname)
        if source is None:
            return super().get_code(fullname)
        return compile_cached(source, path)


def payload_hook(path):
    if "_payload.zip" not in path:
        raise ImportError("not an Ansible payload", path=path)
    return PayloadImporter(path)


def main():
    import types
    code = compile(sys.stdin.buffer.read(), "<stdin>", "exec", dont_inherit=True)
    sys.path_hooks.insert(0, payload_hook)
    sys.path_importer_cache.clear()
    # As python3 reading the script from stdin has them.
    sys.argv[:] = [""]
    sys.path[0] = ""
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__="<stdin>", __cached__=None, __loader__=sys.__loader__,
                           __annotations__={}, __builtins__=__builtins__)
    sys.modules["__main__"] = module
    exec(code, module.__dict__)


main()
