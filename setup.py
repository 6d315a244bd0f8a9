"""Build step for the one compiled part: the mount's C fast path (fusefs/fastpath.c).

Everything else is in pyproject.toml. The library is plain C loaded with ctypes (not a Python
extension: it includes no Python header), built wherever a C compiler is found; `optional`
makes a machine without one install anyway, and the mount then answers every request in
Python (fusefs/fastpath.py says so in its log).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "artifactfs.fusefs._fastpath",
            sources=["fusefs/fastpath.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        )
    ]
)
