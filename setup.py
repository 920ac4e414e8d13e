"""The compiled extensions; everything else is in pyproject.toml.

CORECACHE_NO_EXTENSIONS=1 (or a non-CPython interpreter) builds a pure wheel.
CORECACHE_DEBUG_BUILD=1 builds with -O0 -g3, assertions, the C structures'
consistency checks after every mutation, -Werror on csrc/ and line tracing.
CORECACHE_SANITIZE=1 adds AddressSanitizer and UndefinedBehaviorSanitizer.
"""
import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def flag(name):
    return os.environ.get(name, "").strip() not in ("", "0", "false", "no")


def warn_unknown_variables():
    """A misspelled CORECACHE_* build switch would be ignored: say so (the
    known names live in corecache/_env.py, which imports nothing of ours)."""
    import runpy
    here = os.path.dirname(os.path.abspath(__file__))
    runpy.run_path(os.path.join(here, "corecache", "_env.py"))["warn_unknown"](stacklevel=1)


warn_unknown_variables()


def generate_sync_distributed():
    """The synchronous distributed layer is generated from its asyncio
    source (corecache/distributed/aio/), on every build: the generated
    modules are not in git (corecache/distributed/_unasync.py says why)."""
    import runpy
    here = os.path.dirname(os.path.abspath(__file__))
    runpy.run_path(os.path.join(here, "corecache", "distributed", "_unasync.py"))["write"]()


generate_sync_distributed()


NO_EXTENSIONS = flag("CORECACHE_NO_EXTENSIONS") or platform.python_implementation() != "CPython"
DEBUG = flag("CORECACHE_DEBUG_BUILD")
SANITIZE = flag("CORECACHE_SANITIZE")

# module -> the csrc/ files it is linked with
MODULES = {
    "corecache._lru": ["csrc/cc_clock.c", "csrc/cc_expiry.c", "csrc/cc_lru.c", "csrc/cc_policy.c"],
    "corecache._pool": ["csrc/cc_clock.c", "csrc/cc_ring.c"],
    "corecache._chunk": ["csrc/cc_scan.c"],
}


class BuildExt(build_ext):
    """Compiles csrc/ separately, so that it alone is held to -Werror in the
    debug build (Cython's generated C warns differently on every compiler)."""

    def build_extension(self, ext):
        msvc = self.compiler.compiler_type == "msvc"
        csrc = [s for s in ext.sources if s.startswith("csrc")]
        ext.sources = [s for s in ext.sources if s not in csrc]
        if msvc:
            common = ["/O2"] if not DEBUG else ["/Od", "/Zi"]
            strict = common
        else:
            common = ["-O0", "-g3", "-UNDEBUG"] if DEBUG else ["-O3"]
            if SANITIZE:
                common += ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                           "-fno-sanitize-recover=undefined"]
            strict = common + ["-std=c11", "-Wall", "-Wextra"] + (["-Werror"] if DEBUG else [])
            common = common + ["-Wall"]
        ext.extra_compile_args = common + ext.extra_compile_args
        if SANITIZE and not msvc:
            ext.extra_link_args = ["-fsanitize=address,undefined"] + ext.extra_link_args
        # one object directory per build flavour, so that a debug or
        # sanitizer build never links objects of another
        flavour = "asan" if SANITIZE else "debug" if DEBUG else "release"
        objects = self.compiler.compile(
            csrc, output_dir=os.path.join(self.build_temp, flavour), macros=ext.define_macros,
            include_dirs=ext.include_dirs, extra_postargs=strict, depends=ext.depends)
        # relink whenever any csrc file changed, not only the Cython module
        ext.depends = list(ext.depends) + csrc
        ext.extra_objects = objects + list(ext.extra_objects or [])
        super().build_extension(ext)


def extensions():
    if NO_EXTENSIONS:
        return []
    from Cython.Build import cythonize

    macros = [("CC_DEBUG", "1"), ("CYTHON_TRACE", "1")] if DEBUG else [("NDEBUG", "1")]
    headers = [os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".h")]
    exts = [
        Extension(name, [name.replace(".", "/") + ".pyx"] + csrc,
                  include_dirs=["csrc", "corecache"], define_macros=macros,
                  depends=headers + ["corecache/_lru_py.h", "corecache/_lru_call.h",
                                     "corecache/_locking.h"])
        for name, csrc in MODULES.items()
    ]
    directives = {
        "language_level": 3,
        "embedsignature": True,
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
        # no generated pickling: it would turn a C pointer field into bytes
        # (reading up to a NUL); the types that pickle say how themselves
        "auto_pickle": False,
    }
    if DEBUG:
        directives.update(linetrace=True, boundscheck=True, wraparound=True)
    return cythonize(exts, compiler_directives=directives,
                     build_dir="build/cython-debug" if DEBUG else None,
                     force=DEBUG)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
