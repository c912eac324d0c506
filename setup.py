"""Build of lamp._core, the C core of lamp.

The extension links OpenBLAS (cblas) and libcurl from the system.  Both are
located with pkg-config; when either is missing the build stops at once with
the package to install instead of failing later with a bare compiler error.

Environment:
  PKG_CONFIG      the pkg-config program to use (default: pkg-config)
  LAMP_WERROR=1   compile with -Werror (CI does)
  LAMP_DEBUG=1    -O0 -g, for debugging the C core
"""
import glob
import os
import shutil
import subprocess
import sys

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# name used by pkg-config, header that must exist, Debian package, Fedora package
SYSTEM_LIBRARIES = [
    ("openblas", "cblas.h", "libopenblas-dev", "openblas-devel"),
    ("libcurl", "curl/curl.h", "libcurl4-openssl-dev", "libcurl-devel"),
]


def _missing(debian, fedora, what):
    sys.exit(
        f"\nlamp: cannot build lamp._core: {what}.\n"
        f"  Debian/Ubuntu:  sudo apt-get install {debian} pkg-config\n"
        f"  Fedora/RHEL:    sudo dnf install {fedora} pkgconf\n"
        f"  conda:          conda install -c conda-forge openblas libcurl pkg-config\n"
    )


def _pkg_config(name, header, debian, fedora):
    program = os.environ.get("PKG_CONFIG", "pkg-config")
    if shutil.which(program) is None:
        _missing(debian, fedora, f"{program} is not installed")
    try:
        cflags = subprocess.check_output([program, "--cflags", name], text=True, stderr=subprocess.PIPE).split()
        libs = subprocess.check_output([program, "--libs", name], text=True, stderr=subprocess.PIPE).split()
    except subprocess.CalledProcessError:
        _missing(debian, fedora, f"pkg-config does not know '{name}' (the {debian} development files are missing)")
    include_dirs = [f[2:] for f in cflags if f.startswith("-I")] + ["/usr/include", "/usr/local/include"]
    if not any(os.path.exists(os.path.join(d, header)) for d in include_dirs):
        _missing(debian, fedora, f"header <{header}> was not found in {include_dirs}")
    return (
        [f[2:] for f in cflags if f.startswith("-I")],
        [f[2:] for f in libs if f.startswith("-L")],
        [f[2:] for f in libs if f.startswith("-l")],
    )


def _csrc_files(suffix):
    """The files of csrc/ and its folders ending in suffix, sorted, without the C unit tests (csrc/tests/)."""
    return sorted(f for f in glob.glob(f"csrc/**/*{suffix}", recursive=True) if not f.startswith("csrc/tests/"))


def _extension():
    include_dirs, library_dirs, libraries = [numpy.get_include()], [], []
    for name, header, debian, fedora in SYSTEM_LIBRARIES:
        inc, libdirs, libs = _pkg_config(name, header, debian, fedora)
        include_dirs += inc
        library_dirs += libdirs
        libraries += libs
    # every .c under csrc/ (kernels in their folders, the binding in csrc/py/) but the C unit tests
    sources = _csrc_files(".c")
    # -fno-trapping-math: lets the compiler vectorise branch-free selects (no kernel uses FP exceptions)
    # -fno-math-errno: sqrt is an instruction, and vectorises (no kernel reads errno)
    # -Wno-psabi: see csrc/common/vmath.h (vector helpers are always inlined, no vector crosses a call)
    extra = ["-std=gnu11", "-Wall", "-Wextra", "-Wno-psabi", "-fvisibility=hidden", "-fno-trapping-math",
             "-fno-math-errno"]
    if os.environ.get("LAMP_WERROR") == "1":
        extra.append("-Werror")
    extra += ["-O0", "-g"] if os.environ.get("LAMP_DEBUG") == "1" else ["-O3"]
    return Extension(
        "lamp._core",
        sources=sources,
        depends=_csrc_files(".h"),
        include_dirs=["csrc"] + include_dirs,  # includes are written relative to csrc/: "common/vmath.h"
        library_dirs=library_dirs,
        runtime_library_dirs=library_dirs,
        libraries=libraries + ["m"],
        extra_compile_args=extra,
    )


os.chdir(HERE)
setup(ext_modules=[_extension()])
