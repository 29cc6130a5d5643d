"""Build of the optional native extension; the metadata lives in pyproject.toml.

``topoamorph._delaunay`` wraps CGAL's exact 3-D Delaunay triangulation (src/topoamorph/native/_delaunay.cpp)
for the homology's fast path. It needs a C++17 compiler and CGAL's headers with GMP/MPFR (Debian:
``apt-get install libcgal-dev``; conda-forge: ``cgal-cpp``). Where they are missing the build only warns and
topoamorph uses SciPy's Qhull instead (same diagrams, slower): ``python -c "import topoamorph.alpha_fast as a;
print(a.default_delaunay())"`` says which one is in use.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Build the extension when CGAL is there; otherwise say so and carry on without it (Qhull is the fallback).
    An extension that failed is dropped from the list, so the in-place copy and the wheel do not look for it."""

    def build_extensions(self):
        self.check_extensions_list(self.extensions)
        built = []
        for ext in self.extensions:
            try:
                self.build_extension(ext)
                built.append(ext)
            except Exception as exc:  # a missing compiler or missing CGAL headers: the package still works
                if os.environ.get("TOPOAMORPH_REQUIRE_CGAL") == "1":
                    raise
                print(
                    f"topoamorph: not building {ext.name} ({exc}); the homology will use Qhull "
                    "(install CGAL, e.g. apt-get install libcgal-dev, and reinstall for the faster path)",
                    file=sys.stderr,
                )
        self.extensions = built


delaunay = Extension(
    "topoamorph._delaunay",
    sources=["src/topoamorph/native/_delaunay.cpp"],
    language="c++",
    extra_compile_args=["-std=c++17", "-O3", "-DNDEBUG"],
    libraries=["gmp", "mpfr"],
    # a conda environment's CGAL/GMP/MPFR (cgal-cpp from conda-forge); system paths are searched anyway
    include_dirs=[os.path.join(sys.prefix, "include")],
    library_dirs=[os.path.join(sys.prefix, "lib")],
    runtime_library_dirs=[os.path.join(sys.prefix, "lib")],
)

setup(ext_modules=[delaunay], cmdclass={"build_ext": OptionalBuildExt})
